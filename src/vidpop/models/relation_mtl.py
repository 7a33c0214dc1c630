"""Relation network + multi-task regressor (``relation_mtl``): how a title does depends on its own wide,
non-linear features and on the competitors released just before it.

Network (all MLPs from the core :func:`~vidpop.models.mlp.mlp` builder):

* ``e()``: a deep encoder (default 15 linear layers, batch norm, ReLU, dropout) applied to the title
  (``o``) and to each of its related titles (``o_i``);
* ``g(o, o_i)``: a 3-layer MLP on the concatenated pair, summed element-wise over the real competitors
  (padding masked out), then ``f()``: 3 layers;
* heads ``h()`` (main: log views) and ``h'()`` (auxiliary: e.g. log follows), each a 2-layer MLP. With
  ``head_skip`` (default) the heads read ``[o ; f(Σ g)]`` rather than ``f(Σ g)`` alone, so a title with
  no earlier competitor (the first ones in time) still has its own encoding.

Loss = MSE(main) + λ·MSE(aux) + γ·Σ‖W‖² over weight matrices (``aux_weight`` = λ, ``l2_weight`` = γ),
on targets standardised with the training mean and std. Rows whose auxiliary target is missing
contribute to the main term only. Early stopping monitors the validation *main* MSE, so every ablation
variant is selected by the same criterion.

Ablation switches: ``use_relation=False`` drops g/f (the "DNN"), ``aux_weight=0`` drops the auxiliary
head (no multi-task learning). Inputs come from :mod:`vidpop.models.relation_features`
(``relation_inputs``): ``{"x": (m, d), "rel": (m, n, d), "rel_mask": (m, n)}``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from vidpop.errors import VidpopError
from vidpop.models.base import VidpopModel
from vidpop.models.config import ModelConfig
from vidpop.models.mlp import mlp
from vidpop.models.registry import register_model
from vidpop.training.loop import TrainConfig, fit_module, predict_batched

Batch = dict[str, torch.Tensor]


@dataclass
class RelationMTLConfig(ModelConfig):
    hidden: int = 64
    encoder_layers: int = 15
    relation_layers: int = 3
    f_layers: int = 3
    dropout: float = 0.1
    #: False: no relation network (the plain "DNN" of the ablation)
    use_relation: bool = True
    #: λ, weight of the auxiliary MSE; 0 removes the auxiliary head (no multi-task learning)
    aux_weight: float = 0.5
    #: γ, weight of the L2 penalty on weight matrices
    l2_weight: float = 1e-5
    head_skip: bool = True
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=80, batch_size=64, lr=1e-3, patience=10))


class RelationMTLNet(nn.Module):
    """e() on the title and its competitors, g() on pairs, Σ, f(), then the task heads."""

    def __init__(self, n_features: int, cfg: RelationMTLConfig) -> None:
        super().__init__()
        h = cfg.hidden
        if cfg.encoder_layers < 1 or cfg.relation_layers < 1 or cfg.f_layers < 1:
            raise VidpopError("encoder_layers, relation_layers and f_layers must be >= 1")
        self.use_relation = cfg.use_relation
        self.head_skip = cfg.head_skip or not cfg.use_relation
        self.encoder = mlp([n_features] + [h] * cfg.encoder_layers, dropout=cfg.dropout, batch_norm=True)
        self.g: nn.Module | None = None
        self.f: nn.Module | None = None
        head_in = h
        if cfg.use_relation:
            self.g = mlp([2 * h] + [h] * cfg.relation_layers, dropout=cfg.dropout)
            self.f = mlp([h] * (cfg.f_layers + 1), dropout=cfg.dropout)
            head_in = 2 * h if cfg.head_skip else h
        self.head = mlp([head_in, h, 1])
        self.aux_head = mlp([head_in, h, 1]) if cfg.aux_weight > 0 else None

    def forward(
        self, x: torch.Tensor, rel: torch.Tensor | None = None, rel_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not self.use_relation:
            z = self.encoder(x)
        else:
            if rel is None or rel_mask is None:
                raise VidpopError("the relation network needs the competitors' features (rel, rel_mask)")
            b, n, d = rel.shape
            flat_mask = rel_mask.reshape(-1) > 0
            # one encoder pass over the titles and their real competitors (padding never enters BN)
            enc = self.encoder(torch.cat([x, rel.reshape(b * n, d)[flat_mask]], dim=0))
            o = enc[:b]
            o_i = torch.zeros(b * n, o.shape[1], dtype=o.dtype, device=o.device)
            o_i[flat_mask] = enc[b:]
            o_i = o_i.reshape(b, n, -1)
            pairs = torch.cat([o.unsqueeze(1).expand(-1, n, -1), o_i], dim=-1)
            summed = (self.g(pairs) * rel_mask.unsqueeze(-1)).sum(dim=1)
            r = self.f(summed)
            z = torch.cat([o, r], dim=1) if self.head_skip else r
        main = self.head(z).squeeze(-1)
        aux = self.aux_head(z).squeeze(-1) if self.aux_head is not None else None
        return main, aux


def l2_penalty(module: nn.Module) -> torch.Tensor:
    """Σ‖W‖² over the weight matrices (biases and batch-norm scales are not penalised)."""
    return sum((p.pow(2).sum() for p in module.parameters() if p.ndim > 1), torch.zeros(()))


def relation_loss(
    module: RelationMTLNet, batch: Batch, aux_weight: float, l2_weight: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """MSE(main) + λ·MSE(aux, rows with an aux target) + γ·L2, and the three terms for logging."""
    main, aux = module(batch["x"], batch.get("rel"), batch.get("rel_mask"))
    mse = nn.functional.mse_loss(main, batch["y"])
    total = mse
    logs = {"mse": float(mse.detach())}
    if aux is not None and aux_weight > 0:
        m = batch["aux_mask"]
        aux_mse = ((aux - batch["y_aux"]) ** 2 * m).sum() / m.sum().clamp(min=1.0)
        total = total + aux_weight * aux_mse
        logs["aux_mse"] = float(aux_mse.detach())
    if l2_weight > 0:
        l2 = l2_penalty(module)
        total = total + l2_weight * l2
        logs["l2"] = float(l2.detach())
    return total, logs


@register_model("relation_mtl")
class RelationMTLRegressor(VidpopModel):
    """Deep encoder + relation network over earlier competitors + main/auxiliary heads (log views / log follows)."""

    task = "regression"
    description = "relation network over the titles released just before + multi-task (views, follows) regressor"
    Config = RelationMTLConfig
    capabilities = frozenset({"predict"})  # on the relation recipe's prepared arrays

    def _build_module(self) -> nn.Module:
        return RelationMTLNet(self.n_features_, self.config)

    def _data(self, X: dict[str, np.ndarray], y: np.ndarray | None = None) -> dict[str, np.ndarray]:
        if not isinstance(X, dict) or "x" not in X:
            raise VidpopError("relation_mtl takes X = relation_inputs(...): a dict with 'x', 'rel', 'rel_mask'")
        data = {"x": np.asarray(X["x"], np.float32)}
        if self.config.use_relation:
            if "rel" not in X or "rel_mask" not in X:
                raise VidpopError("use_relation=True needs 'rel' and 'rel_mask' in X")
            data["rel"], data["rel_mask"] = np.asarray(X["rel"], np.float32), np.asarray(X["rel_mask"], np.float32)
        if y is not None:
            y = np.asarray(y, np.float64).reshape(len(y), -1)
            data["y"] = ((y[:, 0] - self.y_mean_) / self.y_std_).astype(np.float32)
            if self.config.aux_weight > 0:
                if y.shape[1] < 2:
                    raise VidpopError("aux_weight > 0 needs y with two columns (main, auxiliary)")
                aux = (y[:, 1] - self.aux_mean_) / self.aux_std_
                data["aux_mask"] = np.isfinite(aux).astype(np.float32)
                data["y_aux"] = np.nan_to_num(aux).astype(np.float32)
        return data

    def fit(
        self,
        X: dict[str, np.ndarray],
        y: np.ndarray,
        X_val: dict[str, np.ndarray] | None = None,
        y_val: np.ndarray | None = None,
    ) -> RelationMTLRegressor:
        """``y``: (n,) main target or (n, 2) main + auxiliary (NaN where the auxiliary is unknown)."""
        y = np.asarray(y, np.float64).reshape(len(y), -1)
        if not np.isfinite(y[:, 0]).all():
            raise VidpopError("the main target has missing values; drop those rows first")
        self.n_features_ = int(np.asarray(X["x"]).shape[1])
        self.y_mean_, self.y_std_ = float(y[:, 0].mean()), float(y[:, 0].std() or 1.0)
        if y.shape[1] > 1:
            self.aux_mean_, self.aux_std_ = float(np.nanmean(y[:, 1])), float(np.nanstd(y[:, 1]) or 1.0)
        elif self.config.aux_weight > 0:
            raise VidpopError("aux_weight > 0 needs y with two columns (main, auxiliary)")
        torch.manual_seed(self.config.train.seed)
        self.module_ = self._build_module()
        train = self._data(X, y)
        val = self._data(X_val, y_val) if X_val is not None and y_val is not None and len(y_val) else None
        cfg = self.config.train
        bs = cfg.batch_size
        while len(y) % bs == 1:  # a lone last row would break batch norm in training mode
            bs += 1
        lam, gam = self.config.aux_weight, self.config.l2_weight

        def loss_fn(m: nn.Module, b: Batch) -> tuple[torch.Tensor, dict[str, float]]:
            if m.training:
                return relation_loss(m, b, lam, gam)  # type: ignore[arg-type]
            # validation (eval mode): monitor the main MSE only, the same criterion for every variant
            mse = nn.functional.mse_loss(m(b["x"], b.get("rel"), b.get("rel_mask"))[0], b["y"])
            return mse, {"mse": float(mse)}

        self.history_ = fit_module(self.module_, loss_fn, train, val, dataclasses.replace(cfg, batch_size=bs)).as_dict()
        return self

    def _forward(self, X: dict[str, np.ndarray]) -> np.ndarray:
        self._check_fitted()
        data = self._data(X)
        if data["x"].shape[1] != self.n_features_:
            raise VidpopError(f"expected {self.n_features_} features, got {data['x'].shape[1]}")

        def fn(m: nn.Module, b: Batch) -> torch.Tensor:
            main, aux = m(b["x"], b.get("rel"), b.get("rel_mask"))
            return torch.stack([main, aux if aux is not None else torch.full_like(main, float("nan"))], dim=1)

        return predict_batched(self.module_, fn, data)

    def predict(self, X: dict[str, np.ndarray]) -> np.ndarray:
        """Main target (e.g. log1p views) per row."""
        return self._forward(X)[:, 0] * self.y_std_ + self.y_mean_

    def predict_aux(self, X: dict[str, np.ndarray]) -> np.ndarray:
        """Auxiliary target per row (only when trained with aux_weight > 0)."""
        if self.config.aux_weight <= 0:
            raise VidpopError("this model has no auxiliary head (aux_weight = 0)")
        return self._forward(X)[:, 1] * self.aux_std_ + self.aux_mean_
