"""Video semantic embedding: text (T_t) and visual (T_v) features projected into one D_e space.

Trained with the bidirectional hinge contrastive loss on unit-normalised embeddings: a video's
text must be closer to its own image than to a sampled negative image by the margin tau_1, and vice
versa. Only items that really have a visual feature take part (``present`` mask); an item without
one is embedded from its text alone, never from a zero image.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vidpop.models.rec_baselines.torch_common import unit_rows


class SemanticEmbedding(nn.Module):
    """``forward(text, visual, present) -> (n, d_e)`` unit vectors: mean of the text and visual
    embeddings (renormalised) where the visual exists, the text embedding elsewhere."""

    def __init__(self, d_text: int, d_visual: int, d_e: int) -> None:
        super().__init__()
        self.T_t = nn.Linear(d_text, d_e)
        self.T_v = nn.Linear(d_visual, d_e) if d_visual else None

    def embed_text(self, text: torch.Tensor) -> torch.Tensor:
        return unit_rows(self.T_t(text))

    def embed_visual(self, visual: torch.Tensor) -> torch.Tensor:
        assert self.T_v is not None
        return unit_rows(self.T_v(visual))

    def forward(
        self, text: torch.Tensor, visual_rows: torch.Tensor | None = None, rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Embed every item from ``text (n, d_text)``; ``visual_rows[j]`` is the visual feature of item
        ``rows[j]`` (only the items that have one)."""
        e_t = self.embed_text(text)
        if self.T_v is None or visual_rows is None or rows is None or not len(rows):
            return e_t
        fused = unit_rows(e_t[rows] + self.embed_visual(visual_rows))
        return e_t.index_copy(0, rows, fused)


def contrastive_hinge(
    e_text: torch.Tensor, e_vis: torch.Tensor, neg_text: torch.Tensor, neg_vis: torch.Tensor, margin: float
) -> torch.Tensor:
    """Bidirectional hinge loss, mean over pairs ``i``:
    ``[m - s(t_i, v_i) + s(t_i, v'_i)]_+ + [m - s(t_i, v_i) + s(t'_i, v_i)]_+`` with cosine ``s`` (inputs
    are unit vectors) and ``t'_i, v'_i`` the text and visual embeddings of pair ``i``'s negative video."""
    pos = (e_text * e_vis).sum(-1)
    t_to_v = (e_text * neg_vis).sum(-1)
    v_to_t = (neg_text * e_vis).sum(-1)
    return (F.relu(margin - pos + t_to_v) + F.relu(margin - pos + v_to_t)).mean()


def sample_negatives(n: int, rng: np.random.Generator) -> np.ndarray:
    """A negative partner ``j != i`` for each of ``n`` pairs, uniform over the others (n >= 2)."""
    if n < 2:
        return np.zeros(n, np.int64)
    return (np.arange(n) + rng.integers(1, n, size=n)) % n
