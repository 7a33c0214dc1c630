"""Inference engines for the frozen encoders: torch or ONNX Runtime, whichever is faster here.

The image CNN (pooled embedding of :class:`~vidpop.features.image.ImageBackbone`) and the MiniLM
sentence encoder are exported to ONNX **once** and cached under ``cache_root()/onnx/`` (file name =
the weights' version, so new weights mean a new file; written to a temporary name and renamed, so
parallel workers never read half a file). Every engine is checked against torch when it is created
(max |diff| < :data:`TOLERANCE`), so switching engine never changes stored features beyond float noise.

:func:`pick_image_engine` / :func:`pick_text_engine` time both engines on a small probe batch and
keep the faster one (``engine="auto"``, the default of the pipelined extractor); the choice and the
two timings are in :class:`EngineChoice` and logged, so a run always says which engine it used.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from vidpop.config import cache_root
from vidpop.errors import VidpopError

log = logging.getLogger(__name__)

#: largest |torch - onnx| accepted when an engine is created
TOLERANCE = 1e-4
OPSET = 17
ENGINES = ("auto", "torch", "onnx")


def onnx_dir() -> Path:
    """``cache_root()/onnx`` (created on demand)."""
    d = cache_root() / "onnx"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def export_once(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    input_names: list[str],
    output_names: list[str],
    dynamic_axes: dict[str, dict[int, str]],
) -> Path:
    """Export ``module`` to ``path`` unless it exists; atomic (temporary file + rename)."""
    if path.is_file():
        return path
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, args, str(tmp), input_names=input_names, output_names=output_names,
            dynamic_axes=dynamic_axes, opset_version=OPSET, dynamo=False,
        )  # fmt: skip
    tmp.replace(path)
    return path


def _session(path: Path, threads: int | None) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    opts.inter_op_num_threads = 1
    # idle intra-op threads sleep instead of spinning: on a busy (shared) CPU spinning burns the cycles
    # the decoder threads need (measured here: ~15 % less CPU per title, lower wall time under load)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


# ---------------------------------------------------------------------------- image CNN
class ImageEngine(Protocol):
    """Normalised batch (B, 3, S, S) float32 -> pooled embeddings (B, dim) float32."""

    name: str

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


class TorchImageEngine:
    """The backbone itself, without gradients."""

    name = "torch"

    def __init__(self, backbone: nn.Module) -> None:
        self.backbone = backbone.eval()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.backbone(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()


class OnnxImageEngine:
    """The backbone's pooled embedding in ONNX Runtime, exported once to ``onnx_dir()``."""

    name = "onnx"

    def __init__(self, backbone: Any, threads: int | None = None, verify: bool = True) -> None:
        backbone.eval()
        self.path = onnx_dir() / f"image-{_safe(backbone.version)}-op{OPSET}.onnx"
        probe = torch.from_numpy(np.random.default_rng(0).normal(size=(2, 3, backbone.size, backbone.size)))
        probe = probe.float()
        export_once(backbone, (probe,), self.path, ["x"], ["emb"], {"x": {0: "batch"}, "emb": {0: "batch"}})
        self.session = _session(self.path, threads)
        self.max_diff = float("nan")
        if verify:
            with torch.no_grad():
                ref = backbone(probe).numpy()
            self.max_diff = float(np.abs(self(probe.numpy()) - ref).max())
            if not self.max_diff < TOLERANCE:
                raise VidpopError(
                    f"ONNX export of {backbone.name} disagrees with torch (max |diff| {self.max_diff:.3g}); "
                    f"delete {self.path} to re-export"
                )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"x": np.ascontiguousarray(x, dtype=np.float32)})[0]


@dataclass
class EngineChoice:
    """Which engine a run uses and the probe timings that chose it (ms per item)."""

    chosen: str
    ms_per_item: dict[str, float]
    reason: str

    def describe(self) -> str:
        times = ", ".join(f"{k} {v:.1f} ms/item" for k, v in self.ms_per_item.items())
        return f"engine={self.chosen} ({self.reason}{'; ' + times if times else ''})"


def _time_call(fn: Callable[[], Any], repeats: int = 1) -> float:
    fn()  # warm-up (allocations, lazy initialisation)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _choose(
    engines: dict[str, Any], run: Callable[[Any], Any], n_items: int, requested: str
) -> tuple[Any, EngineChoice]:
    if requested not in ENGINES:
        raise VidpopError(f"unknown engine {requested!r}; use one of {ENGINES}")
    if requested != "auto":
        if requested not in engines:
            raise VidpopError(f"engine {requested!r} is unavailable here (onnxruntime missing or export failed)")
        return engines[requested], EngineChoice(requested, {}, "requested")
    if len(engines) == 1:
        ((name, eng),) = engines.items()
        return eng, EngineChoice(name, {}, "only engine available")
    ms = {name: 1000 * _time_call(lambda e=eng: run(e)) / n_items for name, eng in engines.items()}
    best = min(ms, key=ms.__getitem__)
    return engines[best], EngineChoice(best, {k: round(v, 2) for k, v in ms.items()}, "faster on a probe batch")


_IMAGE_CHOICES: dict[tuple[int, str], tuple[ImageEngine, EngineChoice]] = {}


