"""The popularity task of the leaderboard (target, split) and the recipe of ``gbdt_retrieval``.

* target: the dataset's own ``popularity_column`` where it has one (SMP-Video: the organisers' log-scale
  popularity), else log(1 + views); the rows without it are left out;
* split: ``time`` (default when every row has a publication time): the latest 20% test, the 10% before them
  validation; ``random``: seeded 70/10/20.

The leaderboard (:mod:`vidpop.experiments.leaderboard`) and ``vidpop train gbdt_retrieval`` / ``vidpop
train best`` read the same rows, target and split from here, so the served model is the one measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vidpop.data.schema import VideoDataset
from vidpop.data.splits import Split, random_split, temporal_split
from vidpop.errors import VidpopError
from vidpop.models.registry import build_model
from vidpop.recipes.common import describe_split, load_data, split_options
from vidpop.recipes.registry import register_evaluator, register_recipe
from vidpop.training import evaluation
from vidpop.training.ddp_entry import TrainJob

SPLITS = ("time", "random")


def smp_time_split(times: pd.Series, test_frac: float = 0.2, val_frac: float = 0.1) -> Split:
    """The latest ``test_frac`` of posts test, the ``val_frac`` before them validation (by time)."""
    n = len(times)
    n_test, n_val = round(n * test_frac), round(n * val_frac)
    cutoff = times.sort_values(kind="stable").iloc[n - n_test]
    return temporal_split(times, cutoff, val_frac=n_val / (n - n_test))


@dataclass
class PopularityTask:
    """The labelled rows of one dataset: the dataset, its target (log scale), the split and its kind."""

    ds: VideoDataset
    y: np.ndarray
    target: str
    split: Split
    kind: str
    notes: list[str] = field(default_factory=list)


def popularity_task(ds: VideoDataset, split: str | None = None, seed: int = 0) -> PopularityTask:
    v = ds.videos
    col = ds.meta.get("popularity_column")
    if col and col in v and v[col].notna().any():
        y_all, target = pd.to_numeric(v[col], errors="coerce").to_numpy(np.float64), str(col)
    elif "views" in v and v["views"].notna().any():
        y_all, target = (
            np.log1p(pd.to_numeric(v["views"], errors="coerce").to_numpy(np.float64).clip(min=0)),
            ("log1p_views"),
        )
    else:
        raise VidpopError(f"{ds.name}: no popularity column and no views to rank")
    ds = ds.subset(v["video_id"].to_numpy()[np.isfinite(y_all)].tolist())
    y = y_all[np.isfinite(y_all)]
    v = ds.videos.reset_index(drop=True)
    has_time = "published_at" in v and v["published_at"].notna().all()
    kind = split or ("time" if has_time else "random")
    if kind == "time":
        if not has_time:
            raise VidpopError(f"{ds.name} has no publication time on every row: use --split random")
        sp = smp_time_split(pd.to_datetime(v["published_at"], utc=True))
    elif kind == "random":
        sp = random_split(len(v), 0.2, 0.1, seed=seed)
    else:
        raise VidpopError(f"split must be one of {', '.join(SPLITS)}, got '{kind}'")
    notes = [f"{ds.name}: {len(v)} labelled rows, target {target}; split {kind} {sp.sizes()}"]
    return PopularityTask(ds, y, target, sp, kind, notes)


def recipe_record(data: str, task: PopularityTask, seed: int, limit: Any = None) -> dict[str, Any]:
    """What ``recipe.json`` says of the data: enough for ``vidpop evaluate`` and the serving context."""
    y_tr = task.y[task.split.train]
    return {
        "data": data,
        "seed": seed,
        "limit": limit,
        "split_kind": task.kind,
        "split": describe_split(task.split),
        "targets": [task.target],
        "target_scale": "log(1 + views)" if task.target == "log1p_views" else f"{task.target} (the data's scale)",
        "class_edges": np.quantile(y_tr, [0.2, 0.4, 0.6, 0.8]).tolist(),
        "notes": task.notes,
    }


def load_popularity(data: str, opts: dict[str, Any]) -> PopularityTask:
    return popularity_task(load_data(data, opts.get("limit"), int(opts.get("seed", 0))), opts.get("split"),
                           int(opts.get("seed", 0)))  # fmt: skip


@register_recipe("gbdt_retrieval")
def gbdt_recipe(model: str, data: str, config: dict[str, Any]) -> TrainJob:
    """The labelled rows, the leaderboard's split; fit on train, conformal offsets from validation."""
    config, opts = split_options(config)
    seed = int(opts.get("seed", 0))
    task = load_popularity(data, opts)
    m = build_model(model, {"seed": seed, "target_name": task.target, **config})
    X = _table(task)
    sp = task.split
    args = (X.take(sp.train), task.y[sp.train], X.take(sp.val), task.y[sp.val])
    desc = f"{data}: {len(sp.train)} train / {len(sp.val)} val rows, target {task.target}"
    return TrainJob(m, args, data=desc, recipe=recipe_record(data, task, seed, opts.get("limit")))


def _table(task: PopularityTask, progress: bool = True) -> Any:
    from vidpop.models.gbdt_retrieval import video_table

    return video_table(task.ds, progress=progress)


@register_evaluator("gbdt_retrieval")
def gbdt_evaluate(model: Any, recipe: dict[str, Any]) -> dict[str, Any]:
    task = load_popularity(recipe["data"], {**recipe, "split": recipe.get("split_kind")})
    X, test = _table(task, progress=False), task.split.test
    r = model.predict_interval(X.take(test), 0.95)
    y = task.y[test][:, None]
    rows = evaluation.regression(y, r["mean"], model.target_names_, r["lower"], r["upper"])
    mean = np.full_like(y, float(np.mean(task.y[task.split.train])))
    baseline = evaluation.regression(y, mean, model.target_names_)
    return {"metrics": rows, "baseline (train mean)": baseline, "split": recipe.get("split"), "notes": task.notes}
