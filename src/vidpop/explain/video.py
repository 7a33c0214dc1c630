"""Explain one clip: sample its frames, run them through the image CNN and the attention model, and
write the Grad-CAM / attention / word-importance PNGs and JSON (the API entry point)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vidpop.errors import VidpopError
from vidpop.explain.gradcam import explain_clip
from vidpop.explain.render import render_explanation

#: frames are decoded at this height (aspect kept): enough for the 224-px CNN input and the PNGs
FRAME_HEIGHT = 224


#: a still image (a cover) is explained as a one-frame clip
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"})


def read_clip(video_path: str | Path, n_frames: int, seconds: float) -> tuple[list[np.ndarray], list[float]]:
    """``n_frames`` RGB frames evenly spread over the first ``seconds`` of the clip, and their times.
    An image file (a cover) gives one frame at t = 0."""
    from vidpop.features.video import probe, sample_frames

    if Path(video_path).suffix.lower() in IMAGE_SUFFIXES:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(video_path) as im:
                rgb = im.convert("RGB")
        except (OSError, UnidentifiedImageError) as exc:
            raise VidpopError(f"cannot read image {Path(video_path).name}: {exc}") from exc
        width = max(2, round(FRAME_HEIGHT * rgb.width / max(rgb.height, 1)))
        return [np.asarray(rgb.resize((width, FRAME_HEIGHT)))], [0.0]

    info = probe(video_path)
    width = max(2, round(FRAME_HEIGHT * info.width / max(info.height, 1)) // 2 * 2)
    return sample_frames(video_path, n_frames=n_frames, first_seconds=seconds, resize=(width, FRAME_HEIGHT))


def explain_video(
    model: Any,
    video_path: str | Path,
    title: str,
    out_dir: str | Path,
    n_frames: int | None = None,
    seconds: float | None = None,
    note: str = "",
) -> dict[str, Any]:
    """Explain ``model``'s popularity prediction for one clip; returns the JSON written to
    ``out_dir/explanation.json`` (frame timestamps, α, heatmaps, overlay PNG paths, words + β).

    Frames: ``n_frames`` (default: the model's) over the first ``seconds`` (default: the model's).
    Grad-CAM runs end to end: raw frames -> backbone conv map -> pooled -> model -> popular-class score.
    ``note`` (e.g. what the model was trained on) is printed under the figure's title and kept in the JSON.
    """
    from vidpop.models.attention_explain import AttentionExplainModel

    if not isinstance(model, AttentionExplainModel):
        raise VidpopError(f"explain_video needs an attention_explain model, got {type(model).__name__}")
    cfg = model.config
    title = (title or "").strip()
    frames: list[np.ndarray] = []
    times: list[float] = []
    images = None
    if cfg.uses_frames:
        frames, times = read_clip(video_path, n_frames or cfg.n_frames, seconds or cfg.seconds)
        images = model.backbone().preprocess(frames)
    expl = explain_clip(model, images, title)
    status = model.frame_attention_status(expl.alpha) if cfg.uses_frames else None
    data = render_explanation(
        frames, times, expl, title, out_dir, source=Path(video_path).name, note=note, frame_attention=status
    )
    data["model"] = {
        "name": model.model_name,
        "modalities": cfg.modalities,
        "frame_pooling": cfg.frame_pooling,
        "headline_pooling": cfg.headline_pooling,
        "backbone": cfg.backbone,
    }
    import json

    (Path(out_dir) / "explanation.json").write_text(json.dumps(data, indent=1, ensure_ascii=False))
    return data
