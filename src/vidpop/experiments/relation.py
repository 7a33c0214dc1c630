"""Experiments of the relation network + multi-task regressor: the paper's horizon evaluation and the
ablation (DNN, DNN+MTL, DNN+RN+MTL; optionally DNN+RN) against LightGBM on the same features and split.

Protocol per horizon H: ``temporal_split(times, cutoff, H)`` — train (and the last 10 % of it as
validation, for early stopping and tuning) on titles released before ``cutoff - H``, test on titles
released at or after ``cutoff``. Targets: log1p(views) (main) and log1p(aux) (auxiliary).

What is known on a title's prediction date ``release - H`` (the same rule for every row, so a test
title is treated exactly like a training title):

* competitors: the ``n_related`` titles released closest before the title's own release (labelled or
  not, from any period). The release schedule and the metadata of announced titles (tags, cast,
  staff, studio, title, episodes) are taken as known H days ahead, as the paper does when it
  predicts 360 days before release with competitors "with the closest releasing dates";
* a competitor enters with its *own* feature vector, i.e. its statistics as of its own prediction
  date, which is no later than the target's. A competitor's label (views) is never an input;
* studio / cast / staff target statistics: only titles released before the prediction date (plus the
  preset's label delay), see :func:`vidpop.models.relation_features.asof_target_stats`. These may
  include labelled titles of the test period released before the title's prediction date — on that
  date they are past titles, exactly as training titles are for a training row;
* the fitted transforms (vocabularies, TF-IDF/SVD, standardisation) see the training rows only.

So "horizon H" is *when* the prediction is made (H days before release: training titles released before
``cutoff - H``, statistics as of ``release - H``); the target is the same for every H: the season's
total plays at the crawl (Bilibili: Oct 2022), not the plays H days after release.

Measured on Bilibili (``benchmarks/results/relation_bilibili/``; 3 seeds, tuned on validation at 7 d),
test R² at 7 / 180 / 360 d: LightGBM .367 / .314 / .300, DNN .389 / .403 / .327, DNN+MTL .352 / .369 / .264,
DNN+RN+MTL .401 / .344 / .331, Ensemble (LightGBM + DNN+RN+MTL) .429 / .378 / .353. Titles under a year
old at the crawl are over-predicted (+0.64 log) — their plays are still accumulating.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from vidpop.data.schema import VideoDataset
from vidpop.errors import VidpopError
from vidpop.models.lightgbm_baseline import LightGBMRegressor
from vidpop.models.relation_features import DATASET_PRESETS  # noqa: F401  (read through this module)
from vidpop.models.relation_mtl import RelationMTLRegressor
from vidpop.recipes.relation import (  # noqa: F401  (how the model is fed: the recipe's, one definition each)
    Prepared,
    RelationSetup,
    default_cutoff,
    load_dated,
    prepare,
    setup_for,
    title_embeddings,
)
from vidpop.training import metrics

#: ablation variant -> (use_relation, uses the auxiliary task)
VARIANTS: dict[str, tuple[bool, bool]] = {
    "DNN": (False, False),
    "DNN+MTL": (False, True),
    "DNN+RN": (True, False),
    "DNN+RN+MTL": (True, True),
}
DEFAULT_VARIANTS = ("DNN", "DNN+MTL", "DNN+RN+MTL", "LightGBM")


SPLIT_PARTS = ("train", "val", "test", "all")


def competitor_table(ds: VideoDataset, prep: Prepared, part: str = "test") -> list[dict[str, Any]]:
    """Each title of one split part with its competitors (title, id, release date, days before)."""
    if part not in SPLIT_PARTS:
        raise VidpopError(f"--split must be one of {SPLIT_PARTS}, got '{part}'")
    v = ds.videos
    rows = np.arange(len(v)) if part == "all" else getattr(prep.split, part)
    t = pd.to_datetime(v["published_at"], utc=True)
    out = []
    for r in rows:
        comps = [int(c) for c in prep.related[r] if c >= 0]
        out.append(
            {
                "video_id": str(v["video_id"].iloc[r]),
                "title": str(v["title"].iloc[r]),
                "released": f"{t.iloc[r]:%Y-%m-%d}",
                "competitors": [
                    {
                        "video_id": str(v["video_id"].iloc[c]),
                        "title": str(v["title"].iloc[c]),
                        "released": f"{t.iloc[c]:%Y-%m-%d}",
                        "days_before": int((t.iloc[r] - t.iloc[c]).days),
                    }
                    for c in comps
                ],
            }
        )
    return out


def _report(y_true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {
        "r2": metrics.r2(y_true, pred),
        "mae": metrics.mae(y_true, pred),
        "spearman": metrics.spearman(y_true, pred),
    }


def _predict(model: Any, prep: Prepared, rows: np.ndarray) -> np.ndarray:
    x = prep.features[rows] if isinstance(model, LightGBMRegressor) else prep.inputs(rows)
    off = 0.0 if prep.offset is None else prep.offset[rows, 0]
    return np.asarray(model.predict(x), np.float64) + off


def _target(prep: Prepared, rows: np.ndarray) -> np.ndarray:
    """What the models learn: y minus the per-row offset (the market level, when on)."""
    return prep.y[rows] - (0.0 if prep.offset is None else prep.offset[rows])


def run_variant(
    prep: Prepared, variant: str, setup: RelationSetup, seed: int, progress: bool = False
) -> tuple[dict[str, float], Any]:
    """Train one variant on the prepared split; test metrics on log1p(target) (plus ``val_r2``, the
    validation R² that any choice must be based on) and the fitted model."""
    s = prep.split
    if variant == "LightGBM":
        model: Any = LightGBMRegressor(dataclasses.replace(setup.lightgbm, seed=seed))
        model.fit(
            prep.features[s.train], _target(prep, s.train)[:, 0], prep.features[s.val], _target(prep, s.val)[:, 0]
        )
    elif variant in VARIANTS:
        use_rel, mtl = VARIANTS[variant]
        cfg = setup.model
        # an MTL variant keeps the configured λ (0.5 if the config says 0); the others drop the aux head
        aux_weight = (cfg.aux_weight or 0.5) if mtl else 0.0
        cfg = dataclasses.replace(
            cfg,
            use_relation=use_rel,
            aux_weight=aux_weight,
            train=dataclasses.replace(cfg.train, seed=seed, progress=progress),
        )
        model = RelationMTLRegressor(cfg)
        model.fit(prep.inputs(s.train), _target(prep, s.train), prep.inputs(s.val), _target(prep, s.val))
    else:
        raise VidpopError(f"unknown variant '{variant}'; known: {[*VARIANTS, 'LightGBM']}")
    report = _report(prep.y[s.test, 0], _predict(model, prep, s.test))
    report["val_r2"] = metrics.r2(prep.y[s.val, 0], _predict(model, prep, s.val)) if len(s.val) else float("nan")
    return report, model


#: the two models whose per-seed mean prediction is the "Ensemble" row
ENSEMBLE_OF = ("LightGBM", "DNN+RN+MTL")


def _rows(prep: Prepared, preds: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Mean and std over seeds of the test metrics and validation R² of (val, test) predictions, plus the
    test R² of the seeds' mean prediction (what a user gets from a seed ensemble)."""
    s = prep.split
    runs = [
        _report(prep.y[s.test, 0], te) | {"val_r2": metrics.r2(prep.y[s.val, 0], va) if len(s.val) else float("nan")}
        for va, te in preds
    ]
    row = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    row |= {f"{k}_std": float(np.std([r[k] for r in runs])) for k in runs[0]}
    row["r2_ensemble"] = metrics.r2(prep.y[s.test, 0], np.mean([te for _, te in preds], axis=0))
    return row


