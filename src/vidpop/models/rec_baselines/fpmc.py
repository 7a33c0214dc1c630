"""FPMC (Rendle et al. 2010): factorised personalised Markov chain, trained with the BPR loss.

``x(u, l, i) = <v_u, V^{IU}_i> + <V^{LI}_l, V^{IL}_i>``: a long-term user-item term plus a
first-order transition from the last item ``l``. The user vector ``v_u`` is the mean embedding of the
user's recent history (FISM-style) instead of a per-user id embedding, so that test and brand-new
users are scored from their history alone (the protocol gives models histories, not user ids).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vidpop.models.config import ModelConfig
from vidpop.models.rec_baselines.torch_common import (
    SequentialTorchRecommender,
    next_item_samples,
    query_windows,
    rec_train_config,
)
from vidpop.models.recommender import RecData, UserQuery
from vidpop.models.registry import register_model
from vidpop.training.loop import TrainConfig


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


def _fpmc_train() -> TrainConfig:
    return rec_train_config(epochs=30, batch_size=2048, lr=5e-3, weight_decay=1e-6, patience=3)


@dataclass
class FPMCConfig(ModelConfig):
    dim: int = 64
    window: int = 10
    val_users: int | None = 10000  # validation users drawn for early stopping (None = all)
    train: TrainConfig = field(default_factory=_fpmc_train)


@register_model("rec_fpmc")
class FPMCRecommender(SequentialTorchRecommender):
    """FPMC with BPR, history-mean user vectors (inductive)."""

    description = "FPMC: factorised personalised Markov chain (BPR loss)"
    Config = FPMCConfig
    capabilities = frozenset({"recommend"})
    loss = staticmethod(bpr_loss)

    def _build_module(self) -> nn.Module:
        return FPMCNet(self.n_items_, self.config.dim)

    def _training_arrays(self, data: RecData) -> dict[str, np.ndarray]:
        return next_item_samples(data.sequences, self.config.window)

    def _query_tensor(self, queries: list[UserQuery]) -> torch.Tensor:
        return torch.from_numpy(query_windows(queries, self.config.window))
