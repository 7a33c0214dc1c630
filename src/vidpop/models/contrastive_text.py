"""A low-dimensional text vector learned contrastively: a projection of sentence embeddings.

The variational regressor's textual expert reads a small (default 20-d) vector rather than the 384-d
MiniLM embedding: with a few thousand labelled posts a 384-d input to a deep encoder over-fits, and a
projection learned *without labels* keeps what distinguishes one text from another. The projection
``g`` is trained with the symmetric InfoNCE loss between two views of the same item (the title and a
second text of the item: its description / search suggestions, or a token-dropped copy of the title):

    L = ½ [CE(s, diag) + CE(sᵀ, diag)],   s_ij = cos(g(a_i), g(b_j)) / τ

so that views of one item land close together and views of different items apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vidpop.errors import VidpopError
from vidpop.models.mlp import mlp
from vidpop.training.loop import History, TrainConfig, fit_module


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE between row-aligned views ``a`` and ``b`` (B, d); other rows are the negatives."""
    a = nn.functional.normalize(a, dim=1)
    b = nn.functional.normalize(b, dim=1)
    logits = a @ b.T / temperature
    target = torch.arange(len(a), device=a.device)
    return 0.5 * (nn.functional.cross_entropy(logits, target) + nn.functional.cross_entropy(logits.T, target))


@dataclass
class ContrastiveTextConfig:
    out_dim: int = 20
    hidden: int = 128
    temperature: float = 0.1
    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    seed: int = 0
    #: share of pairs held out for early stopping of the contrastive loss
    val_frac: float = 0.1


class ProjectionHead(nn.Module):
    """in_dim -> hidden -> out_dim (LeakyReLU); the textual expert's input is its (unnormalised) output."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = mlp([in_dim, hidden, out_dim], act=nn.LeakyReLU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def fit_projection(
    head: ProjectionHead, view_a: np.ndarray, view_b: np.ndarray, cfg: ContrastiveTextConfig, progress: bool = False
) -> History:
    """Train ``head`` in place on pairs (view_a[i], view_b[i]) with InfoNCE; returns the loop's history."""
    view_a = np.asarray(view_a, np.float32)
    view_b = np.asarray(view_b, np.float32)
    if view_a.shape != view_b.shape or view_a.ndim != 2:
        raise VidpopError(
            f"contrastive views must be two (n, d) arrays of one shape, got {view_a.shape}, {view_b.shape}"
        )
    if len(view_a) < 4:
        raise VidpopError("contrastive text projection needs at least 4 texts")
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(len(view_a))
    n_val = round(len(order) * cfg.val_frac) if len(order) >= 40 else 0
    val_idx, tr_idx = order[:n_val], order[n_val:]

    def loss_fn(m: nn.Module, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        return info_nce(m(b["a"]), m(b["b"]), cfg.temperature), {}

    train = {"a": view_a[tr_idx], "b": view_b[tr_idx]}
    val = {"a": view_a[val_idx], "b": view_b[val_idx]} if n_val else None
    tcfg = TrainConfig(
        epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, patience=5, seed=cfg.seed, progress=progress
    )
    history = fit_module(head, loss_fn, train, val, tcfg)
    head.requires_grad_(False)
    return history


def token_dropout_view(texts: list[str], drop: float = 0.3, seed: int = 0) -> list[str]:
    """A second view of each text: each word dropped with probability ``drop`` (seeded; one word kept at
    least), so that short titles still have a non-identical positive."""
    rng = np.random.default_rng(seed)
    out = []
    for t in texts:
        words = str(t).split()
        if len(words) <= 1:
            out.append(str(t))
            continue
        keep = rng.random(len(words)) >= drop
        if not keep.any():
            keep[rng.integers(len(words))] = True
        out.append(" ".join(w for w, k in zip(words, keep, strict=True) if k))
    return out
