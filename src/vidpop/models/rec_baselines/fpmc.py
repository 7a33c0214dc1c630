"""FPMC (Rendle et al. 2010): factorised personalised Markov chain, trained with the BPR loss.

``x(u, l, i) = <v_u, V^{IU}_i> + <V^{LI}_l, V^{IL}_i>``: a long-term user-item term plus a
first-order transition from the last item ``l``. The user vector ``v_u`` is the mean embedding of the
user's recent history (FISM-style) instead of a per-user id embedding, so that test and brand-new
users are scored from their history alone (the protocol gives models histories, not user ids).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vidpop.models.rec_baselines.common import FittedItems
from vidpop.models.rec_baselines.torch_common import next_item_samples, query_windows, train_config
from vidpop.models.recommender import RecData, UserQuery
from vidpop.models.registry import register_model
from vidpop.training.loop import fit_module


class FPMCNet(nn.Module):
    def __init__(self, n_items: int, dim: int) -> None:
        super().__init__()
        self.n_items = n_items
        self.hist = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.item_u = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.last = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.item_l = nn.Embedding(n_items + 1, dim, padding_idx=0)
        for emb in (self.hist, self.item_u, self.last, self.item_l):
            nn.init.normal_(emb.weight, std=0.05)
            emb.weight.data[0] = 0

    def user(self, hist: torch.Tensor) -> torch.Tensor:
        n = (hist > 0).sum(1, keepdim=True).clamp(min=1)
        return self.hist(hist).sum(1) / n

    def forward(self, hist: torch.Tensor, last: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of ``items`` (B,) for each sample."""
        u, l_ = self.user(hist), self.last(last)
        return (u * self.item_u(items)).sum(-1) + (l_ * self.item_l(items)).sum(-1)

    def all_scores(self, hist: torch.Tensor) -> torch.Tensor:
        u, l_ = self.user(hist), self.last(hist[:, -1])
        return u @ self.item_u.weight[1:].T + l_ @ self.item_l.weight[1:].T


def bpr_loss(module: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """BPR: log-sigmoid of (positive - uniformly sampled negative), negatives drawn anew per batch."""
    neg = torch.randint(1, module.n_items + 1, batch["target"].shape)
    diff = module(batch["hist"], batch["last"], batch["target"]) - module(batch["hist"], batch["last"], neg)
    loss = -F.logsigmoid(diff).mean()
    return loss, {"auc": float((diff > 0).float().mean())}


@dataclass
class FPMCConfig:
    dim: int = 64
    window: int = 10
    epochs: int = 5
    batch_size: int = 2048
    lr: float = 5e-3
    weight_decay: float = 1e-6
    seed: int = 0
    progress: bool = True


@register_model("rec_fpmc")
class FPMCRecommender(FittedItems):
    """FPMC with BPR, history-mean user vectors (inductive)."""

    description = "FPMC: factorised personalised Markov chain (BPR loss)"
    Config = FPMCConfig

    def _build_module(self) -> nn.Module:
        return FPMCNet(self.n_items_, self.config.dim)

    def fit(self, X: RecData, y: Any = None, **kwargs: Any) -> FPMCRecommender:
        self._remember(X)
        cfg = self.config
        torch.manual_seed(cfg.seed)
        self.module_ = self._build_module()
        samples = next_item_samples(X.sequences, cfg.window)
        tc = train_config(cfg.epochs, cfg.batch_size, cfg.lr, cfg.weight_decay, cfg.seed, cfg.progress)
        hist = fit_module(self.module_, bpr_loss, samples, None, tc)
        self.epochs_run_ = len(hist.epochs)
        self.train_log_ = hist.epochs
        return self

    @torch.no_grad()
    def score(self, X: list[UserQuery], y: Any = None) -> np.ndarray:
        self._check_fitted()
        self.module_.eval()
        hist = torch.from_numpy(query_windows(X, self.config.window))
        return self.module_.all_scores(hist).numpy()
