"""Leaderboard: every popularity model on one dataset and one split, with and without the retrieval
features, on the same tabular features (issue 13, ask 6). The CLI (``vidpop leaderboard``) only prints.

* ``smp_video_2025`` — the 4,000 labelled posts; ``--split time`` (default): the latest 800 are the
  test part, the 400 before them validation, the first 2,800 training. Target: the organisers'
  log-scale ``popularity`` as is.
* ``microlens`` — 19,738 videos; seeded random 70/10/20 split (no publication times). Target:
  log(1 + views). Inputs are content only (title, hashtags, category): likes and comments are
  outcomes, not inputs.

Metrics on the test part (computed once, at the end): MAPE = mean |y − ŷ| / |y| on the target scale
(the SMP challenge's definition), MAE, R2, Spearman, coverage95 and width95 of the 95% intervals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from vidpop.data.splits import Split
from vidpop.experiments import leaderboard_models as lm
from vidpop.features.popularity_features import Features, PopularityFeatures, PopularityFeaturesConfig
from vidpop.features.tabular import TabularConfig
from vidpop.models.poe_inputs import PoEInputs
from vidpop.recipes.gbdt import popularity_task, smp_time_split  # noqa: F401  (smp_time_split: re-exported)
from vidpop.training import metrics
from vidpop.training.conformal import clip_to_support

DATASETS: tuple[str, ...] = ("smp_video_2025", "microlens")
#: a content modality enters the models only when this share of the training rows has it
MIN_MEDIA_COVERAGE = 0.2
METRICS: tuple[str, ...] = ("MAPE", "MAE", "R2", "Spearman", "coverage95", "width95")


#: the evaluator's MAPE (mean |y − ŷ| / |y|), kept under the leaderboard's old name
mape = metrics.mape


@dataclass
class LeaderboardTask:
    name: str
    frame: pd.DataFrame
    y: np.ndarray
    target: str
    split: Split
    #: the title sentence embedding (MiniLM), its presence mask and its second view (for the PoE)
    emb: np.ndarray
    emb_mask: np.ndarray
    text_view: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    #: other content modalities the dataset has (cover/frames "visual", "acoustic"): (values, present mask)
    media: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def times(self) -> np.ndarray | None:
        t = self.frame.get("published_at")
        return None if t is None or t.isna().all() else t.dt.tz_convert(None).to_numpy("datetime64[ns]")


def load_task(dataset: str, split: str | None = None, seed: int = 0, progress: bool = True) -> LeaderboardTask:
    """The labelled rows of ``dataset`` with target, split and title embeddings (cached features)."""
    from vidpop.data.adapters import load_dataset
    from vidpop.models.poe_inputs import build_poe_inputs

    pt = popularity_task(load_dataset(dataset), split, seed)
    ds, y, target, sp, kind = pt.ds, pt.y, pt.target, pt.split, pt.kind
    frame = ds.videos_with_authors().reset_index(drop=True)
    X = build_poe_inputs(ds.subset(ds.videos["video_id"].tolist()), progress=progress)
    notes = [f"{dataset}: {len(frame)} labelled rows, target {target}; split {kind} {sp.sizes()}"]
    media: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for m in ("visual", "acoustic"):
        if m not in X.values or not X.masks[m].any():
            continue
        mask = X.masks[m]
        # a modality on a sliver of the rows (MicroLens: 13 covers in 19,738) teaches nothing: say so
        used = mask[sp.train].mean() >= MIN_MEDIA_COVERAGE
        media.update({m: (X.values[m], mask)} if used else {})
        notes.append(f"{m} features on {int(mask.sum())} of {len(mask)} rows{'' if used else ': left out'}")
    return LeaderboardTask(
        dataset, frame, y, target, sp, X.values["textual"], X.masks["textual"], X.text_view, notes, media
    )


# ------------------------------------------------------------------------------------------ features
def build_features(
    task: LeaderboardTask,
    k: int = 20,
    tabular: TabularConfig | None = None,
    media_pca: int = 16,
    text_ridge: bool = True,
) -> Features:
    """Tabular and retrieval features of every row (:mod:`vidpop.features.popularity_features`, the
    pipeline ``gbdt_retrieval`` serves), every transform fitted on the training part only."""
    tr = task.split.train
    cfg = PopularityFeaturesConfig(k=k, tabular=tabular or TabularConfig(), media_pca=media_pca, text_ridge=text_ridge)
    visual = task.media.get("visual")
    train_visual = None if visual is None else (visual[0][tr], visual[1][tr])
    pipeline = PopularityFeatures(cfg).fit(task.frame.iloc[tr], task.emb[tr], task.y[tr], train_visual)
    return pipeline.transform(task.frame, task.emb, visual)


# ------------------------------------------------------------------------------------------ runs
#: validation scores each row carries: the targets read the row chosen on these, never on test
VAL_METRICS: tuple[str, ...] = ("val_MAPE", "val_R2", "val_Spearman")


def row(run: lm.Run, y_test: np.ndarray, retrieval: bool, y_val: np.ndarray | None = None) -> dict[str, Any]:
    """The run's test metrics and, with ``y_val``, its validation ones (``VAL_METRICS``)."""
    out: dict[str, Any] = {
        "model": run.model,
        "retrieval": retrieval,
        "MAPE": mape(y_test, run.pred_test),
        "MAE": metrics.mae(y_test, run.pred_test),
        "R2": metrics.r2(y_test, run.pred_test),
        "Spearman": metrics.spearman(y_test, run.pred_test),
        "coverage95": None,
        "width95": None,
        "interval": run.interval,
        "seconds": round(run.seconds, 2),
        "params": run.params,
        **run.notes,
    }
    if y_val is not None and len(run.pred_val) == len(y_val):
        out["val_MAPE"] = mape(y_val, run.pred_val)
        out["val_R2"] = metrics.r2(y_val, run.pred_val)
        out["val_Spearman"] = metrics.spearman(y_val, run.pred_val)
    if run.tuning is not None:
        out["tuning"] = {
            "n_trials": run.tuning.n_trials,
            "best_value": run.tuning.best_value,
            "metric": run.tuning.metric,
        }
    if run.lower is not None and run.upper is not None:
        out["coverage95"] = metrics.interval_coverage(y_test, run.lower, run.upper)
        out["width95"] = metrics.interval_width(run.lower, run.upper)
    return out


