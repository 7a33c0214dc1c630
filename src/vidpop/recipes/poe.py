"""Variational product-of-experts (TikTok paper): every labelled row of one or several collections.

How the PoE is fed lives here (:class:`PoETask`, :func:`prepare`, :func:`stack_tasks`, the 70/10/20
:func:`make_split`); ``vidpop.experiments.poe`` builds its tables on top of it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vidpop.data.schema import VideoDataset
from vidpop.data.splits import Split, random_split, split_videos
from vidpop.errors import NoLabelledDataError, VidpopError
from vidpop.models.poe_inputs import PoEInputs, build_poe_inputs, concat_inputs, poe_targets, social_features
from vidpop.models.registry import build_model
from vidpop.recipes.common import describe_split, load_data, split_kind, split_options, with_seed
from vidpop.recipes.registry import register_evaluator, register_recipe
from vidpop.training import evaluation
from vidpop.training.ddp_entry import TrainJob

SPLITS = ("random", "time")


@dataclass
class PoETask:
    """A labelled collection ready for the model: inputs, targets and the split."""

    ds: VideoDataset
    X: PoEInputs
    y: np.ndarray
    target_names: list[str]
    scale: str
    split: Split
    notes: list[str] = field(default_factory=list)


def labelled(ds: VideoDataset) -> VideoDataset:
    """The rows with at least one observed target (SMP: its 4,000 'train' posts)."""
    y, _, _ = poe_targets(ds)
    keep = np.isfinite(y.reshape(len(y), -1)).any(axis=1)
    if not keep.any():
        raise NoLabelledDataError(f"{ds.name}: no labelled rows")
    return ds.subset(ds.videos["video_id"].to_numpy()[keep])


def make_split(ds: VideoDataset, kind: str = "random", seed: int = 0) -> Split:
    """70/10/20 train/val/test: seeded random (grouped by ``group`` if present) or by ``published_at``."""
    n = len(ds.videos)
    if kind == "random":
        groups = ds.videos["group"].astype(str).to_numpy() if "group" in ds.videos else None
        return random_split(n, 0.2, 0.1, seed=seed, groups=groups)
    if kind != "time":
        raise VidpopError(f"split must be one of {SPLITS}, got '{kind}'")
    if "published_at" not in ds.videos or ds.videos["published_at"].isna().all():
        raise VidpopError(f"{ds.name} has no published_at: use --split random")
    order = np.argsort(ds.videos["published_at"].to_numpy(), kind="stable")
    n_test, n_val = round(n * 0.2), round(n * 0.1)
    cut = ds.videos["published_at"].iloc[order[n - n_test]]
    info = {"kind": "time", "test_from": str(cut)}
    return Split(order[: n - n_test - n_val], order[n - n_test - n_val : n - n_test], order[n - n_test :], info)


def prepare(ds: VideoDataset, split: str = "random", seed: int = 0, progress: bool = True) -> PoETask:
    ds = labelled(ds)
    X = build_poe_inputs(ds, progress=progress)
    y, names, scale = poe_targets(ds)
    sp = make_split(ds, split, seed)
    notes = [f"{ds.name}: {len(ds.videos)} labelled rows; split {sp.info} {sp.sizes()}"]
    notes.append("experts with inputs: " + ", ".join(f"{m} ({X.masks[m].mean():.0%})" for m in X.present_modalities()))
    notes.append(f"targets {names}: {scale}")
    notes.extend(ds.meta.get("notes", [])[:2])
    return PoETask(ds, X, y.reshape(len(y), -1), names, scale, sp, notes)


def stack_tasks(tasks: list[PoETask]) -> PoETask:
    """Several labelled collections as one task: inputs stacked (modalities a collection lacks are masked),
    one target column per (collection, target), NaN for the other collections' rows. The split is the
    union of the per-collection splits."""
    names = [f"{t.ds.name}:{n}" for t in tasks for n in t.target_names]
    y = np.full((sum(len(t.y) for t in tasks), len(names)), np.nan)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    row = col = 0
    for t in tasks:
        y[row : row + len(t.y), col : col + t.y.shape[1]] = t.y
        for k in parts:
            parts[k].append(getattr(t.split, k) + row)
        row, col = row + len(t.y), col + t.y.shape[1]
    sp = Split(*(np.concatenate(parts[k]) for k in ("train", "val", "test")), info={"kind": "stacked"})
    notes = [n for t in tasks for n in t.notes[:3]]
    return PoETask(
        tasks[0].ds, concat_inputs([t.X for t in tasks]), y, names, "; ".join(t.scale for t in tasks), sp, notes
    )


def _task(data: str, opts: dict[str, Any], progress: bool = True) -> Any:
    seed, kind = int(opts.get("seed", 0)), split_kind(opts)
    tasks = []
    for d in data.split(","):
        t = prepare(load_data(d, opts.get("limit"), seed), "random", seed, progress=progress)
        # the named split on the labelled rows (prepare keeps only those)
        tasks.append(dataclasses.replace(t, split=split_videos(t.ds.videos, kind, seed)))
    return tasks[0] if len(tasks) == 1 else stack_tasks(tasks)


@register_recipe("variational_poe")
def poe_recipe(model: str, data: str, config: dict[str, Any]) -> TrainJob:
    """Every labelled row of one or several (comma-separated) collections, 70/10/20 by ``--split``."""
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
