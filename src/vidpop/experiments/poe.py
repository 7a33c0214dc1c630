"""Evaluation of the variational product-of-experts regressor, and its comparison with split-conformal
intervals around LightGBM on the same split. The CLI (``vidpop poe ...``) only formats and plots.

* ``smp_video_2025``: labels exist for the 4,000 train posts only; those are split train/val/test
  (seeded random 70/10/20 by default, or by posting time: the latest 20% are the test part).
  Experts: social + textual (no video files).
* ``spotify_fresh_finds_covers_2022``: grouped random split over the adapter's ``group`` (a track listed
  in several playlists never straddles parts). Experts: visual (the cover, one frame) + textual.
* any imported collection (a folder written by ``vidpop data import``): random split, grouped when it
  has a ``group`` column; every modality it has.

The validation part drives the PoE's early stopping and is the calibration set of the conformal
baseline; LightGBM early-stops on a seeded 10% of the training part instead (its own holdout).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vidpop.data.adapters.base import load_dataset  # noqa: F401  (the one loader, under this module's old name)
from vidpop.models.poe_inputs import PoEInputs
from vidpop.models.registry import build_model
from vidpop.models.variational_poe import VariationalPoERegressor, sample_intervals
from vidpop.recipes.poe import (  # noqa: F401  (how the PoE is fed: the recipe's; old names import from here)
    SPLITS,
    PoETask,
    labelled,
    make_split,
    prepare,
    stack_tasks,
)
from vidpop.training import metrics
from vidpop.training.conformal import SplitConformal

LEVELS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


# ------------------------------------------------------------------------------------------ evaluation
def calibration_rows(y: np.ndarray, samples: np.ndarray, levels: tuple[float, ...] = LEVELS) -> list[dict[str, float]]:
    """Nominal vs empirical coverage of the central sample intervals, one row per level (one target)."""
    rows = []
    for lv in levels:
        lo, hi = sample_intervals(samples, lv)
        rows.append(
            {"nominal": lv, "empirical": metrics.interval_coverage(y, lo, hi), "width": metrics.interval_width(lo, hi)}
        )
    return rows


def baseline_matrix(X: PoEInputs) -> np.ndarray:
    """The LightGBM baseline's inputs: the same modalities, raw (text as the 384-d MiniLM embedding, not
    the 20-d projection), NaN where a modality is absent (LightGBM routes missing values itself)."""
    parts = []
    for m in X.present_modalities():
        v, mask = X.get(m)
        parts.append(np.where(mask[:, None], v, np.nan))
    return np.concatenate(parts, axis=1)


def conformal_baseline(task: PoETask, j: int, seed: int, levels: tuple[float, ...]) -> dict[str, Any]:
    """LightGBM fitted on the train part, split-conformal intervals calibrated on the val part."""
    sp, yj = task.split, task.y[:, j]
    F = baseline_matrix(task.X)
    tr, cal, te = (idx[np.isfinite(yj[idx])] for idx in (sp.train, sp.val, sp.test))
    gbm = build_model("lightgbm", seed=seed).fit(F[tr], yj[tr])
    conf = SplitConformal().fit(gbm.predict(F[cal]), yj[cal])
    pred = gbm.predict(F[te])
    rows = []
    for lv in levels:
        lo, hi = conf.interval(pred, lv)
        rows.append(
            {
                "nominal": lv,
                "empirical": metrics.interval_coverage(yj[te], lo, hi),
                "width": metrics.interval_width(lo, hi),
            }
        )
    return {
        "mae": metrics.mae(yj[te], pred),
        "spearman": metrics.spearman(yj[te], pred),
        "calibration": rows,
        "n_cal": len(cal),
    }


def evaluate(
    task: PoETask, config: dict[str, Any] | None = None, seed: int = 0, levels: tuple[float, ...] = LEVELS
) -> dict[str, Any]:
    """Train the PoE on train (early stopping on val), sample on test; per target: MAE, Spearman, 95%
    coverage / width, calibration, and the conformal LightGBM comparison. Also returns what the plots need."""
    sp = task.split
    model = build_model("variational_poe", config or {})
    assert isinstance(model, VariationalPoERegressor)
    model.config.train.seed = seed
    model.fit(
        task.X.take(sp.train), task.y[sp.train], task.X.take(sp.val), task.y[sp.val], target_names=task.target_names
    )
    samples = model.sample(task.X.take(sp.test))
    out: dict[str, Any] = {"targets": {}, "notes": task.notes, "best_epoch": model.history_["best_epoch"]}
    for j, name in enumerate(task.target_names):
        yt = task.y[sp.test, j]
        ok = np.isfinite(yt)
        s = samples[:, ok, j]
        mean = s.mean(axis=0)
        lo, hi = sample_intervals(s, 0.95)
        out["targets"][name] = {
            "n_test": int(ok.sum()),
            "mae": metrics.mae(yt[ok], mean),
            "spearman": metrics.spearman(yt[ok], mean),
            "coverage95": metrics.interval_coverage(yt[ok], lo, hi),
            "width95": metrics.interval_width(lo, hi),
            "calibration": calibration_rows(yt[ok], s, levels),
            "conformal_lightgbm": conformal_baseline(task, j, seed, levels),
            "plot": {"y": yt[ok], "mean": mean, "lower": lo, "upper": hi},
        }
    out["single_expert"] = single_expert_rows(model, task)
    out["model"] = model
    return out


def single_expert_rows(model: VariationalPoERegressor, task: PoETask) -> list[dict[str, Any]]:
    """The same trained model on the test part with one expert at a time (the others masked out): what a
    video with only that modality would get. No retraining: missing modalities are the PoE's normal case."""
    mods = model.trained_modalities_
    if len(mods) < 2:
        return []
    X_te, rows = task.X.take(task.split.test), []
    for m in mods:
        samples = model.sample(X_te.drop(*(o for o in mods if o != m)))
        for j, name in enumerate(task.target_names):
            yt = task.y[task.split.test, j]
            ok = np.isfinite(yt) & X_te.masks[m]
            if not ok.any():
                continue
            s = samples[:, ok, j]
            lo, hi = sample_intervals(s, 0.95)
            rows.append(
                {
                    "expert": m,
                    "target": name,
                    "n": int(ok.sum()),
                    "mae": metrics.mae(yt[ok], s.mean(axis=0)),
                    "spearman": metrics.spearman(yt[ok], s.mean(axis=0)),
                    "coverage95": metrics.interval_coverage(yt[ok], lo, hi),
                    "width95": metrics.interval_width(lo, hi),
                }
            )
    return rows


