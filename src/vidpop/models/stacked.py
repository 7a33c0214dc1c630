"""Stacked popularity model: a level-1 blend of base-model predictions (e.g. the variational PoE's mean,
LightGBM on the tabular + retrieval features, the neighbours' weighted popularity) with split-conformal
95% intervals whose width follows a per-row spread estimate (issue 13, ask 4).

The base models are fitted on the training part; this model is fitted on their predictions for the
VALIDATION part (level-1 data the base models never saw). Blend weights are ridge least squares with an
intercept. The conformal scores are cross-fitted on validation: the rows of each fold are scored by a
blend fitted on the other folds, so the blend does not calibrate itself. Among the candidate spread
columns (e.g. the PoE's predictive std, the CQR band of LightGBM, or a constant = plain split conformal)
the one with the narrowest cross-fitted validation interval is kept: a choice on validation only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vidpop.errors import VidpopError
from vidpop.models.base import VidpopModel
from vidpop.models.config import ModelConfig
from vidpop.models.registry import register_model
from vidpop.training.conformal import conformal_quantile


@dataclass
class StackedConfig(ModelConfig):
    #: ridge penalty of the blend (on standardised base predictions)
    ridge: float = 1.0
    #: folds of the cross-fitted conformal scores on the validation part
    folds: int = 5
    level: float = 0.95
    seed: int = 0


def _ridge(P: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """Weights [intercept, w...] of ridge regression (the intercept is not penalised)."""
    mu, sd = P.mean(axis=0), np.where(P.std(axis=0) > 1e-9, P.std(axis=0), 1.0)
    Z = (P - mu) / sd
    w = np.linalg.solve(Z.T @ Z + lam * np.eye(Z.shape[1]), Z.T @ (y - y.mean()))
    w = w / sd
    return np.concatenate([[y.mean() - mu @ w], w])


def _apply(coef: np.ndarray, P: np.ndarray) -> np.ndarray:
    return coef[0] + P @ coef[1:]


@register_model("stacked")
class StackedConformalRegressor(VidpopModel):
    """Ridge blend of base predictions + normalised split-conformal intervals, fitted on validation rows."""

    task = "regression"
    description = "stacked blend (e.g. PoE + LightGBM + retrieval) with cross-fitted conformal 95% intervals"
    Config = StackedConfig
    capabilities = frozenset({"predict", "intervals"})  # on the base models' predictions

    def fit(
        self, P: np.ndarray, y: np.ndarray, scales: np.ndarray | None = None, names: list[str] | None = None
    ) -> StackedConformalRegressor:
        """``P`` (n, m) base predictions on held-out rows, ``y`` (n,), ``scales`` (n, c) candidate spreads
        (a constant column is always added)."""
        cfg = self.config
        P, y = np.asarray(P, np.float64), np.asarray(y, np.float64).ravel()
        if P.ndim != 2 or len(P) != len(y) or len(y) < 2 * cfg.folds:
            raise VidpopError(f"stacked: need (n, m) predictions with n ≥ {2 * cfg.folds} rows, got {P.shape}")
        S = np.ones((len(y), 1)) if scales is None else np.column_stack([np.ones(len(y)), scales])
        self.names_ = list(names or [f"p{j}" for j in range(P.shape[1])])
        self.coef_ = _ridge(P, y, cfg.ridge)
        fold = np.random.default_rng(cfg.seed).permutation(len(y)) % cfg.folds
        oof = np.empty(len(y))
        for f in range(cfg.folds):
            oof[fold == f] = _apply(_ridge(P[fold != f], y[fold != f], cfg.ridge), P[fold == f])
        #: cross-fitted blend of each validation row (a fair validation score for choosing among models)
        self.oof_ = oof
        widths, qs = [], []
        for c in range(S.shape[1]):
            s = np.maximum(S[:, c], 1e-6)
            q = conformal_quantile(np.abs(y - oof) / s, cfg.level)
            qs.append(q)
            widths.append(float(np.mean(2 * q * s)))
        self.scale_column_ = int(np.argmin(widths))
        self.q_ = float(qs[self.scale_column_])
        self.val_widths_ = widths
        return self

    def predict(self, P: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return _apply(self.coef_, np.asarray(P, np.float64))

    def predict_interval(self, P: np.ndarray, scales: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Mean and the ``config.level`` interval; ``scales`` as in fit (same columns)."""
        mean = self.predict(P)
        S = np.ones((len(mean), 1)) if scales is None else np.column_stack([np.ones(len(mean)), scales])
        half = self.q_ * np.maximum(S[:, self.scale_column_], 1e-6)
        return {"mean": mean, "lower": mean - half, "upper": mean + half}
