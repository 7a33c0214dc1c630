"""Variational product-of-experts (TikTok paper): every labelled row of one or several collections."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from vidpop.models.registry import build_model
from vidpop.recipes.common import describe_split, load_data, split_kind, split_options, with_seed
from vidpop.recipes.registry import register_evaluator, register_recipe
from vidpop.training import evaluation
from vidpop.training.ddp_entry import TrainJob


def _task(data: str, opts: dict[str, Any], progress: bool = True) -> Any:
    from vidpop.data.splits import split_videos
    from vidpop.experiments import poe as ex

    seed, kind = int(opts.get("seed", 0)), split_kind(opts)
    tasks = []
    for d in data.split(","):
        t = ex.prepare(load_data(d, opts.get("limit"), seed), "random", seed, progress=progress)
        # the named split on the labelled rows (prepare keeps only those)
        tasks.append(dataclasses.replace(t, split=split_videos(t.ds.videos, kind, seed)))
    return tasks[0] if len(tasks) == 1 else ex.stack_tasks(tasks)


@register_recipe("variational_poe")
def poe_recipe(model: str, data: str, config: dict[str, Any]) -> TrainJob:
    """Every labelled row of one or several (comma-separated) collections, 70/10/20 by ``--split``."""
    from vidpop.models.poe_inputs import social_features

    config, opts = split_options(config)
    seed = int(opts.get("seed", 0))
    task = _task(data, opts)
    sp = task.split
    first = task.y[sp.train, 0]
    edges = np.nanquantile(first, [0.2, 0.4, 0.6, 0.8]).tolist() if np.isfinite(first).any() else []
    recipe = {
        "data": data,
        "seed": seed,
        "limit": opts.get("limit"),
        "split_kind": split_kind(opts),
        "split": describe_split(sp),
        "targets": task.target_names,
        "target_scale": task.scale,
        "social_names": social_features(task.ds)[2],
        "class_edges": edges,
        "notes": task.notes,
    }
    m = build_model(model, with_seed(config, seed))
    args = (task.X.take(sp.train), task.y[sp.train], task.X.take(sp.val), task.y[sp.val])
    desc = f"{data}: {len(sp.train)} train / {len(sp.val)} val rows, targets {task.target_names}"
    return TrainJob(m, args, {"target_names": task.target_names}, data=desc, recipe=recipe)


@register_evaluator("variational_poe")
def poe_evaluate(model: Any, recipe: dict[str, Any]) -> dict[str, Any]:
    opts = {**recipe, "split": recipe.get("split_kind", "random")}
    task = _task(recipe["data"], opts)
    test, train = task.split.test, task.split.train
    r = model.predict_interval(task.X.take(test), 0.95)
    rows = evaluation.regression(task.y[test], r["mean"], model.target_names_, r["lower"], r["upper"])
    # the trivial baseline every number should beat: the training mean of each target
    mean = np.nanmean(task.y[train], axis=0, keepdims=True).repeat(len(test), axis=0)
    baseline = evaluation.regression(task.y[test], mean, model.target_names_)
    return {"metrics": rows, "baseline (train mean)": baseline, "split": recipe.get("split"), "notes": task.notes}
