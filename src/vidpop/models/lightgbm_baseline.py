"""Gradient-boosted trees (LightGBM) on a feature matrix: the recipe that wins public popularity
challenges, hence the bar every neural model here has to clear.

Generic on purpose (other methods reuse it, e.g. for conformal intervals): ``fit(X, y, X_val, y_val)``
with early stopping on the validation part; without one, a seeded ``val_frac`` of the training rows is
held out for early stopping (0 disables it and trains ``n_estimators`` rounds). The booster is saved as
LightGBM's own text model, so a saved model reloads without pickled LightGBM objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np

from vidpop.errors import VidpopError
from vidpop.models.base import VidpopModel
from vidpop.models.config import ModelConfig
from vidpop.models.registry import register_model


@dataclass
class LightGBMConfig(ModelConfig):
    n_estimators: int = 2000
    learning_rate: float = 0.03
    num_leaves: int = 31
    max_depth: int = -1
    min_child_samples: int = 20
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0
    early_stopping_rounds: int = 100
    #: fraction of the training rows held out for early stopping when no X_val is given (0: none)
    val_frac: float = 0.1
    seed: int = 0
    num_threads: int = 1
    #: LightGBM objective; "" = the task default (regression: l2; classifier: binary / multiclass)
    objective: str = ""
    #: the quantile of objective="quantile" (conformalised quantile regression fits 0.025 and 0.975)
    alpha: float = 0.5


class _LightGBMBase(VidpopModel):
    Config = LightGBMConfig

    def _params(self, n_classes: int = 0) -> dict[str, Any]:
        c = self.config
        params: dict[str, Any] = {
            "learning_rate": c.learning_rate,
            "num_leaves": c.num_leaves,
            "max_depth": c.max_depth,
            "min_child_samples": c.min_child_samples,
            "bagging_fraction": c.subsample,
            "bagging_freq": 1 if c.subsample < 1 else 0,
            "feature_fraction": c.colsample_bytree,
            "lambda_l2": c.reg_lambda,
            "seed": c.seed,
            "num_threads": c.num_threads,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }
        if c.objective:
            params["objective"] = c.objective
            if c.objective == "quantile":
                params["alpha"] = c.alpha
        elif n_classes > 2:
            params.update(objective="multiclass", num_class=n_classes)
        elif n_classes == 2:
            params["objective"] = "binary"
        else:
            params["objective"] = "regression"
        return params

    def _train(
        self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None, y_val: np.ndarray | None, n_classes: int = 0
    ) -> None:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or len(X) != len(y) or len(X) == 0:
            raise VidpopError(f"lightgbm needs a non-empty 2-d X with one target per row; got X {X.shape}, y {y.shape}")
        if (X_val is None or not len(X_val)) and self.config.val_frac > 0 and len(X) >= 20:
            rng = np.random.default_rng(self.config.seed)
            order = rng.permutation(len(X))
            n_val = max(1, round(len(X) * self.config.val_frac))
            X, y, X_val, y_val = X[order[n_val:]], y[order[n_val:]], X[order[:n_val]], y[order[:n_val]]
        train_set = lgb.Dataset(X, y, free_raw_data=True)
        valid_sets, callbacks = [], []
        if X_val is not None and y_val is not None and len(X_val):
            valid_sets = [lgb.Dataset(np.asarray(X_val, np.float64), y_val, reference=train_set)]
            callbacks = [lgb.early_stopping(self.config.early_stopping_rounds, verbose=False)]
        booster = lgb.train(
            self._params(n_classes),
            train_set,
            num_boost_round=self.config.n_estimators,
            valid_sets=valid_sets,
            callbacks=callbacks,
        )
        self.n_features_ = X.shape[1]
        self.best_iteration_ = int(booster.best_iteration or booster.current_iteration())
        self.model_str_ = booster.model_to_string(num_iteration=self.best_iteration_)
        self.booster_ = booster

    def _raw_predict(self, X: np.ndarray) -> np.ndarray:
        self._check_fitted()
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_:
            raise VidpopError(f"expected X with {self.n_features_} columns, got shape {X.shape}")
        return np.asarray(self.booster_.predict(X))

    @property
    def feature_importances_(self) -> np.ndarray:
        """Total gain per feature (for reports)."""
        return np.asarray(self.booster_.feature_importance("gain"))

    # persistence: the booster as LightGBM's text format, rebuilt on load
    def get_state(self) -> dict[str, Any]:
        return {k: v for k, v in super().get_state().items() if k != "booster_"}

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.booster_ = lgb.Booster(model_str=self.model_str_)


@register_model("lightgbm")
class LightGBMRegressor(_LightGBMBase):
    """LightGBM regression (one target), early-stopped on a validation part."""

    task = "regression"
    description = "LightGBM gradient-boosted trees regressor (the strong tabular baseline)"
    capabilities = frozenset({"predict"})  # on the feature matrix its recipe builds

    def fit(
        self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None = None, y_val: np.ndarray | None = None
    ) -> LightGBMRegressor:
        y = np.asarray(y, dtype=np.float64)
        if y.ndim > 1 and y.shape[1] != 1:
            raise VidpopError("lightgbm regresses one target; fit one model per target column")
        yv = None if y_val is None else np.asarray(y_val, np.float64).ravel()
        self._train(X, y.ravel(), X_val, yv)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self._raw_predict(X)


@register_model("lightgbm_classifier")
class LightGBMClassifier(_LightGBMBase):
    """LightGBM classification (binary or multi-class; labels may be any sortable values)."""

    task = "classification"
    description = "LightGBM gradient-boosted trees classifier"
    capabilities = frozenset({"predict"})

    def fit(
        self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None = None, y_val: np.ndarray | None = None
    ) -> LightGBMClassifier:
        y = np.asarray(y).ravel()
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise VidpopError("lightgbm_classifier needs at least two classes in y")
        enc = {c: i for i, c in enumerate(self.classes_.tolist())}
        yi = np.array([enc[c] for c in y.tolist()], dtype=np.float64)
        yv = None
        if y_val is not None and X_val is not None:
            keep = np.isin(np.asarray(y_val).ravel(), self.classes_)
            X_val, yv = (
                np.asarray(X_val)[keep],
                np.array([enc[c] for c in np.asarray(y_val).ravel()[keep].tolist()], np.float64),
            )
        self._train(X, yi, X_val, yv, n_classes=len(self.classes_))
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p = self._raw_predict(X)
        return np.stack([1 - p, p], axis=1) if p.ndim == 1 else p

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
