"""Grad-CAM for the attention model, computed end to end through the image CNN.

For each frame i with last conv map A_i (C × h × w) and the popular-class score s (the logit of class 1):
γ_{i,f} = mean over space of ∂s/∂A_{i,f}; H_i = ReLU(Σ_f γ_{i,f} A_{i,f}), normalised to [0, 1] and then
scaled by α_i / max(α), so that frames the model did not attend to fade out.

The conv maps come from running the raw frames through the backbone (``forward_from_frames``); the score
is the classifier's output on the spatial means of those maps, so ∂s/∂A is the true gradient of the
model's decision. Nothing here reads cached pooled features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vidpop.errors import VidpopError

#: index of the "popular" class in the attention model's logits
POPULAR = 1


def cam_from_gradients(feature_map: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    """Raw Grad-CAM maps (N, h, w) = ReLU(Σ_f γ_f A_f) with γ_f the spatial mean of the gradients."""
    if feature_map.shape != gradients.shape or feature_map.ndim != 4:
        raise VidpopError(
            f"feature map {tuple(feature_map.shape)} and gradients {tuple(gradients.shape)} must match (N, C, h, w)"
        )
    gamma = gradients.mean(dim=(2, 3), keepdim=True)
    return torch.relu((gamma * feature_map).sum(dim=1))


def normalise_maps(cams: torch.Tensor) -> torch.Tensor:
    """Divide each map by its maximum ([0, 1]); an all-zero map stays zero."""
    peak = cams.flatten(1).max(dim=1).values.clamp(min=1e-12).view(-1, 1, 1)
    return torch.where(peak > 1e-12, cams / peak, torch.zeros_like(cams))


def scale_by_attention(maps: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Scale map i by α_i / max(α)."""
    alpha = alpha.reshape(-1)
    if len(alpha) != len(maps):
        raise VidpopError(f"{len(maps)} heatmaps but {len(alpha)} attention weights")
    return maps * (alpha / alpha.max().clamp(min=1e-12)).view(-1, 1, 1)


def grad_cam(
    feature_map: torch.Tensor, score: torch.Tensor, alpha: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Grad-CAM of a scalar ``score`` w.r.t. ``feature_map`` (N, C, h, w), which must be in its graph.

    Returns (heatmaps scaled by attention in [0, 1], the gradients). ``alpha=None`` skips the scaling.
    """
    if not feature_map.requires_grad:
        raise VidpopError("the feature map is not part of the autograd graph; run the frames through the backbone")
    (grads,) = torch.autograd.grad(score, feature_map, retain_graph=True)
    maps = normalise_maps(cam_from_gradients(feature_map.detach(), grads))
    if alpha is not None:
        maps = scale_by_attention(maps, alpha.detach())
    return maps, grads


@dataclass
class ClipExplanation:
    """Everything the renderer and the JSON need for one clip (numpy, detached)."""

    p_popular: float
    alpha: np.ndarray | None  # (N,) frame attention
    heatmaps: np.ndarray | None  # (N, h, w) in [0, 1], scaled by α_i / max α
    raw_heatmaps: np.ndarray | None  # (N, h, w) in [0, 1] before the attention scaling
    grad_norm: float  # |∂s/∂A|: proof that gradients reached the conv map
    #: (N,) total positive Grad-CAM evidence per frame, Σ ReLU(Σ_f γ_f A_f), before normalisation
    evidence: np.ndarray | None
    words: list[str]
    in_vocab: list[bool]
    beta: np.ndarray | None  # (n_words,) word attention over the title's tokens


def explain_clip(model: object, images: torch.Tensor | None, title: str | None) -> ClipExplanation:
    """Run ``model`` (an :class:`~vidpop.models.attention_explain.AttentionExplainModel`) from raw
    preprocessed frames (N, 3, H, W) and a title, and compute Grad-CAM + α + β for the popular class."""
    from vidpop.data.preprocessing import tokenize
    from vidpop.models.attention_explain import AttentionExplainModel

    if not isinstance(model, AttentionExplainModel):
        raise VidpopError(f"explanations need an attention_explain model, got {type(model).__name__}")
    with torch.enable_grad():
        out = model.forward_from_frames(images, title)
        score = out["logits"][0, POPULAR]
        p = float(torch.softmax(out["logits"].detach(), dim=1)[0, POPULAR])
        alpha = heat = raw = evidence = None
        grad_norm = 0.0
        if "feature_map" in out:
            a = out["alpha"][0]
            raw_t, grads = grad_cam(out["feature_map"], score, alpha=None)
            evidence = cam_from_gradients(out["feature_map"].detach(), grads).sum(dim=(1, 2)).numpy()
            heat = scale_by_attention(raw_t, a.detach()).numpy()
            raw, alpha = raw_t.numpy(), a.detach().numpy()
            grad_norm = float(grads.norm())
    words: list[str] = []
    in_vocab: list[bool] = []
    beta = None
    if "beta" in out:
        vocab = model.vocab_
        words = tokenize(title or "")[: model.config.max_words]
        in_vocab = [w in vocab for w in words]
        beta = out["beta"][0, : max(len(words), 1)].detach().numpy()[: len(words)]
    return ClipExplanation(p, alpha, heat, raw, grad_norm, evidence, words, in_vocab, beta)


def top_frame(expl: ClipExplanation, by_evidence: bool = False) -> int | None:
    """The most attended frame; ties in α (e.g. an attention that never saw multi-frame clips is
    uniform) are broken by the frame's Grad-CAM evidence for the popular class. ``by_evidence``: rank by
    the evidence alone (α carries no information: not learned)."""
    if expl.alpha is None or len(expl.alpha) == 0:
        return None
    if by_evidence and expl.evidence is not None:
        return int(np.argmax(expl.evidence))
    best = np.flatnonzero(np.isclose(expl.alpha, expl.alpha.max(), rtol=1e-4, atol=1e-7))
    if len(best) > 1 and expl.evidence is not None:
        return int(best[np.argmax(expl.evidence[best])])
    return int(best[0])
