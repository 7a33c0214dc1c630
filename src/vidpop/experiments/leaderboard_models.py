"""The leaderboard's model runners: each fits one popularity model on the training part of a
:class:`~vidpop.experiments.leaderboard.LeaderboardTask`, tunes it on the validation part only (when
asked) and returns its validation and test predictions and 95% intervals.

Protocol (the same for every model):

* the training part fits the model; early stopping uses a seeded 10% holdout OF THE TRAINING PART, so
  the validation part stays clean for two things only: the tuning score and the conformal calibration;
* test rows are predicted once, at the end, by the chosen model; nothing here reads test labels.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidpop.data.splits import Split
from vidpop.experiments.tuning import LIGHTGBM_SPACE, POE_SPACE, TuningResult, tune
from vidpop.models.base import VidpopModel
from vidpop.models.lightgbm_baseline import LightGBMConfig
from vidpop.models.poe_inputs import PoEInputs
from vidpop.models.registry import build_model
from vidpop.models.variational_poe import VariationalPoEConfig, VariationalPoERegressor
from vidpop.training import metrics
from vidpop.training.conformal import (
    AsymmetricConformal,
    ConformalizedQuantile,
    MondrianConformal,
    NormalizedConformal,
    SplitConformal,
    clip_to_support,
)
from vidpop.training.loop import TrainConfig

LEVEL = 0.95


@dataclass
class Run:
    """One fitted model: predictions on val/test, its test interval (if any) and what it cost."""

    model: str
    pred_val: np.ndarray
    pred_test: np.ndarray
    seconds: float
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    interval: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    #: per-row spread estimates (val, test) for the stacked model's normalised conformal intervals
    scale_val: np.ndarray | None = None
    scale_test: np.ndarray | None = None
    fitted: VidpopModel | None = None
    tuning: TuningResult | None = None
    #: out-of-fold predictions of the training rows (cross-fitted; an input other models may stack on)
    oof_train: np.ndarray | None = None
    #: what else the run measured on VALIDATION (e.g. the interval-method comparison)
    notes: dict[str, Any] = field(default_factory=dict)


def holdout(train: np.ndarray, frac: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, early-stopping rows): a seeded ``frac`` of the training part."""
    order = np.random.default_rng(seed).permutation(train)
    n = max(1, round(len(train) * frac))
    return np.sort(order[n:]), np.sort(order[:n])


