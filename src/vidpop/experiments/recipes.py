"""Product recipes: how ``vidpop train <model> --data <d>`` turns a dataset into a fitted model, and
how ``vidpop evaluate <model-dir>`` rebuilds the *same* test split and scores the saved model.

Every recipe registers with :func:`vidpop.training.ddp_entry.register_recipe`, so the same code trains
in one process or under ``torchrun`` (``vidpop train ... --nproc N``). What a recipe was given (data,
seed, row limit) is saved as ``recipe.json`` in the model folder; the evaluator of the model reads it.

Options that belong to the recipe rather than the model travel as ``recipe.<key>`` config overrides:
``recipe.limit`` (a seeded sample of that many videos), ``recipe.seed``, ``recipe.covers`` and
``recipe.covers_limit`` (attention: the cover collection and its sample size),
``recipe.min_user_interactions`` and ``recipe.max_test_users`` (recommenders).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vidpop.data.schema import VideoDataset
from vidpop.errors import VidpopError
from vidpop.models.registry import build_model, get_model_class, model_names
from vidpop.training import metrics
from vidpop.training.ddp_entry import TrainJob, register_recipe

Evaluator = Callable[[Any, dict[str, Any]], dict[str, Any]]
_EVALUATORS: dict[str, Evaluator] = {}

#: the class names of the popularity class derived from a regressor's first target (train quintiles)
CLASS_NAMES: tuple[str, ...] = ("very low", "low", "medium", "high", "very high")


def register_evaluator(*models: str) -> Callable[[Evaluator], Evaluator]:
    def deco(fn: Evaluator) -> Evaluator:
        for m in models:
            _EVALUATORS[m] = fn
        return fn

    return deco


def split_options(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model config, recipe options): ``recipe.*`` keys are the recipe's, the rest the model's."""
    config = dict(config)
    return config, dict(config.pop("recipe", {}) or {})


def load_data(name_or_dir: str, limit: int | None = None, seed: int = 0) -> VideoDataset:
    """An imported dataset folder or an adapter name; ``limit`` keeps a seeded sample of that many videos."""
    from vidpop.experiments.poe import load_dataset

    return load_dataset(name_or_dir).sample(limit, seed)