def ablation(
    setup: RelationSetup,
    variants: tuple[str, ...] = DEFAULT_VARIANTS,
    seeds: int = 3,
    progress: bool = True,
    ds: VideoDataset | None = None,
    on_horizon: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """R², MAE and Spearman (mean and std over ``seeds``) per horizon and variant on the test titles.

    ``on_horizon(result_so_far)`` is called after each variant of each horizon (the CLI writes partial
    results with it).
    """
    from tqdm.auto import tqdm

    cpu0 = time.process_time()
    ds = ds if ds is not None else load_dated(setup.dataset)
    emb = title_embeddings(ds, setup.features.title if setup.features else "none", progress)
    t = ds.videos["published_at"]
    out: dict[str, Any] = {
        "dataset": setup.dataset,
        "n_titles_dated": len(ds.videos),
        "time_span": [f"{t.min():%Y-%m-%d}", f"{t.max():%Y-%m-%d}"],
        "seeds": seeds,
        "setup": dataclasses.asdict(setup),
        "horizons": {},
    }
    jobs = [(h, v, s) for h in setup.horizons for v in variants for s in range(seeds)]
    ensemble = ENSEMBLE_OF[0] in variants and ENSEMBLE_OF[1] in variants
    bar = tqdm(total=len(jobs), desc="relation ablation", disable=not progress)
    for h in setup.horizons:
        prep = prepare(ds, setup, h, emb)
        info = {
            **prep.split.sizes(),
            "cutoff": prep.split.info["cutoff"],
            "train_end": prep.split.info["train_end"],
            "n_features": prep.features.shape[1],
            "rows": {},
        }
        has_rel = (prep.related[prep.split.test] >= 0).sum(axis=1)
        info["test_mean_competitors"] = float(has_rel.mean())
        preds: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}  # variant -> per seed (val, test) predictions
        for v in variants:
            preds[v] = []
            for s in range(seeds):
                _report, model = run_variant(prep, v, setup, seed=s)
                preds[v].append((_predict(model, prep, prep.split.val), _predict(model, prep, prep.split.test)))
                bar.update(1)
            info["rows"][v] = _rows(prep, preds[v])
            out["horizons"][str(h)] = info
            if on_horizon:  # partial results after every variant (long runs on a busy machine)
                on_horizon(out)
        if ensemble:  # per seed: the mean of LightGBM's and DNN+RN+MTL's predictions
            pairs = zip(preds[ENSEMBLE_OF[0]], preds[ENSEMBLE_OF[1]], strict=True)
            info["rows"]["Ensemble"] = _rows(prep, [((a[0] + b[0]) / 2, (a[1] + b[1]) / 2) for a, b in pairs])
        # the model a user should pick: the highest validation R² (the test part plays no part in it)
        info["best"] = max(info["rows"], key=lambda k: info["rows"][k]["val_r2"])
        if on_horizon:
            on_horizon(out)
    bar.close()
    out["cpu_seconds"] = time.process_time() - cpu0
    out["loadavg_1_5_15"] = list(os.getloadavg())
    return out


