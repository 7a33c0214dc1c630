"""Render an attention-model explanation as PNGs (matplotlib Agg + PIL) and as JSON.

One composite ``explanation.png``: the frame strip with each frame's attention weight α, the Grad-CAM
overlays, the top-attended frame enlarged, and the title with each word shaded by its weight β. The same
numbers go to ``explanation.json`` (timestamps, α, 7×7-ish heatmaps as arrays, per-frame overlay PNG paths,
words + β) so that the API and the web page can draw their own view without re-running the model.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colormaps
from PIL import Image

from vidpop.explain.gradcam import ClipExplanation, top_frame

HEAT_CMAP = "jet"
WORD_CMAP = "Oranges"


def overlay(frame: np.ndarray, heatmap: np.ndarray, strength: float = 0.6) -> np.ndarray:
    """Blend a [0, 1] heatmap (h, w), upsampled bilinearly to the frame, over an RGB uint8 frame.
    The blend weight follows the heat, so cold regions show the frame as it is."""
    frame = np.asarray(frame)
    h_img = Image.fromarray(np.clip(heatmap, 0, 1).astype(np.float32), mode="F")
    heat = np.asarray(h_img.resize((frame.shape[1], frame.shape[0]), Image.BILINEAR), dtype=np.float32)
    heat = np.clip(heat, 0.0, 1.0)
    colour = colormaps[HEAT_CMAP](heat)[..., :3]
    w = (strength * heat)[..., None]
    out = (1 - w) * (frame.astype(np.float32) / 255.0) + w * colour
    return (np.clip(out, 0, 1) * 255).astype(np.uint8)


def _draw_words(ax: plt.Axes, words: Sequence[str], weights: np.ndarray, in_vocab: Sequence[bool]) -> None:
    """Title words left to right with wrapping, each on a box shaded by its weight relative to the
    largest one (darker = more), with β printed underneath."""
    ax.set_axis_off()
    if not words:
        ax.text(0, 0.5, "(no title words)", fontsize=12, transform=ax.transAxes)
        return
    renderer = ax.figure.canvas.get_renderer()
    top = float(weights.max()) if len(weights) and weights.max() > 0 else 1.0
    cmap = colormaps[WORD_CMAP]
    x, y, line_h = 0.0, 0.88, 0.17
    for word, wt, known in zip(words, weights, in_vocab, strict=True):
        shade = cmap(0.05 + 0.85 * float(wt) / top)
        text = ax.text(
            x,
            y,
            word,
            fontsize=13,
            transform=ax.transAxes,
            style="normal" if known else "italic",
            color="white" if float(wt) / top > 0.7 else "black",
            bbox={"boxstyle": "round,pad=0.25", "facecolor": shade, "edgecolor": "none"},
        )
        bb = text.get_window_extent(renderer).transformed(ax.transAxes.inverted())
        if bb.x1 > 1.0 and x > 0:
            x, y = 0.0, y - line_h
            text.set_position((x, y))
            bb = text.get_window_extent(renderer).transformed(ax.transAxes.inverted())
        ax.text(
            (bb.x0 + bb.x1) / 2,
            y - 0.06,
            f"{float(wt):.2f}",
            fontsize=8,
            ha="center",
            color="0.3",
            transform=ax.transAxes,
        )
        x = bb.x1 + 0.02
    ax.text(
        0,
        y - line_h,
        f"word attention β (shade relative to the largest, {top:.2f}; uniform would be "
        f"{1 / len(words):.2f}). Italic: not in the training vocabulary (<unk>).",
        fontsize=9,
        color="0.35",
        transform=ax.transAxes,
        wrap=True,
    )


def _draw_figure(
    frames: Sequence[np.ndarray],
    timestamps: Sequence[float],
    expl: ClipExplanation,
    overlays: list[np.ndarray],
    top: int | None,
    title: str,
    source: str,
    note: str,
    path: Path,
    alpha_note: str = "",
) -> None:
    """The composite PNG: frame strip, α bars, Grad-CAM strip, top frame, shaded title words."""
    n = len(overlays)
    cols = max(n, 6)
    width = max(14.0, 1.05 * cols)
    aspect = frames[0].shape[0] / frames[0].shape[1] if n else 0.4
    thumb = width / cols * aspect  # height of one strip thumbnail (inches)
    main = 0.45 * width * aspect if n else 3.0
    fig = plt.figure(figsize=(width, (2 * thumb + 1.2 if n else 0) + main + 0.8), dpi=90)
    fig.suptitle(
        f"P(popular) = {expl.p_popular:.2f}" + (f"   —   {source}" if source else "") + (f"\n{note}" if note else ""),
        fontsize=13,
    )
    if n and top is not None and expl.alpha is not None:
        gs = fig.add_gridspec(4, cols, height_ratios=[thumb, 1.2, thumb, main], hspace=0.35)
        for i in range(n):
            for row, img in ((0, frames[i]), (2, overlays[i])):
                ax = fig.add_subplot(gs[row, i])
                ax.imshow(img)
                ax.set_axis_off()
            fig.axes[-2].set_title(f"{timestamps[i]:.1f}s", fontsize=8, color="crimson" if i == top else "black")
        axb = fig.add_subplot(gs[1, :n])
        bars = axb.bar(np.arange(n), expl.alpha, color=["crimson" if i == top else "steelblue" for i in range(n)])
        axb.bar_label(bars, fmt="%.3f", fontsize=7)
        axb.set_xlim(-0.5, n - 0.5)
        axb.set_xticks([])
        axb.set_ylabel("α", fontsize=11)
        axb.set_ylim(0, max(float(expl.alpha.max()) * 1.3, 1e-6))
        if alpha_note:  # α bars that look meaningful are not: say so on the chart itself
            axb.set_title(alpha_note, fontsize=10, color="crimson")
        axt = fig.add_subplot(gs[3, : cols // 2])
        axt.imshow(overlays[top])
        axt.set_axis_off()
        tie = "; chosen by Grad-CAM evidence" if alpha_note or np.ptp(expl.alpha) < 1e-6 else ""
        axt.set_title(
            f"top frame #{top} at {timestamps[top]:.1f}s (α = {expl.alpha[top]:.3f}{tie}); "
            "Grad-CAM of the popular class",
            fontsize=10,
        )
        axw = fig.add_subplot(gs[3, cols // 2 :])
    else:
        axw = fig.add_subplot(1, 1, 1)
    if expl.beta is not None:
        _draw_words(axw, expl.words, expl.beta, expl.in_vocab)
    else:
        axw.set_axis_off()
        axw.text(
            0, 0.5, f"title: {title}\n(this model uses no headline)", fontsize=12, transform=axw.transAxes, wrap=True
        )
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def render_explanation(
    frames: Sequence[np.ndarray],
    timestamps: Sequence[float],
    expl: ClipExplanation,
    title: str,
    out_dir: str | Path,
    source: str = "",
    note: str = "",
    frame_attention: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``explanation.png``, ``top_frame.png``, ``overlays/frame_XX.png`` and ``explanation.json``
    into ``out_dir``; returns the JSON content (paths relative to ``out_dir``).

    ``frame_attention``: the model's :meth:`frame_attention_status` for this clip; its ``note`` (α not
    learned or uniform) is printed on the α chart and kept in the JSON, and the top frame is then the one
    with the most Grad-CAM evidence."""
    alpha_note = (frame_attention or {}).get("note") or ""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = len(frames)
    has_frames = expl.heatmaps is not None and n > 0
    overlays: list[np.ndarray] = []
    overlay_paths: list[str] = []
    if has_frames:
        (out / "overlays").mkdir(exist_ok=True)
        for i, (frame, heat) in enumerate(zip(frames, expl.heatmaps, strict=True)):
            ov = overlay(frame, heat)
            overlays.append(ov)
            rel = f"overlays/frame_{i:02d}.png"
            Image.fromarray(ov).save(out / rel)
            overlay_paths.append(rel)
    top = top_frame(expl, by_evidence=bool(alpha_note)) if has_frames else None
    if top is not None:
        # the top frame's own (unscaled) map: it is the most attended frame, so its scale factor is 1
        Image.fromarray(overlay(frames[top], expl.raw_heatmaps[top])).save(out / "top_frame.png")

    with warnings.catch_warnings():
        # fonts lack CJK glyphs and emoji: such characters show as boxes in the PNG (the JSON keeps them)
        warnings.filterwarnings("ignore", message="Glyph .* missing")
        _draw_figure(frames, timestamps, expl, overlays, top, title, source, note, out / "explanation.png", alpha_note)

    data: dict[str, Any] = {
        "source": source,
        "note": note,
        "title": title,
        "p_popular": round(expl.p_popular, 6),
        "frames": [
            {
                "index": i,
                "timestamp": round(float(timestamps[i]), 3),
                "alpha": round(float(expl.alpha[i]), 6),
                "gradcam_evidence": round(float(expl.evidence[i]), 6) if expl.evidence is not None else None,
                "heatmap": np.round(expl.heatmaps[i], 4).tolist(),
                "overlay_png": overlay_paths[i],
            }
            for i in range(n)
        ]
        if has_frames
        else [],
        "top_frame": top,
        "frame_attention": frame_attention,
        "grad_norm": expl.grad_norm,
        "words": [
            {"word": w, "beta": round(float(b), 6), "in_vocab": bool(k)}
            for w, b, k in zip(expl.words, expl.beta if expl.beta is not None else [], expl.in_vocab, strict=False)
        ],
        "files": {
            "explanation_png": "explanation.png",
            "top_frame_png": "top_frame.png" if top is not None else None,
        },
    }
    (out / "explanation.json").write_text(json.dumps(data, indent=1, ensure_ascii=False))
    return data