def fit_all(
    task: LeaderboardTask,
    feats: Features,
    trials: int = 30,
    poe_trials: int = 8,
    seed: int = 0,
    poe_epochs: int = 150,
    models: tuple[str, ...] = ("mean", "lightgbm", "mlp", "poe", "stacked"),
    progress: bool = True,
    poe_gbdt_input: bool = True,
) -> list[tuple[lm.Run, bool]]:
    """Every model, without then with the retrieval features: (run, retrieval on?)."""
    sp, y = task.split, task.y
    runs: list[tuple[lm.Run, bool]] = []
    if "mean" in models:
        runs.append((lm.run_mean(y, sp), False))

    def done(new: list[tuple[lm.Run, bool]]) -> None:
        runs.extend(new)
        if progress:  # one line per fitted model: minutes of tuning should not be silent
            for r, ret in new:
                tqdm.write(f"{task.name}: {r.model} (retrieval {'on' if ret else 'off'}) {r.seconds:.0f} s")

    for retrieval in tqdm((False, True), desc=f"leaderboard {task.name}", disable=not progress):
        X = np.concatenate([feats.tab, feats.ret], axis=1) if retrieval else feats.tab
        bases: list[lm.Run] = []
        support = (float(np.min(y[sp.train])), float(np.max(y[sp.train])))
        if "lightgbm" in models:
            default = lm.run_lightgbm(X, y, sp, 0, seed, quantiles=False, normalised=False, support=support)
            done([(r, retrieval) for r in default])
            tuned = lm.run_lightgbm(X, y, sp, trials, seed)
            done([(r, retrieval) for r in tuned])
            bases += tuned
        if "mlp" in models:
            mlp = lm.run_mlp(X, y, sp, seed)
            done([(mlp, retrieval)])
            bases.append(mlp)
        if "poe" in models:
            media = {m: v for m, (v, _) in task.media.items()}
            masks = {"textual": task.emb_mask, **{m: mk for m, (_, mk) in task.media.items()}}
            pX = PoEInputs({"textual": task.emb, "social": X, **media}, masks, task.text_view)
            poe = lm.run_poe(pX, y, sp, poe_trials, seed, poe_epochs)
            done([(r, retrieval) for r in poe])
            bases.append(poe[0])
            gbdt = next((b for b in bases if b.oof_train is not None), None)
            if poe_gbdt_input and gbdt is not None:
                # the social expert also reads the GBDT's prediction: out-of-fold on the training rows,
                # the full model's on validation and test (a cross-fitted stacking input, no label leak);
                # it keeps the hyper-parameters the PoE's own study chose on validation
                g = np.full(len(y), np.nan)
                g[sp.train], g[sp.val], g[sp.test] = gbdt.oof_train, gbdt.pred_val, gbdt.pred_test
                gX = PoEInputs({"textual": task.emb, "social": np.column_stack([X, g]), **media}, masks, task.text_view)
                plus = lm.run_poe(gX, y, sp, 0, seed, poe_epochs, params=poe[0].params)
                for r in plus:
                    r.model = r.model.replace("variational_poe", "variational_poe+gbdt")
                done([(r, retrieval) for r in plus])
        if "stacked" in models and bases:
            j = feats.ret_names.index("nn_wmean")
            ev, et = (feats.ret[sp.val, j], feats.ret[sp.test, j]) if retrieval else (np.empty(0), np.empty(0))
            point = [b for b in bases if "(CQR)" not in b.model and "(normalised)" not in b.model]
            scaled = [b for b in bases if b.scale_val is not None]
            st = lm.run_stacked(y, sp, point, scaled, ev, et)
            clo, chi = clip_to_support(st.lower, st.upper, support)
            clipped = lm.Run(
                "stacked (clipped)", st.pred_val, st.pred_test, st.seconds, clo, chi, f"support-clipped {st.interval}"
            )
            done([(st, retrieval), (clipped, retrieval)])
    return runs