def ordering_held(result: dict[str, Any]) -> dict[str, bool]:
    """Per horizon: did R² follow DNN < DNN+MTL < DNN+RN+MTL (the paper's ordering)?"""
    held = {}
    for h, info in result["horizons"].items():
        rows = info["rows"]
        if all(k in rows for k in ("DNN", "DNN+MTL", "DNN+RN+MTL")):
            held[h] = rows["DNN"]["r2"] < rows["DNN+MTL"]["r2"] < rows["DNN+RN+MTL"]["r2"]
    return held


def markdown_table(result: dict[str, Any]) -> str:
    lines = [
        f"### relation ablation — {result['dataset']} "
        f"(test: released at/after the cutoff; mean ± std over {result['seeds']} seeds)",
        "",
    ]
    lines.append(
        "| horizon (d) | train / val / test | model | validation R² | test R² | test R², seed ensemble "
        "| test MAE (log) | test Spearman |"
    )
    lines.append("|---|---|---|---|---|---|---|---|")
    for h, info in result["horizons"].items():
        sizes = f"{info['train']} / {info['val']} / {info['test']}"
        for v, r in info["rows"].items():
            lines.append(
                f"| {h} | {sizes} | {v} | {r.get('val_r2', float('nan')):.3f} | {r['r2']:.3f} ± {r['r2_std']:.3f} | "
                f"{r.get('r2_ensemble', float('nan')):.3f} | {r['mae']:.3f} ± {r['mae_std']:.3f} | "
                f"{r['spearman']:.3f} ± {r['spearman_std']:.3f} |"
            )
    lines += ["", summary_table(result)]
    if "cpu_seconds" in result:
        load = ", ".join(f"{x:.1f}" for x in result.get("loadavg_1_5_15", []))
        lines += ["", f"CPU {result['cpu_seconds']:.0f} s of this process; load average at the end {load}"]
    held = ordering_held(result)
    if held:
        lines += [
            "",
            "DNN < DNN+MTL < DNN+RN+MTL (R²) held: "
            + ", ".join(f"{h} d: {'yes' if ok else 'no'}" for h, ok in held.items()),
        ]
    return "\n".join(lines)


def summary_table(result: dict[str, Any]) -> str:
    """Test R² (mean over seeds) per horizon and model; "best" = the model with the highest validation R²."""
    models = list(dict.fromkeys(m for info in result["horizons"].values() for m in info["rows"]))
    lines = [
        "| horizon (d) | " + " | ".join(models) + " | best (by validation R²) |",
        "|---" * (len(models) + 2) + "|",
    ]
    for h, info in result["horizons"].items():
        rows = info["rows"]
        cells = [f"{rows[m]['r2']:.3f}" if m in rows else "—" for m in models]
        best = info.get("best") or max(rows, key=lambda k: rows[k].get("val_r2", float("-inf")))
        lines.append(f"| {h} | " + " | ".join(cells) + f" | {best}: {rows[best]['r2']:.3f} |")
    return "\n".join(lines)
