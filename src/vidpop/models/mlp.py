"""A plain MLP regressor on a feature matrix: the simplest torch model, and the demo's model."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from vidpop.data.preprocessing import Standardizer
from vidpop.models.base import VidpopModel
from vidpop.models.config import ModelConfig
from vidpop.models.registry import register_model
from vidpop.training.loop import TrainConfig, fit_module, predict_batched, seed_everything


def mlp(
    sizes: list[int], dropout: float = 0.0, batch_norm: bool = False, act: type[nn.Module] = nn.ReLU
) -> nn.Sequential:
    """Linear layers ``sizes[0] -> ... -> sizes[-1]`` with activation (and optional BN/dropout)
    between them; the last layer is linear."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            if batch_norm:
                layers.append(nn.BatchNorm1d(sizes[i + 1]))
            layers.append(act())
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


@dataclass
class MLPConfig(ModelConfig):
    hidden: tuple[int, ...] = (256, 128)
    dropout: float = 0.1
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=60, lr=1e-3, weight_decay=1e-4, patience=8))


@register_model("mlp")
class MLPRegressor(VidpopModel):
    """Multi-output regressor: standardised inputs -> MLP -> targets (e.g. log views)."""

    task = "regression"
    description = "MLP regressor on a feature matrix (baseline; the demo model)"
    Config = MLPConfig
    capabilities = frozenset({"predict"})  # on a feature matrix

    def _build_module(self) -> nn.Module:
        return mlp([self.n_features_, *self.config.hidden, self.n_targets_], dropout=self.config.dropout)

    def fit(
        self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None = None, y_val: np.ndarray | None = None
    ) -> MLPRegressor:
        y = np.asarray(y, np.float32).reshape(len(y), -1)
        self.n_features_, self.n_targets_ = X.shape[1], y.shape[1]
        self.scaler_ = Standardizer().fit(X)
        # Targets are standardised too (train statistics), so every target weighs the same in the
        # MSE and the first epochs are not spent learning the offset of log counts (~12 for views).
        self.y_scaler_ = Standardizer().fit(y)
        seed_everything(self.config.train.seed)  # the initial weights, too, follow the seed
        self.module_ = self._build_module()
        train = {"x": self.scaler_.transform(X), "y": self.y_scaler_.transform(y)}
        val = None
        if X_val is not None and y_val is not None and len(X_val):
            y_val = np.asarray(y_val, np.float32).reshape(len(y_val), -1)
            val = {"x": self.scaler_.transform(X_val), "y": self.y_scaler_.transform(y_val)}

        def loss_fn(m: nn.Module, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
            return nn.functional.mse_loss(m(b["x"]), b["y"]), {}

        self.history_ = fit_module(self.module_, loss_fn, train, val, self.config.train).as_dict()
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        self._check_fitted()
        z = predict_batched(self.module_, lambda m, b: m(b["x"]), {"x": self.scaler_.transform(X)})
        out = (z * self.y_scaler_.std_ + self.y_scaler_.mean_).astype(np.float32)
        return out[:, 0] if out.shape[1] == 1 else out