def _with_seed(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """The model config with ``train.seed`` defaulting to the recipe's seed."""
    train = dict(config.get("train", {}) or {})
    train.setdefault("seed", seed)
    return {**config, "train": train}


# ------------------------------------------------------------------------------------------ PoE
def _poe_task(data: str, opts: dict[str, Any], progress: bool = True) -> Any:
    from vidpop.experiments import poe as ex

    seed = int(opts.get("seed", 0))
    limit = opts.get("limit")
    tasks = [ex.prepare(load_data(d, limit, seed), "random", seed, progress=progress) for d in data.split(",")]
    return tasks[0] if len(tasks) == 1 else ex.stack_tasks(tasks)


@register_recipe("variational_poe")
def poe_recipe(model: str, data: str, config: dict[str, Any]) -> TrainJob:
    """Every labelled row of one or several (comma-separated) collections, 70/10/20 random split."""
    from vidpop.models.poe_inputs import social_features

    config, opts = split_options(config)
    seed = int(opts.get("seed", 0))
    task = _poe_task(data, opts)
    sp = task.split
    first = task.y[sp.train, 0]
    edges = np.nanquantile(first, [0.2, 0.4, 0.6, 0.8]).tolist() if np.isfinite(first).any() else []
    recipe = {
        "data": data,
        "seed": seed,
        "limit": opts.get("limit"),
        "split": "random 70/10/20 (grouped where the data has groups)",
        "targets": task.target_names,
        "target_scale": task.scale,
        "social_names": social_features(task.ds)[2],
        "class_edges": edges,
        "notes": task.notes,
    }
    m = build_model(model, _with_seed(config, seed))
    args = (task.X.take(sp.train), task.y[sp.train], task.X.take(sp.val), task.y[sp.val])
    desc = f"{data}: {len(sp.train)} train / {len(sp.val)} val rows, targets {task.target_names}"
    return TrainJob(m, args, {"target_names": task.target_names}, data=desc, recipe=recipe)


@register_evaluator("variational_poe")
def poe_evaluate(model: Any, recipe: dict[str, Any]) -> dict[str, Any]:
    task = _poe_task(recipe["data"], recipe)
    test = task.split.test
    r = model.predict_interval(task.X.take(test), 0.95)
    rows = {}
    for j, name in enumerate(model.target_names_):
        y = task.y[test, j]
        ok = np.isfinite(y)
        if not ok.any():
            continue
        rows[name] = {
            "MAE": metrics.mae(y[ok], r["mean"][ok, j]),
            "R2": metrics.r2(y[ok], r["mean"][ok, j]),
            "Spearman": metrics.spearman(y[ok], r["mean"][ok, j]),
            "coverage95": metrics.interval_coverage(y[ok], r["lower"][ok, j], r["upper"][ok, j]),
            "width95": metrics.interval_width(r["lower"][ok, j], r["upper"][ok, j]),
            "n_test": int(ok.sum()),
        }
    return {"metrics": rows, "split": recipe.get("split"), "notes": task.notes}


# ------------------------------------------------------------------------------------------ fusion
def _fusion_parts(data: str, opts: dict[str, Any]) -> Any:
    from vidpop.experiments.fusion import split_dataset

    seed = int(opts.get("seed", 0))
    return split_dataset(load_data(data, opts.get("limit"), seed), seed)


@register_recipe("cover_title_fusion")
def fusion_recipe(model: str, data: str, config: dict[str, Any]) -> TrainJob:
    """Cover + title late fusion on one collection (70/10/20, grouped where the data has groups)."""
    config, opts = split_options(config)
    seed = int(opts.get("seed", 0))
    parts = _fusion_parts(data, opts)
    recipe = {"data": data, "seed": seed, "limit": opts.get("limit"), "split": parts.notes[0]}
    m = build_model(model, _with_seed(config, seed))
    return TrainJob(m, (parts.train,), {"val": parts.val}, data=f"{data}: {parts.notes[0]}", recipe=recipe)


@register_evaluator("cover_title_fusion")
def fusion_evaluate(model: Any, recipe: dict[str, Any]) -> dict[str, Any]:
    parts = _fusion_parts(recipe["data"], recipe)
    return {"metrics": {"test": model.evaluate(parts.test)}, "split": recipe.get("split")}


# ------------------------------------------------------------------------------------------ attention
def _attention_tasks(data: str, opts: dict[str, Any]) -> tuple[Any, Any]:
    from vidpop.explain import attention_bench as bench

    seed = int(opts.get("seed", 0))
    head = bench.headline_task(load_data(data, opts.get("limit"), seed))
    cover_data = load_data(opts.get("covers", "spotify_fresh_finds_covers_2022"), opts.get("covers_limit"), seed)
    covers = bench.cover_task(cover_data)
    return head, covers


@register_recipe("attention_explain")
def attention_recipe(model: str, data: str, config: dict[str, Any]) -> TrainJob:
    """Frame + headline attention model: headlines of ``data`` (median split of its popularity) and the
    covers of ``recipe.covers`` (one frame + title each), as in ``vidpop attention train``."""
    from vidpop.explain import attention_bench as bench

    config, opts = split_options(config)
    seed = int(opts.get("seed", 0))
    head, covers = _attention_tasks(data, opts)
    Xtr, ytr, Xva, yva, _ = bench.explainer_training_data(head, covers, seed)
    config = {"modalities": "both", **_with_seed(config, seed)}
    recipe = {
        "data": data,
        "covers": opts.get("covers", "spotify_fresh_finds_covers_2022"),
        "seed": seed,
        "limit": opts.get("limit"),
        "split": "random 70/10/20 per collection, median split fitted on each training part",
        "trained_on": [f"{data} (headlines, no frames)", f"{opts.get('covers', 'spotify')} (cover = one frame)"],
    }
    m = build_model(model, config)
    return TrainJob(m, (Xtr, ytr, Xva, yva), data=f"{data} headlines + covers: {len(ytr)} train rows", recipe=recipe)


@register_evaluator("attention_explain")
def attention_evaluate(model: Any, recipe: dict[str, Any]) -> dict[str, Any]:
    from vidpop.explain import attention_bench as bench

    head, covers = _attention_tasks(recipe["data"], recipe)
    *_, report = bench.explainer_training_data(head, covers, int(recipe.get("seed", 0)))
    return {"metrics": bench.explainer_scores(model, report), "split": recipe.get("split")}


# ------------------------------------------------------------------------------------------ recommenders
def _rec_split(data: str, opts: dict[str, Any]) -> tuple[VideoDataset, Any, Any]:
    from vidpop.training.rec_protocol import ProtocolConfig, make_user_split

    ds = load_data(data)
    if ds.interactions.empty:
        raise VidpopError(f"{data} has no interactions: recommenders need user-video interactions")
    cfg = ProtocolConfig(
        mode="long",
        seed=int(opts.get("seed", 0)),
        min_user_interactions=int(opts.get("min_user_interactions", 5)),
        max_test_users=opts.get("max_test_users"),
        progress=bool(opts.get("progress", True)),
    )
    return ds, make_user_split(ds, cfg), cfg


def rec_recipe(model: str, data: str, config: dict[str, Any]) -> TrainJob:
    """Any recommender: fitted on the training users (and the input part of the test users) of the long
    user split, so ``vidpop evaluate`` scores it on the held-out futures of the test users."""
    from vidpop.data.sequences import attach_item_features
    from vidpop.training.rec_protocol import needed_item_features
    from vidpop.training.rec_tables import Row, build_row_model

    config, opts = split_options(config)
    ds, split, cfg = _rec_split(data, opts)
    rec = build_row_model(Row(model, model, config), opts.get("epochs"), progress=True)
    attach_item_features(split.train, ds, needed_item_features(rec))
    recipe = {
        "data": data,
        "seed": cfg.seed,
        "min_user_interactions": cfg.min_user_interactions,
        "max_test_users": cfg.max_test_users,
        "split": {k: v for k, v in split.info.items() if isinstance(v, int | float | str)},
    }

    def after_save(fitted: Any, out: Path) -> None:
        save_rec_extras(split, ds, out)

    desc = f"{data}: {split.train.n_users} users, {split.train.n_items} items (long user split)"
    return TrainJob(rec, (split.train,), data=desc, recipe=recipe, after_save=after_save)


def save_rec_extras(split: Any, ds: VideoDataset, out: Path) -> None:
    """``items.parquet`` (id, title, text, cover path per item index) and ``users.parquet`` (every known
    user's watched ids, oldest first): what serving needs to turn ids into indices and back."""
    from vidpop.data.sequences import item_texts

    train = split.train
    items = train.items.reset_index(drop=True)
    titles = items["title"].fillna("").astype(str) if "title" in items else pd.Series([""] * train.n_items)
    covers = items["cover_path"] if "cover_path" in items else pd.Series([None] * train.n_items)
    pd.DataFrame(
        {
            "video_id": np.asarray(train.item_ids, dtype=str),
            "title": titles.to_numpy(),
            "text": item_texts(items),
            "cover_path": [str(c) if isinstance(c, str) and c else None for c in covers],
        }
    ).to_parquet(out / "items.parquet", index=False)
    ids = np.asarray(train.item_ids, dtype=str)
    users = [(str(u), ids[s].tolist()) for u, s in zip(train.user_ids, train.sequences, strict=True)]
    users += [(str(u), ids[q.history].tolist()) for u, q in zip(split.test_user_ids, split.queries, strict=True)]
    pd.DataFrame(users, columns=["user_id", "history"]).drop_duplicates("user_id").to_parquet(
        out / "users.parquet", index=False
    )


def rec_evaluate(model: Any, recipe: dict[str, Any]) -> dict[str, Any]:
    from vidpop.training.rec_protocol import evaluate

    _, split, cfg = _rec_split(recipe["data"], recipe)
    return {"metrics": {"test users": evaluate(model, split, cfg)}, "split": split.info}


def _register_recommenders() -> None:
    from vidpop.models.recommender import Recommender

    for name in model_names():
        if issubclass(get_model_class(name), Recommender):
            register_recipe(name)(rec_recipe)
            _EVALUATORS[name] = rec_evaluate


_register_recommenders()


# ------------------------------------------------------------------------------------------ relation
@register_recipe("relation_mtl")
def relation_recipe(model: str, data: str, config: dict[str, Any]) -> TrainJob:
    """The relation experiment's preset features and temporal split at its first horizon."""
    from vidpop.training.ddp_entry import relation_recipe as base

    config, _ = split_options(config)
    job = base(model, data, config)
    job.recipe = {"data": data, "split": "temporal, first horizon of the dataset's preset"}
    return job


@register_evaluator("relation_mtl")
def relation_evaluate(model: Any, recipe: dict[str, Any]) -> dict[str, Any]:
    from vidpop.experiments.relation import load_dated, prepare, setup_for, title_embeddings

    setup = setup_for(recipe["data"])
    ds = load_dated(recipe["data"])
    emb = title_embeddings(ds, setup.features.title if setup.features else "none", progress=False)
    prep = prepare(ds, setup, setup.horizons[0], emb)
    test = prep.split.test
    pred = np.asarray(model.predict(prep.inputs(test))).reshape(len(test), -1)
    y = prep.y[test].reshape(len(test), -1)
    n_targets = min(y.shape[1], pred.shape[1])
    rows = {f"target {j}": metrics.regression_report(y[:, j], pred[:, j]) for j in range(n_targets)}
    return {"metrics": rows, "split": f"horizon {setup.horizons[0]} d, {len(test)} test titles"}


# ------------------------------------------------------------------------------------------ evaluate
def evaluate_model_dir(model_dir: str | Path, data: str | None = None) -> dict[str, Any]:
    """Load a model folder written by ``vidpop train`` and score it on its recipe's test split
    (``data`` overrides the dataset it was trained on)."""
    from vidpop.models.base import load_model

    path = Path(model_dir)
    recipe_path = path / "recipe.json"
    if not recipe_path.exists():
        raise VidpopError(f"{path} has no recipe.json: evaluate models written by `vidpop train`")
    recipe = json.loads(recipe_path.read_text())
    if data:
        recipe["data"] = data
    model = load_model(path)
    fn = _EVALUATORS.get(model.model_name)
    if fn is None:
        raise VidpopError(f"no evaluator for '{model.model_name}'")
    return {"model": model.model_name, "data": recipe["data"], **fn(model, recipe)}