def run_leaderboard(
    dataset: str,
    split: str | None = None,
    trials: int = 30,
    poe_trials: int = 8,
    seed: int = 0,
    out: Path | None = None,
    progress: bool = True,
    poe_epochs: int = 150,
) -> dict[str, Any]:
    import time

    t0 = time.perf_counter()
    task = load_task(dataset, split, seed, progress)
    feats = build_features(task)
    t_feat = time.perf_counter() - t0
    runs = fit_all(task, feats, trials, poe_trials, seed, poe_epochs, progress=progress)
    y_test, y_val = task.y[task.split.test], task.y[task.split.val]
    rows = [row(r, y_test, ret, y_val) for r, ret in runs]
    if out is not None:
        for r, ret in runs:
            lm.save_run(r, Path(out) / f"{r.model.split(' ')[0]}{'_retrieval' if ret else ''}")
    res = {
        "dataset": dataset,
        "target": task.target,
        "split": {**task.split.info, **task.split.sizes()},
        "notes": [*task.notes, f"features: {len(feats.tab_names)} tabular, {len(feats.ret_names)} retrieval"],
        "rows": rows,
        "feature_seconds": round(t_feat, 1),
        "total_seconds": round(time.perf_counter() - t0, 1),
    }
    res["targets"] = check_targets(res)
    return res


# ------------------------------------------------------------------------------------------ targets
def _named(r: dict[str, Any]) -> str:
    return f"{r['model']} (retrieval {'on' if r['retrieval'] else 'off'})"


def chosen_on_validation(
    rows: list[dict[str, Any]], metric: str, keep: Callable[[str], bool] = lambda m: True
) -> dict[str, Any] | None:
    """The row with the best validation ``metric`` ("MAPE": lowest; "R2", "Spearman": highest) among
    those whose model name passes ``keep``; None without one. Ties go to the earlier row (a model's plain
    interval before its clipped or conformalised variants). The test metrics play no part."""
    key = f"val_{metric}"
    kept = [r for r in rows if keep(r["model"]) and r.get(key) is not None and np.isfinite(r[key])]
    if not kept:
        return None
    sign = 1.0 if metric == "MAPE" else -1.0
    return min(kept, key=lambda r: sign * r[key])


def _target(
    name: str,
    rows: list[dict[str, Any]],
    metric: str,
    ok: Callable[[float], bool],
    keep: Callable[[str], bool] = lambda m: True,
) -> dict[str, Any]:
    """One target judged on the TEST ``metric`` of the row chosen on its validation ``metric``."""
    r = chosen_on_validation(rows, metric, keep)
    if r is None:
        return {"target": f"{name} (no validation scores)", "value": float("nan"), "model": None, "met": False}
    value = float(r[metric])
    return {"target": f"{name} (model chosen on validation {metric})", "value": value, "model": _named(r),
            "val": r[f"val_{metric}"], "met": bool(ok(value))}  # fmt: skip