# ------------------------------------------------------------------------------------------ report / plots
def format_report(res: dict[str, Any], dataset: str) -> str:
    lines = [f"variational_poe on {dataset}"] + [f"  {n}" for n in res["notes"]]
    for name, r in res["targets"].items():
        c = r["conformal_lightgbm"]
        lines += [
            "",
            f"target {name} (test n={r['n_test']})",
            f"  {'model':30s} {'MAE':>7s} {'Spearman':>9s} {'cov95':>7s} {'width95':>8s}",
            f"  {'variational_poe (S samples)':30s} {r['mae']:7.3f} {r['spearman']:9.3f} "
            f"{r['coverage95']:7.3f} {r['width95']:8.3f}",
            f"  {'lightgbm + split conformal':30s} {c['mae']:7.3f} {c['spearman']:9.3f} "
            f"{c['calibration'][-1]['empirical']:7.3f} {c['calibration'][-1]['width']:8.3f}",
            f"  calibration: nominal -> empirical coverage (mean width); conformal calibrated on {c['n_cal']} val rows",
            f"  {'nominal':>8s} {'PoE cov':>8s} {'PoE width':>10s} {'conf cov':>9s} {'conf width':>11s}",
        ]
        for a, b in zip(r["calibration"], c["calibration"], strict=True):
            lines.append(
                f"  {a['nominal']:8.2f} {a['empirical']:8.3f} {a['width']:10.3f} "
                f"{b['empirical']:9.3f} {b['width']:11.3f}"
            )
    if res.get("single_expert"):
        lines += ["", "same model, one expert at test time (others masked; no retraining)"]
        for r in res["single_expert"]:
            lines.append(
                f"  {r['expert'] + ' only':14s} {r['target']:22s} n={r['n']:<5d} MAE {r['mae']:.3f}  "
                f"Spearman {r['spearman']:.3f}  cov95 {r['coverage95']:.3f}  width95 {r['width95']:.3f}"
            )
    return "\n".join(lines)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _finish(fig: Any, ax: Any, title: str, path: Path) -> Path:
    """Title, legend and the PNG at ``path`` (folders made), then free the figure."""
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
    return path


def plot_residuals(plot: dict[str, np.ndarray], title: str, path: Path, max_points: int = 300, seed: int = 0) -> Path:
    """Residual (y − mean) against the predicted mean, with the 95% interval as error bars around the
    residual, for a seeded sample of test rows; red = the interval missed the target."""
    plt = _pyplot()
    y, mean, lo, hi = (np.asarray(plot[k]) for k in ("y", "mean", "lower", "upper"))
    idx = np.random.default_rng(seed).permutation(len(y))[:max_points]
    res = y[idx] - mean[idx]
    # the bar spans [y − upper, y − lower]: it crosses 0 exactly when the interval covers the target
    err = np.vstack([hi[idx] - mean[idx], mean[idx] - lo[idx]])
    inside = (y[idx] >= lo[idx]) & (y[idx] <= hi[idx])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for sel, colour, label in ((inside, "tab:blue", "inside 95% interval"), (~inside, "tab:red", "outside")):
        ax.errorbar(
            mean[idx][sel],
            res[sel],
            yerr=err[:, sel],
            fmt="o",
            ms=3,
            color=colour,
            ecolor=colour,
            alpha=0.5,
            elinewidth=0.7,
            label=label,
        )
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xlabel("predicted mean")
    ax.set_ylabel("residual (true − predicted); bars: 95% interval")
    return _finish(fig, ax, title, path)


def plot_calibration(
    poe_rows: list[dict[str, float]], conf_rows: list[dict[str, float]], title: str, path: Path
) -> Path:
    """Empirical vs nominal coverage for the PoE and for conformal LightGBM (diagonal = calibrated)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 4.5))
    for rows, label, marker in ((poe_rows, "variational PoE", "o"), (conf_rows, "LightGBM + split conformal", "s")):
        ax.plot([r["nominal"] for r in rows], [r["empirical"] for r in rows], marker=marker, label=label)
    ax.plot([0.45, 1.0], [0.45, 1.0], "k--", lw=0.8, label="ideal")
    ax.set_xlabel("nominal coverage")
    ax.set_ylabel("empirical coverage (test)")
    return _finish(fig, ax, title, path)