def split_conformal(pred_val: np.ndarray, y_val: np.ndarray, pred_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return SplitConformal().fit(pred_val, y_val).interval(pred_test, LEVEL)


def interval_choice(
    pred_val: np.ndarray, y_val: np.ndarray, support: tuple[float, float], reps: int = 50, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Interval methods compared on the VALIDATION part only: ``reps`` seeded halvings, calibrate on one
    half, measure 95% coverage and mean width on the other (both ways). Methods: symmetric split conformal,
    asymmetric (signed residuals), Mondrian by prediction terciles (edges from the calibration half), and
    each of split / asymmetric clipped to the training label ``support``."""
    rng = np.random.default_rng(seed)
    p, y = np.asarray(pred_val, np.float64), np.asarray(y_val, np.float64)

    def mondrian(pc: np.ndarray, yc: np.ndarray, pe: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        edges = np.quantile(pc, [1 / 3, 2 / 3])
        return (
            MondrianConformal().fit(pc, yc, np.searchsorted(edges, pc)).interval(pe, np.searchsorted(edges, pe), LEVEL)
        )

    methods = {
        "split": lambda pc, yc, pe: SplitConformal().fit(pc, yc).interval(pe, LEVEL),
        "asymmetric": lambda pc, yc, pe: AsymmetricConformal().fit(pc, yc).interval(pe, LEVEL),
        "mondrian_pred_terciles": mondrian,
    }
    methods["split_clipped"] = lambda pc, yc, pe: clip_to_support(*methods["split"](pc, yc, pe), support)
    methods["asymmetric_clipped"] = lambda pc, yc, pe: clip_to_support(*methods["asymmetric"](pc, yc, pe), support)
    got: dict[str, list[tuple[float, float]]] = {k: [] for k in methods}
    for _ in range(reps):
        perm = rng.permutation(len(y))
        a, b = perm[: len(y) // 2], perm[len(y) // 2 :]
        for c, e in ((a, b), (b, a)):
            for k, fn in methods.items():
                lo, hi = fn(p[c], y[c], p[e])
                got[k].append((float(np.mean((y[e] >= lo) & (y[e] <= hi))), float(np.mean(hi - lo))))
    return {
        k: {"coverage95": float(np.mean([g[0] for g in v])), "width95": float(np.mean([g[1] for g in v]))}
        for k, v in got.items()
    }


# ------------------------------------------------------------------------------------------ baselines
def run_mean(y: np.ndarray, sp: Split) -> Run:
    t0 = time.perf_counter()
    m = float(np.mean(y[sp.train]))
    pv, pt = np.full(len(sp.val), m), np.full(len(sp.test), m)
    lo, hi = split_conformal(pv, y[sp.val], pt)
    return Run("train_mean", pv, pt, time.perf_counter() - t0, lo, hi, "split conformal (val)")


def learned_scale(
    X: np.ndarray, y: np.ndarray, sp: Split, params: dict[str, Any], seed: int = 0, folds: int = 3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row spread σ̂ for normalised conformal intervals, learned on the TRAINING part only: out-of-fold
    absolute residuals of the point model (``folds`` cross-fits), regressed by a second LightGBM; σ̂ on
    the validation and test rows, and the out-of-fold predictions of the training rows. The validation
    part then only calibrates q in ŷ ± q·σ̂."""
    tr = sp.train
    fold = np.random.default_rng(seed).permutation(len(tr)) % folds
    oof = np.empty(len(tr))
    for f in range(folds):
        m = build_model("lightgbm", {**params, "seed": seed}).fit(X[tr[fold != f]], y[tr[fold != f]])
        oof[fold == f] = m.predict(X[tr[fold == f]])
    # a smooth, shallow spread model: the residual's size depends on few things (author history, text)
    scale_params = {"num_leaves": 8, "min_child_samples": 40, "learning_rate": 0.03, "objective": "l1"}
    s = build_model("lightgbm", {**scale_params, "seed": seed}).fit(X[tr], np.abs(y[tr] - oof))
    floor = max(float(np.quantile(np.abs(y[tr] - oof), 0.05)), 1e-3)
    return np.maximum(s.predict(X[sp.val]), floor), np.maximum(s.predict(X[sp.test]), floor), oof


def run_lightgbm(
    X: np.ndarray,
    y: np.ndarray,
    sp: Split,
    n_trials: int,
    seed: int = 0,
    quantiles: bool = True,
    normalised: bool = True,
    support: tuple[float, float] | None = None,
) -> list[Run]:
    """LightGBM default (n_trials = 0) or tuned on val MAE; split-conformal, CQR and (``normalised``)
    learned-scale normalised conformal intervals; with ``support`` (the training label range) also the
    split-conformal interval clipped to it, and the validation comparison of interval methods."""
    t0 = time.perf_counter()
    tr, va, te = sp.train, sp.val, sp.test

    def fit(params: dict[str, Any], **extra: Any) -> VidpopModel:
        return build_model("lightgbm", {**params, **extra, "seed": seed}).fit(X[tr], y[tr])

    res = None
    params: dict[str, Any] = {}
    if n_trials:
        defaults = asdict(LightGBMConfig())
        res = tune(
            "lightgbm", LIGHTGBM_SPACE, lambda p: metrics.mae(y[va], fit(p).predict(X[va])), n_trials, seed, defaults
        )
        params = res.best_params
    model = fit(params)
    pv, pt = model.predict(X[va]), model.predict(X[te])
    secs = time.perf_counter() - t0
    name = "lightgbm_tuned" if n_trials else "lightgbm"
    lo, hi = split_conformal(pv, y[va], pt)
    runs = [Run(name, pv, pt, secs, lo, hi, "split conformal (val)", params, fitted=model, tuning=res)]
    if support is not None:
        runs[0].notes["val_interval_choice"] = interval_choice(pv, y[va], support)
        clo, chi = clip_to_support(lo, hi, support)
        runs.append(Run(f"{name} (clipped)", pv, pt, secs, clo, chi, "support-clipped split conformal (val)", params))
    if quantiles:
        t1 = time.perf_counter()
        qlo, qhi = (fit(params, objective="quantile", alpha=a) for a in ((1 - LEVEL) / 2, (1 + LEVEL) / 2))
        cqr = ConformalizedQuantile(LEVEL).fit(qlo.predict(X[va]), qhi.predict(X[va]), y[va])
        lo2, hi2 = cqr.interval(qlo.predict(X[te]), qhi.predict(X[te]))
        band_v = np.maximum(qhi.predict(X[va]) - qlo.predict(X[va]), 1e-3) / 2
        band_t = np.maximum(qhi.predict(X[te]) - qlo.predict(X[te]), 1e-3) / 2
        runs.append(
            Run(
                f"{name} (CQR)",
                pv,
                pt,
                secs + time.perf_counter() - t1,
                lo2,
                hi2,
                "CQR (val)",
                params,
                scale_val=band_v,
                scale_test=band_t,
            )
        )
    if normalised:
        t1 = time.perf_counter()
        sv, st, oof = learned_scale(X, y, sp, params, seed)
        lo3, hi3 = NormalizedConformal().fit(pv, sv, y[va]).interval(pt, st, LEVEL)
        runs.append(
            Run(
                f"{name} (normalised)",
                pv,
                pt,
                secs + time.perf_counter() - t1,
                lo3,
                hi3,
                "normalised conformal, learned scale (val)",
                params,
                scale_val=sv,
                scale_test=st,
                oof_train=oof,
            )
        )
    return runs


def run_mlp(X: np.ndarray, y: np.ndarray, sp: Split, seed: int = 0) -> Run:
    t0 = time.perf_counter()
    fit_rows, stop_rows = holdout(sp.train, seed=seed)
    train = TrainConfig(epochs=80, lr=1e-3, weight_decay=1e-4, patience=8, seed=seed, progress=False, num_threads=1)
    model = build_model("mlp", {"hidden": (128, 64), "dropout": 0.2, "train": train})
    model.fit(X[fit_rows], y[fit_rows], X[stop_rows], y[stop_rows])
    pv, pt = model.predict(X[sp.val]), model.predict(X[sp.test])
    lo, hi = split_conformal(pv, y[sp.val], pt)
    return Run("mlp", pv, pt, time.perf_counter() - t0, lo, hi, "split conformal (val)", fitted=model)


# ------------------------------------------------------------------------------------------ PoE
#: the leaderboard's untuned PoE: 2 hidden layers of 128, λ = 0.05, dropout 0.1. Chosen on the SMP
#: VALIDATION part (time split, retrieval on, 60 epochs) among four hand-picked configurations: val MAPE
#: .2555 (2×128, λ .05, contrastive) against .2642 (2×128, λ .01, direct), .2808 (3×64, λ .003, direct); the
#: model's own default (7×64, λ .1) collapsed to the train mean on the retrieval-off inputs (R2 −.06).
POE_BASE: dict[str, Any] = {"n_hidden": 2, "hidden": 128, "kl_weight": 0.05, "dropout": 0.1}


def poe_config(params: dict[str, Any], seed: int, epochs: int, n_samples: int) -> dict[str, Any]:
    train = TrainConfig(
        epochs=epochs,
        batch_size=128,
        lr=1e-3,
        weight_decay=1e-4,
        patience=15,
        seed=seed,
        progress=False,
        num_threads=1,
    )
    base = {"kl_warmup_epochs": 10, "n_samples": n_samples, "train": train, **POE_BASE}
    return {**base, **params}


def run_poe(
    X: PoEInputs,
    y: np.ndarray,
    sp: Split,
    n_trials: int,
    seed: int = 0,
    epochs: int = 150,
    n_samples: int = 400,
    params: dict[str, Any] | None = None,
) -> list[Run]:
    """The variational PoE, tuned on val MAE (KL weight and free bits, depth, width, latent size, dropout,
    text mode), or with ``params`` (e.g. another PoE's chosen ones) when ``n_trials`` is 0; its sampled
    95% intervals as is, and conformalised on val (CQR on the sample quantiles)."""
    t0 = time.perf_counter()
    fit_rows, stop_rows = holdout(sp.train, seed=seed)

    def fit(params: dict[str, Any], samples: int) -> VariationalPoERegressor:
        m = build_model("variational_poe", poe_config(params, seed, epochs, samples))
        assert isinstance(m, VariationalPoERegressor)
        return m.fit(X.take(fit_rows), y[fit_rows], X.take(stop_rows), y[stop_rows], target_names=["y"])

    res = None
    params = dict(params or {})
    if n_trials:
        space = {**POE_SPACE, "text_mode": ("cat", ["contrastive", "direct"])}
        d = VariationalPoEConfig()
        defaults = {"latent_dim": d.latent_dim, "text_mode": d.text_mode, "kl_free_bits": d.kl_free_bits, **POE_BASE}
        res = tune(
            "variational_poe",
            space,
            lambda p: metrics.mae(y[sp.val], fit(p, 100).predict(X.take(sp.val))),
            n_trials,
            seed,
            defaults,
        )
        params = res.best_params
    model = fit(params, n_samples)
    sv, st = model.sample(X.take(sp.val))[:, :, 0], model.sample(X.take(sp.test))[:, :, 0]
    pv, pt = sv.mean(axis=0), st.mean(axis=0)
    lo, hi = np.quantile(st, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=0)
    secs = time.perf_counter() - t0
    model.calibrate(X.take(sp.val), y[sp.val], (LEVEL,))
    q = model.interval_calibration_[f"{LEVEL:g}"][0]
    name = "variational_poe_tuned" if n_trials else "variational_poe"
    common = {"params": params, "scale_val": sv.std(axis=0), "scale_test": st.std(axis=0)}
    return [
        Run(name, pv, pt, secs, lo, hi, "sampled (ELBO)", fitted=model, tuning=res, **common),
        Run(f"{name} (conformalised)", pv, pt, secs, lo - q, hi + q, "CQR on samples (val)", **common),
    ]


# ------------------------------------------------------------------------------------------ stacked
def run_stacked(
    y: np.ndarray, sp: Split, bases: list[Run], scaled: list[Run], extra_val: np.ndarray, extra_test: np.ndarray
) -> Run:
    """Blend of the base runs' predictions (+ extra columns, e.g. the neighbours' weighted popularity),
    fitted on val; spread candidates = the ``scaled`` runs' per-row scales."""
    t0 = time.perf_counter()
    Pv = np.column_stack([b.pred_val for b in bases] + ([extra_val] if extra_val.size else []))
    Pt = np.column_stack([b.pred_test for b in bases] + ([extra_test] if extra_test.size else []))
    Pv, Pt = np.nan_to_num(Pv, nan=float(np.mean(y[sp.train]))), np.nan_to_num(Pt, nan=float(np.mean(y[sp.train])))
    Sv = np.column_stack([b.scale_val for b in scaled]) if scaled else None
    St = np.column_stack([b.scale_test for b in scaled]) if scaled else None
    model = build_model("stacked").fit(Pv, y[sp.val], Sv)
    r = model.predict_interval(Pt, St)
    spread = ["constant", *(b.model for b in scaled)][model.scale_column_]
    return Run(
        "stacked",
        # its validation predictions are cross-fitted (each fold by a blend fitted on the others): the
        # in-sample blend would score itself on the rows it was fitted to and win every choice on validation
        model.oof_,
        r["mean"],
        time.perf_counter() - t0 + sum(b.seconds for b in {id(b): b for b in bases + scaled}.values()),
        r["lower"],
        r["upper"],
        f"cross-fitted normalised conformal (val; spread: {spread})",
        {"bases": [b.model for b in bases], "coef": model.coef_.tolist()},
        fitted=model,
    )


def save_run(run: Run, folder: Path) -> None:
    """The model folder (config.json = chosen hyper-parameters, state.pt) and the study (tuning.json)."""
    if run.fitted is not None:
        run.fitted.save(folder)
    if run.tuning is not None:
        run.tuning.save(folder)