def check_targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 13's targets for this dataset. "The best model" is the one chosen on the VALIDATION part,
    judged on test, as the YouTube leaderboard and the served bundle choose; the best test row is listed
    beside it as ``reported`` (a choice made on test, never counted)."""
    rows = [r for r in res["rows"] if r["model"] != "train_mean"]
    out: list[dict[str, Any]] = []
    if res["dataset"] == "smp_video_2025":
        # "the PoE itself": its own experts only; the PoE whose social expert also reads the GBDT's
        # prediction is a stack (reported beside it, never counted for this target)
        def poe_itself(m: str) -> bool:
            return m.startswith("variational_poe") and "+" not in m

        served = chosen_on_validation(rows, "MAPE")
        ref = min(
            (r["width95"] for r in rows if r["model"].startswith("lightgbm") and r["interval"].startswith("split")),
            default=float("nan"),
        )
        out += [
            _target("best MAPE <= 0.205", rows, "MAPE", lambda v: v <= 0.205),
            _target("best Spearman >= 0.66", rows, "Spearman", lambda v: v >= 0.66),
            _target("PoE MAPE <= 0.225", rows, "MAPE", lambda v: v <= 0.225, keep=poe_itself),
            {
                **_target("PoE MAPE <= 0.225", rows, "MAPE", lambda v: True, keep=lambda m: "variational_poe+" in m),
                "target": "PoE MAPE <= 0.225 (PoE with the GBDT's prediction as a social input; a stack, not counted)",
                "met": None,
            },
            {
                "target": "95% coverage in [0.92, 0.98], width <= 0.9 x narrowest split-conformal LightGBM "
                "(the interval of the model chosen on validation MAPE)",
                "value": None if served is None else _interval(served, ref),
                "model": None if served is None else _named(served),
                "met": served is not None
                and served["coverage95"] is not None
                and 0.92 <= served["coverage95"] <= 0.98
                and served["width95"] <= 0.9 * ref,
            },
        ]
        in_range = [r for r in rows if r["coverage95"] is not None and 0.92 <= r["coverage95"] <= 0.98]
        if in_range:
            narrow = min(in_range, key=lambda r: r["width95"])
            out.append({"target": "narrowest 95% interval in range on test (a choice on test, not counted)",
                        "value": _interval(narrow, ref), "model": _named(narrow), "met": None})  # fmt: skip
    elif res["dataset"] == "microlens":
        out.append(_target("best Spearman >= 0.45", rows, "Spearman", lambda v: v >= 0.45))
    for metric, better in (("MAPE", min), ("Spearman", max)):
        scored = [r for r in rows if np.isfinite(r[metric])]
        if scored and out:
            top = better(scored, key=lambda r: r[metric])
            out.append({"target": f"best test {metric} of any row (a choice on test, not counted)",
                        "value": float(top[metric]), "model": _named(top), "met": None})  # fmt: skip
    return out


def _interval(r: dict[str, Any], ref: float) -> dict[str, Any]:
    return {"coverage95": r["coverage95"], "width95": r["width95"],
            "ratio_to_lightgbm": None if r["width95"] is None else r["width95"] / ref}  # fmt: skip


def format_table(res: dict[str, Any]) -> str:
    lines = [f"leaderboard {res['dataset']} (target {res['target']}; split {res['split']})"]
    lines += [f"  {n}" for n in res["notes"]]
    shown = (*METRICS, *VAL_METRICS)
    head = f"  {'model':40s} {'retr':>4s} " + " ".join(f"{m:>12s}" for m in shown) + f" {'seconds':>8s}  interval"
    lines += ["", head]
    for r in res["rows"]:
        cells = " ".join("           -" if r.get(m) is None else f"{r[m]:12.3f}" for m in shown)
        lines.append(
            f"  {r['model']:40s} {'on' if r['retrieval'] else 'off':>4s} {cells} {r['seconds']:8.1f}  {r['interval']}"
        )
    lines += ["", "targets:"]
    for t in res["targets"]:
        mark = "reported" if t["met"] is None else ("met" if t["met"] else "MISSED")
        row = f" ({t['model']})" if t.get("model") else ""
        lines.append(f"  [{mark}] {t['target']}: {t['value']}{row}")
    return "\n".join(lines)
