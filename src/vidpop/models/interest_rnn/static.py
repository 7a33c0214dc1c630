"""``static_dnn``: the paper's Static-DNN ablation baseline.

A 3-layer MLP maps the plain average of the history's item text features (no order, no time decay)
to a user vector; items are their projected text feature plus a free item vector. Trained with a
pairwise ranking (BPR) loss: each epoch every user gets a fresh random cut, the items before it are
the input, a random item after it is the positive and ``n_neg`` random items are negatives.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vidpop.errors import VidpopError
from vidpop.models.config import ModelConfig
from vidpop.models.interest_rnn.batching import TextFeatures, pad_sequences, precomputed_text_features
from vidpop.models.mlp import mlp
from vidpop.models.recommender import RecData, Recommender, UserQuery
from vidpop.models.registry import register_model
from vidpop.training.loop import TrainConfig, fit_module


@dataclass
class StaticDNNConfig(ModelConfig):
    text_feature: str = "title_minilm"
    hidden: tuple[int, ...] = (256, 256)  # with the output layer: 3 linear layers
    d_out: int = 128
    dropout: float = 0.1
    n_neg: int = 8
    item_id_embedding: bool = True
    max_len: int = 50
    val_fraction: float = 0.05
    lsa_dim: int = 128
    seed: int = 0
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            epochs=8, batch_size=256, lr=1e-3, optimizer="adam", weight_decay=1e-5, patience=2
        )
    )


class StaticDNNNet(nn.Module):
    def __init__(self, n_items: int, d_text: int, cfg: StaticDNNConfig) -> None:
        super().__init__()
        self.user_mlp = mlp([d_text, *cfg.hidden, cfg.d_out], dropout=cfg.dropout)
        self.item_proj = nn.Linear(d_text, cfg.d_out)
        self.item_id = nn.Embedding(n_items, cfg.d_out) if cfg.item_id_embedding else None
        if self.item_id is not None:
            nn.init.normal_(self.item_id.weight, std=0.01)
        self.item_bias = nn.Parameter(torch.zeros(n_items))
        self.register_buffer("text", torch.zeros(n_items, d_text))

    def users(self, seq: torch.Tensor, upto: torch.Tensor) -> torch.Tensor:
        """User vectors from the mean text feature of ``seq[:, :upto]`` (padding = n_items)."""
        padded = torch.cat([self.text, self.text.new_zeros(1, self.text.shape[1])])
        mask = (torch.arange(seq.shape[1])[None, :] < upto[:, None]).float()
        mean = (padded[seq] * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return self.user_mlp(mean)

    def items(self, idx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        text = self.text if idx is None else self.text[idx]
        vec = self.item_proj(text)
        if self.item_id is not None:
            vec = vec + (self.item_id.weight if idx is None else self.item_id(idx))
        return vec, (self.item_bias if idx is None else self.item_bias[idx])


@register_model("static_dnn")
class StaticDNN(Recommender):
    description = "Static-DNN ablation: 3-layer MLP on the averaged history text features, BPR ranking loss"
    Config = StaticDNNConfig
    capabilities = frozenset({"recommend"})

    @property
    def item_feature_kinds(self) -> tuple[str, ...]:
        return precomputed_text_features(self.config.text_feature)

    def _build_module(self) -> StaticDNNNet:
        return StaticDNNNet(self.n_items_, self.d_text_, self.config)

    def fit(self, X: RecData, y: Any = None, **kwargs: Any) -> StaticDNN:
        c = self.config
        rng = np.random.default_rng(c.seed)
        self.text_encoder_ = TextFeatures(c.text_feature, c.lsa_dim, c.seed)
        text, note = self.text_encoder_.fit_transform(X)
        self.notes_ = [note] if note else []
        self.n_items_, self.d_text_ = X.n_items, text.shape[1]
        self.item_ids_ = np.asarray(X.item_ids)
        net = self._build_module()
        net.text.copy_(torch.from_numpy(text))
        self.module_ = net
        seq, _, lens = pad_sequences(X.sequences, None, c.max_len, X.n_items)
        users = np.flatnonzero(lens >= 2)  # need one input and one target item
        if not len(users):
            raise VidpopError("static_dnn needs users with at least two interactions")
        users = users[rng.permutation(len(users))]
        n_val = round(len(users) * c.val_fraction) if len(users) >= 20 else 0
        seq_t, lens_t = torch.from_numpy(seq), torch.from_numpy(lens)
        draws: dict[str, torch.Tensor] = {}

        def on_epoch_start(epoch: int) -> None:
            cut = rng.integers(1, np.maximum(lens, 2))  # input = items [0, cut)
            target_pos = cut + (rng.random(len(lens)) * np.maximum(lens - cut, 1)).astype(np.int64)
            draws["cut"] = torch.from_numpy(cut)
            draws["pos"] = torch.from_numpy(seq[np.arange(len(seq)), np.minimum(target_pos, seq.shape[1] - 1)])
            draws["neg"] = torch.from_numpy(rng.integers(0, X.n_items, size=(len(seq), c.n_neg)))

        def loss_fn(m: StaticDNNNet, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
            u = batch["user"]
            width = int(lens_t[u].max())
            user = m.users(seq_t[u, :width], draws["cut"][u])
            cand = torch.cat([draws["pos"][u][:, None], draws["neg"][u]], 1)
            vec, bias = m.items(cand)
            s = (user[:, None, :] * vec).sum(-1) + bias
            loss = F.softplus(s[:, 1:] - s[:, :1]).mean()
            return loss, {"bpr": float(loss.detach())}

        val = {"user": np.sort(users[:n_val])} if n_val else None
        t0 = time.perf_counter()
        self.history_ = fit_module(
            net, loss_fn, {"user": np.sort(users[n_val:])}, val, c.train, on_epoch_start=on_epoch_start
        ).as_dict()
        self.epochs_run_ = len(self.history_["epochs"])
        self.seconds_per_epoch_ = (time.perf_counter() - t0) / max(self.epochs_run_, 1)
        return self

    @torch.no_grad()
    def full_sort_scores(self, X: list[UserQuery], batch_size: int = 1024) -> np.ndarray:
        """Dot product of the user vector with every item vector (an empty history gives the mean-free user)."""
        self._check_fitted()
        m = self.module_
        m.eval()
        vec, bias = m.items()
        outs = []
        for start in range(0, len(X), batch_size):
            chunk = X[start : start + batch_size]
            seq, _, lens = pad_sequences(
                [np.asarray(q.history, np.int64) for q in chunk], None, self.config.max_len, self.n_items_
            )
            user = m.users(torch.from_numpy(seq), torch.from_numpy(lens))
            outs.append((user @ vec.T + bias).numpy())
        return np.concatenate(outs) if outs else np.zeros((0, self.n_items_), np.float32)
