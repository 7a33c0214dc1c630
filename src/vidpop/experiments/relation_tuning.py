"""Validation-only tuning of the relation network + multi-task regressor (issue 13, ask 3).

Optuna's TPE sampler, seeded, with a fixed number of trials. Every trial trains DNN+RN+MTL on the
training titles of one horizon (early stopping on the validation titles, as every fit does) and is
scored by R² of log1p(target) on those validation titles. The test titles are not read here at
all: :func:`tune` only gets the training and validation rows of the prepared split, so no choice
can depend on them. The caller measures the chosen configuration on the test part once, at the end.

Search space (the paper fixes the architecture's shape — deep e(), 3-layer g and f, n = 3 — and
leaves widths, λ, γ and the optimiser open): hidden width, depth of e(), dropout, λ (aux_weight),
γ (l2_weight), learning rate, batch size and whether the heads also read o (``head_skip``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from vidpop.errors import VidpopError
from vidpop.models.lightgbm_baseline import LightGBMConfig, LightGBMRegressor
from vidpop.models.relation_mtl import RelationMTLConfig, RelationMTLRegressor
from vidpop.training import metrics


def suggest(trial: Any, base: RelationMTLConfig) -> RelationMTLConfig:
    """One point of the search space (:data:`SPACE`) on top of ``base`` (use_relation and epochs stay)."""
    sp = SPACE
    train = dataclasses.replace(
        base.train,
        lr=trial.suggest_float("lr", *sp["lr"], log=True),
        batch_size=trial.suggest_categorical("batch_size", list(sp["batch_size"])),
        weight_decay=0.0,  # γ·‖W‖² is the paper's regulariser; no second one
    )
    return dataclasses.replace(
        base,
        hidden=trial.suggest_categorical("hidden", list(sp["hidden"])),
        encoder_layers=trial.suggest_int("encoder_layers", *sp["encoder_layers"]),
        dropout=trial.suggest_float("dropout", *sp["dropout"]),
        aux_weight=trial.suggest_float("aux_weight", *sp["aux_weight"], log=True),
        l2_weight=trial.suggest_float("l2_weight", *sp["l2_weight"], log=True),
        head_skip=trial.suggest_categorical("head_skip", list(sp["head_skip"])),
        train=train,
    )


#: the search space of :func:`suggest` (for :func:`base_params`): name -> allowed values or (lo, hi)
SPACE: dict[str, tuple[Any, ...]] = {
    "lr": (2e-4, 3e-3),
    "batch_size": (32, 64, 128),
    "hidden": (32, 64, 128),
    "encoder_layers": (2, 15),
    "dropout": (0.0, 0.5),
    "aux_weight": (0.05, 1.0),
    "l2_weight": (1e-6, 1e-3),
    "head_skip": (True, False),
}
_CATEGORICAL = ("batch_size", "hidden", "head_skip")


def base_params(base: RelationMTLConfig) -> dict[str, Any]:
    """The parameters of ``base`` that lie inside the search space (enqueued as the first trial)."""
    flat = {**dataclasses.asdict(base.train), **{f.name: getattr(base, f.name) for f in dataclasses.fields(base)}}
    out = {}
    for k, allowed in SPACE.items():
        v = flat[k]
        if (k in _CATEGORICAL and v in allowed) or (k not in _CATEGORICAL and allowed[0] <= v <= allowed[1]):
            out[k] = v
    return out


def apply_params(base: RelationMTLConfig, params: dict[str, Any]) -> RelationMTLConfig:
    """``base`` with the flat parameters of a trial (train.* keys: lr, batch_size) applied."""
    train_keys = {f.name for f in dataclasses.fields(base.train)}
    model_keys = {f.name for f in dataclasses.fields(base)} - {"train"}
    unknown = set(params) - train_keys - model_keys
    if unknown:
        known = sorted(model_keys | train_keys)
        raise VidpopError(f"unknown relation_mtl parameter(s) {sorted(unknown)}; known: {known}")
    train = dataclasses.replace(base.train, **{k: v for k, v in params.items() if k in train_keys})
    return dataclasses.replace(base, **{k: v for k, v in params.items() if k in model_keys}, train=train)


def tune(
    train_inputs: dict[str, np.ndarray],
    y_train: np.ndarray,
    val_inputs: dict[str, np.ndarray],
    y_val: np.ndarray,
    base: RelationMTLConfig,
    n_trials: int = 20,
    seed: int = 0,
    progress: bool = True,
    on_trial: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Seeded TPE search scored by validation R² (main target). Returns the best parameters, the
    best configuration and every trial (parameters, validation R², best epoch)."""
    import optuna
    from tqdm.auto import tqdm

    if n_trials < 1:
        raise VidpopError("--trials must be at least 1")
    if len(y_val) < 5:
        raise VidpopError("tuning needs a validation part (at least 5 titles)")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials: list[dict[str, Any]] = []
    bar = tqdm(total=n_trials, desc="relation tuning (validation R²)", disable=not progress)

    def objective(trial: optuna.Trial) -> float:
        cfg = suggest(trial, dataclasses.replace(base, use_relation=True))
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=seed, progress=False))
        model = RelationMTLRegressor(cfg).fit(train_inputs, y_train, val_inputs, y_val)
        r2 = metrics.r2(y_val[:, 0], model.predict(val_inputs))
        row = {"trial": trial.number, "params": trial.params, "val_r2": float(r2)}
        row["best_epoch"] = int(model.history_.get("best_epoch", -1))
        trials.append(row)
        bar.update(1)
        bar.set_postfix(best=max(t["val_r2"] for t in trials))
        if on_trial:
            on_trial(row)
        return float(r2) if np.isfinite(r2) else -1e9

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    # the base configuration is the first trial, so tuning never ends below the untuned model on validation
    study.enqueue_trial(base_params(base))
    study.optimize(objective, n_trials=n_trials)
    bar.close()
    best = study.best_trial
    cfg = apply_params(dataclasses.replace(base, use_relation=True), best.params)
    return {
        "n_trials": n_trials,
        "seed": seed,
        "best_params": dict(best.params),
        "best_val_r2": float(best.value),
        "config": dataclasses.asdict(cfg),
        "trials": trials,
    }


def tune_lightgbm(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    base: LightGBMConfig,
    n_trials: int = 40,
    seed: int = 0,
) -> dict[str, Any]:
    """Seeded TPE search of the LightGBM baseline over :data:`vidpop.experiments.tuning.LIGHTGBM_SPACE`,
    scored by validation R² (early stopping on the same validation rows, as every fit does); the base
    configuration is the first trial. Test rows are not an argument."""
    from vidpop.experiments.tuning import LIGHTGBM_SPACE
    from vidpop.experiments.tuning import tune as tune_space

    if n_trials < 1:
        raise VidpopError("--trials must be at least 1")

    def score(params: dict[str, Any]) -> float:
        model = LightGBMRegressor(dataclasses.replace(base, seed=seed, **params)).fit(x_train, y_train, x_val, y_val)
        return -metrics.r2(y_val, model.predict(x_val))

    res = tune_space("lightgbm", LIGHTGBM_SPACE, score, n_trials, seed, dataclasses.asdict(base), metric="-val_r2")
    return {
        "n_trials": n_trials,
        "seed": seed,
        "best_params": res.best_params,
        "best_val_r2": -res.best_value,
        "seconds": res.seconds,
        "trials": [{"params": t["params"], "val_r2": -t["value"]} for t in res.trials],
    }