def pick_image_engine(backbone: Any, engine: str = "auto", probe_batch: int = 4) -> tuple[ImageEngine, EngineChoice]:
    """The image engine to use for ``backbone`` (cached per process and backbone).

    ``auto`` times torch and ONNX on a ``probe_batch`` of random inputs and keeps the faster."""
    key = (id(backbone), engine)
    if key in _IMAGE_CHOICES:
        return _IMAGE_CHOICES[key]
    engines: dict[str, ImageEngine] = {"torch": TorchImageEngine(backbone)}
    if engine != "torch":
        try:
            engines["onnx"] = OnnxImageEngine(backbone)
        except Exception as exc:  # no onnxruntime, or export unsupported: torch gives the same numbers
            if engine == "onnx":
                raise VidpopError(f"engine 'onnx' is unavailable for {backbone.name}: {exc}") from exc
            log.warning("ONNX Runtime unavailable for %s (%s); using torch", backbone.name, exc)
    x = np.random.default_rng(1).normal(size=(probe_batch, 3, backbone.size, backbone.size)).astype(np.float32)
    chosen, choice = _choose(engines, lambda e: e(x), probe_batch, engine)
    log.info("image backbone %s: %s", backbone.name, choice.describe())
    _IMAGE_CHOICES[key] = (chosen, choice)
    return chosen, choice


# ---------------------------------------------------------------------------- text encoder
class _PooledBert(nn.Module):
    """BERT -> attention-masked mean of token states -> L2 normalisation (= the sentence-transformers
    MiniLM pipeline), as one graph so ONNX returns the final sentence embedding."""

    def __init__(self, bert: nn.Module) -> None:
        super().__init__()
        self.bert = bert

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        tokens = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]
        m = attention_mask.unsqueeze(-1).to(tokens.dtype)
        pooled = (tokens * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, p=2, dim=1)


class OnnxTextEncoder:
    """A :class:`~vidpop.features.text.SentenceEncoder` run by ONNX Runtime: same ``name``, ``dim``,
    ``version`` and ``encode`` signature, so it drops in wherever the torch encoder is used."""

    engine = "onnx"

    def __init__(self, encoder: Any, threads: int | None = None, verify: bool = True) -> None:
        st = encoder.model
        self.name, self.dim, self.version = encoder.name, encoder.dim, encoder.version
        self.tokenizer = st.tokenizer
        self.max_length = int(st.max_seq_length)
        self.path = onnx_dir() / f"text-{_safe(encoder.version)}-op{OPSET}.onnx"
        if not self.path.is_file():
            wrapper = _PooledBert(st[0].auto_model).eval()
            feed = self._tokens(["a probe sentence", "two"])
            args = tuple(torch.from_numpy(feed[k]) for k in ("input_ids", "attention_mask", "token_type_ids"))
            axes = {k: {0: "batch", 1: "seq"} for k in ("input_ids", "attention_mask", "token_type_ids")}
            export_once(wrapper, args, self.path, list(feed), ["emb"], {**axes, "emb": {0: "batch"}})
        self.session = _session(self.path, threads)
        self.max_diff = float("nan")
        if verify:
            probe = ["Cute cat jumps over the sofa", "游戏 highlights", "x"]
            self.max_diff = float(np.abs(self.encode(probe) - encoder.encode(probe)).max())
            if not self.max_diff < TOLERANCE:
                raise VidpopError(f"ONNX text encoder disagrees with torch (max |diff| {self.max_diff:.3g})")

    def _tokens(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        enc = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="np"
        )
        ids = enc["input_ids"].astype(np.int64)
        tt = enc.get("token_type_ids")
        return {
            "input_ids": ids,
            "attention_mask": enc["attention_mask"].astype(np.int64),
            "token_type_ids": np.zeros_like(ids) if tt is None else tt.astype(np.int64),
        }

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        # sort by length so each batch pads little (as sentence-transformers does)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        for s in range(0, len(texts), batch_size):
            idx = order[s : s + batch_size]
            out[idx] = self.session.run(None, self._tokens([texts[i] for i in idx]))[0]
        return out


_TEXT_CHOICES: dict[tuple[str, str], tuple[Any, EngineChoice]] = {}


def pick_text_engine(
    name: str = "title_minilm", engine: str = "auto", probe: Sequence[str] | None = None
) -> tuple[Any, EngineChoice]:
    """The sentence encoder ``name`` in the faster engine (cached per process). The torch encoder
    comes from :func:`vidpop.features.text.load_text_encoder`; only MiniLM has an ONNX twin."""
    from vidpop.features.text import load_text_encoder

    key = (name, engine)
    if key in _TEXT_CHOICES:
        return _TEXT_CHOICES[key]
    base = load_text_encoder(name)
    engines: dict[str, Any] = {"torch": base}
    if engine != "torch" and hasattr(base, "model") and hasattr(base.model, "tokenizer"):
        try:
            engines["onnx"] = OnnxTextEncoder(base)
        except Exception as exc:  # no onnxruntime, or export unsupported: torch gives the same numbers
            if engine == "onnx":
                raise VidpopError(f"engine 'onnx' is unavailable for {name}: {exc}") from exc
            log.warning("ONNX Runtime unavailable for %s (%s); using torch", name, exc)
    texts = list(probe) if probe else [f"probe title number {i} about games and food" for i in range(32)]
    chosen, choice = _choose(engines, lambda e: e.encode(texts), len(texts), engine)
    log.info("text encoder %s: %s", name, choice.describe())
    _TEXT_CHOICES[key] = (chosen, choice)
    return chosen, choice
