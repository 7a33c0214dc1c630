"""The best popularity model on validation, trained and saved as one model folder (issue 13 §7): what
``vidpop train best --data D`` and ``make models`` serve.

Candidates — the leaderboard's LightGBM rows, on the same rows, target, split and features:

* ``lightgbm`` (its defaults) and ``lightgbm_tuned`` (seeded Optuna TPE, ``trials`` trials, on val MAE),
  each with the retrieval block off and on (``gbdt_retrieval``'s ``retrieval`` flag);
* ``train_mean``, the reference every model has to beat.

Every candidate is fitted on the training part and scored on the validation part; the one with the lowest
validation MAE wins (the metric the leaderboard tunes on). Its validation residuals give the split-conformal
intervals. Then, once, its test metrics are computed and recorded: they play no part in the choice.
Not candidates here, to keep ``make models`` short: the MLP and the variational PoE (slower, and behind
LightGBM on both leaderboards), and the stacked blend (fitted on the validation part, so its validation
score is in-sample and cannot be compared with the others').

The folder holds, besides the model (:mod:`vidpop.models.gbdt_retrieval`): ``recipe.json`` (data, split,
target, the class edges) with ``best_on_validation`` (the winner and its validation metrics),
``selection.json`` (every candidate's validation metrics and the winner's test metrics) and, when tuned,
``tuning.json``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidpop.experiments.tuning import LIGHTGBM_SPACE, TuningResult, tune
from vidpop.models.lightgbm_baseline import LightGBMConfig
from vidpop.models.registry import build_model
from vidpop.recipes.gbdt import PopularityTask, load_popularity, recipe_record
from vidpop.training import metrics
from vidpop.training.conformal import conformal_quantile

MODEL = "gbdt_retrieval"
LEVEL = 0.95


def _scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {
        "MAE": metrics.mae(y, pred),
        "MAPE": metrics.mape(y, pred),
        "R2": metrics.r2(y, pred),
        "Spearman": metrics.spearman(y, pred) if np.ptp(pred) > 0 else float("nan"),
    }


@dataclass
class Candidate:
    name: str
    retrieval: bool
    params: dict[str, Any]
    val: dict[str, float]
    seconds: float
    tuning: TuningResult | None = None
    model: Any = field(default=None, repr=False)

    def record(self) -> dict[str, Any]:
        return {"model": self.name, "retrieval": self.retrieval, "params": self.params, "val": self.val,
                "seconds": round(self.seconds, 1)}  # fmt: skip


def candidates(task: PopularityTask, X: Any, trials: int, seed: int = 0, progress: bool = False) -> list[Candidate]:
    """Every candidate fitted on the training part and scored on validation (see the module doc)."""
    sp, y = task.split, task.y
    tr, va = sp.train, sp.val
    mean = np.full(len(va), float(np.mean(y[tr])))
    out = [Candidate("train_mean", False, {}, _scores(y[va], mean), 0.0)]
    Xtr, Xva = X.take(tr), X.take(va)
    for retrieval in (False, True):
        t0 = time.perf_counter()
        base = {"retrieval": retrieval, "seed": seed, "target_name": task.target}
        m = build_model(MODEL, base)
        m.fit_features(Xtr, y[tr])
        Ftr, Fva = m.features(Xtr), m.features(Xva)
        t_feat = time.perf_counter() - t0

        def val_mae(params: dict[str, Any], Ftr: np.ndarray = Ftr, Fva: np.ndarray = Fva) -> float:
            g = build_model("lightgbm", {**params, "seed": seed}).fit(Ftr, y[tr])
            return metrics.mae(y[va], g.predict(Fva))

        for tuned in (False, True) if trials else (False,):
            t1 = time.perf_counter()
            res, params = None, {}
            if tuned:
                defaults = asdict(LightGBMConfig())
                res = tune("lightgbm", LIGHTGBM_SPACE, val_mae, trials, seed, defaults)
                params = res.best_params
            fitted = build_model(MODEL, {**base, **params})
            fitted.__dict__.update({k: v for k, v in vars(m).items() if k.endswith("_")})  # the fitted transforms
            fitted.fit_booster(Ftr, y[tr])
            pred = fitted._raw_predict(Fva)
            name = "lightgbm_tuned" if tuned else "lightgbm"
            secs = t_feat + time.perf_counter() - t1
            out.append(Candidate(name, retrieval, params, _scores(y[va], pred), secs, res, fitted))
            if progress:
                print(f"{task.ds.name}: {name} (retrieval {'on' if retrieval else 'off'}) val MAE "
                      f"{out[-1].val['MAE']:.4f} ({secs:.0f} s)", flush=True)  # fmt: skip
    return out


def train_best(
    data: str,
    out: str | Path,
    split: str | None = None,
    trials: int = 20,
    seed: int = 0,
    progress: bool = True,
    limit: int | None = None,
) -> dict[str, Any]:
    """Train every candidate, keep the best on validation (MAE), calibrate it, save it to ``out``."""
    from vidpop.models.gbdt_retrieval import video_table

    t0, c0 = time.perf_counter(), time.process_time()
    task = load_popularity(data, {"split": split, "seed": seed, "limit": limit})
    X = video_table(task.ds, progress=progress)
    cands = candidates(task, X, trials, seed, progress)
    fitted = [c for c in cands if c.model is not None]
    best = min(fitted, key=lambda c: c.val["MAE"])
    model = best.model
    sp, y = task.split, task.y
    model.calibrate(X.take(sp.val), y[sp.val])
    # the test part, once, after the choice
    r = model.predict_interval(X.take(sp.test), LEVEL)
    yt = y[sp.test]
    test = {**_scores(yt, r["mean"][:, 0]),
            "coverage95": metrics.interval_coverage(yt, r["lower"][:, 0], r["upper"][:, 0]),
            "width95": metrics.interval_width(r["lower"][:, 0], r["upper"][:, 0])}  # fmt: skip
    winner = {
        "candidate": best.name,
        "retrieval": best.retrieval,
        "metric": "val MAE (lowest wins)",
        "val": best.val,
        "interval": f"split conformal on the {len(sp.val)} validation rows: "
        f"±{conformal_quantile(model.residuals_, LEVEL):.4f} on the {task.target} scale at {LEVEL:.0%}",
    }
    selection = {
        "data": data,
        "target": task.target,
        "split": task.kind,
        "sizes": sp.sizes(),
        "candidates": [c.record() for c in cands],
        "winner": winner,
        "test_of_winner": test,
        "seconds": round(time.perf_counter() - t0, 1),
        "cpu_seconds": round(time.process_time() - c0, 1),
    }
    recipe = {"model": MODEL, **recipe_record(data, task, seed, limit), "best_on_validation": winner}
    extra = {"recipe.json": recipe, "selection.json": selection}
    if best.tuning is not None:
        extra["tuning.json"] = asdict(best.tuning)
    model.save(Path(out), extra_json=extra)
    return selection


def format_selection(sel: dict[str, Any]) -> str:
    lines = [f"best on validation for {sel['data']} (target {sel['target']}, split {sel['split']} {sel['sizes']}):"]
    for c in sel["candidates"]:
        v = c["val"]
        mark = "*" if c["model"] == sel["winner"]["candidate"] and c["retrieval"] == sel["winner"]["retrieval"] else " "
        lines.append(f" {mark} {c['model']:16s} retrieval {'on ' if c['retrieval'] else 'off'} val MAE {v['MAE']:.4f}  "
                     f"MAPE {v['MAPE']:.4f}  Spearman {v['Spearman']:.4f}  ({c['seconds']:.0f} s)")  # fmt: skip
    t = sel["test_of_winner"]
    lines.append(f"winner {sel['winner']['candidate']} (retrieval {'on' if sel['winner']['retrieval'] else 'off'}); "
                 f"{sel['winner']['interval']}")  # fmt: skip
    lines.append("test (once, after the choice): " + "  ".join(f"{k} {v:.4f}" for k, v in t.items()))
    lines.append(f"{sel['seconds']} s wall, {sel['cpu_seconds']} CPU s")
    return "\n".join(lines)
