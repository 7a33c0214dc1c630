"""SASRec (Kang & McAuley 2018) in plain PyTorch: the modern reference for next-item prediction.

A causal Transformer over the last ``max_len`` items; the hidden state at each position scores the
next item by a dot product with the (shared) item embeddings. Training uses a sampled softmax at
every position (the target against ``negatives`` uniform items shared by the batch), which is much
cheaper than a full softmax over the corpus on CPU and closer to today's practice than SASRec's
original one-negative binary loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vidpop.models.rec_baselines.common import FittedItems
from vidpop.models.rec_baselines.torch_common import left_pad, query_windows, train_config
from vidpop.models.recommender import RecData, UserQuery
from vidpop.models.registry import register_model
from vidpop.training.loop import fit_module


class SASRecNet(nn.Module):
    def __init__(
        self, n_items: int, dim: int, max_len: int, layers: int, heads: int, dropout: float, negatives: int
    ) -> None:
        super().__init__()
        self.n_items, self.negatives, self.heads = n_items, negatives, heads
        self.items = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.pos = nn.Embedding(max_len, dim)
        nn.init.normal_(self.items.weight, std=0.05)
        layer = nn.TransformerEncoderLayer(dim, heads, dim * 2, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        """Hidden states (B, L, d) of left-padded sequences (0 = padding)."""
        B, L = seq.shape
        valid = seq > 0
        x = self.items(seq) * (self.items.embedding_dim**0.5) + self.pos(torch.arange(L))[None]
        x = self.drop(x) * valid[..., None]
        causal = torch.ones(L, L, dtype=torch.bool).tril()
        # a query may attend to earlier valid keys and always to itself (no fully masked row -> no NaN)
        allowed = causal[None] & (valid[:, None, :] | torch.eye(L, dtype=torch.bool)[None])
        mask = torch.zeros(B, L, L).masked_fill(~allowed, float("-inf")).repeat_interleave(self.heads, 0)
        return self.norm(self.encoder(x, mask=mask)) * valid[..., None]

    def all_scores(self, seq: torch.Tensor) -> torch.Tensor:
        return self.encode(seq)[:, -1] @ self.items.weight[1:].T


def sampled_softmax_loss(module: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    seq, target = batch["seq"], batch["target"]
    h = module.encode(seq)  # (B, L, d)
    valid = target > 0
    pos = (h * module.items(target)).sum(-1, keepdim=True)  # (B, L, 1)
    neg_ids = torch.randint(1, module.n_items + 1, (module.negatives,))
    neg = h @ module.items(neg_ids).T  # (B, L, N)
    logits = torch.cat([pos, neg], -1)[valid]
    loss = F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long))
    return loss, {}


@dataclass
class SASRecConfig:
    dim: int = 64
    max_len: int = 20  # MicroLens users: median 6 interactions; longer windows cost CPU for little
    layers: int = 2
    heads: int = 2
    dropout: float = 0.2
    negatives: int = 128
    epochs: int = 5
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    progress: bool = True


@register_model("rec_sasrec")
class SASRecRecommender(FittedItems):
    """Self-attentive sequential recommender (causal Transformer)."""

    description = "SASRec: self-attentive sequential recommendation (modern reference)"
    Config = SASRecConfig

    def _build_module(self) -> nn.Module:
        c = self.config
        return SASRecNet(self.n_items_, c.dim, c.max_len, c.layers, c.heads, c.dropout, c.negatives)

    def fit(self, X: RecData, y: Any = None, **kwargs: Any) -> SASRecRecommender:
        self._remember(X)
        cfg = self.config
        torch.manual_seed(cfg.seed)
        self.module_ = self._build_module()
        seqs = [s for s in X.sequences if len(s) >= 2]
        data = {
            "seq": left_pad([s[:-1] for s in seqs], cfg.max_len),
            "target": left_pad([s[1:] for s in seqs], cfg.max_len),
        }
        tc = train_config(cfg.epochs, cfg.batch_size, cfg.lr, cfg.weight_decay, cfg.seed, cfg.progress)
        hist = fit_module(self.module_, sampled_softmax_loss, data, None, tc)
        self.epochs_run_ = len(hist.epochs)
        self.train_log_ = hist.epochs
        return self

    @torch.no_grad()
    def score(self, X: list[UserQuery], y: Any = None) -> np.ndarray:
        self._check_fitted()
        self.module_.eval()
        return self.module_.all_scores(torch.from_numpy(query_windows(X, self.config.max_len))).numpy()
