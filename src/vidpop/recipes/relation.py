"""Relation network + multi-task regressor (the relation paper): the relation experiment's preset features
and temporal protocol (train before cutoff − H, test from the cutoff) at horizon ``recipe.horizon``."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from vidpop.models.config import merge_config
from vidpop.models.registry import build_model
from vidpop.recipes.common import split_kind, split_options, with_seed
from vidpop.recipes.registry import register_evaluator, register_recipe
from vidpop.training import evaluation
from vidpop.training.ddp_entry import TrainJob


def _prepared(data: str, opts: dict[str, Any]) -> tuple[Any, Any, int]:
    from vidpop.experiments.relation import load_dated, prepare, setup_for, title_embeddings

    split_kind(opts, ("time",), default="time")  # the paper's protocol is temporal by construction
    setup = setup_for(data, cutoff=opts.get("cutoff"))
    setup = dataclasses.replace(
        setup,
        n_related=int(opts.get("n_related", setup.n_related)),
        same_category=bool(opts.get("same_category", setup.same_category)),
    )
    if opts.get("title") and setup.features is not None:
        setup = dataclasses.replace(setup, features=dataclasses.replace(setup.features, title=opts["title"]))
    horizon = int(opts.get("horizon", setup.horizons[0]))
    ds = load_dated(data)
    emb = title_embeddings(ds, setup.features.title if setup.features else "none", progress=False)
    return setup, prepare(ds, setup, horizon, emb), horizon


@register_recipe("relation_mtl")
def relation_recipe(model: str, data: str, config: dict[str, Any]) -> TrainJob:
    """``relation_mtl`` on a staged dataset (e.g. ``bilibili_bangumi_series``); the overrides merge onto the
    dataset preset's model config (which itself starts from the model's defaults)."""
    config, opts = split_options(config)
    seed = int(opts.get("seed", 0))
    setup, prep, horizon = _prepared(data, opts)
    cfg = merge_config(setup.model, with_seed(config, seed), strict=True)
    m = build_model(model, cfg.to_dict() if hasattr(cfg, "to_dict") else dataclasses.asdict(cfg))
    s = prep.split
    recipe = {
        "data": data,
        "seed": seed,
        "split_kind": "time",
        "horizon": horizon,
        **{k: opts[k] for k in ("cutoff", "n_related", "same_category", "title") if k in opts},
        "split": f"temporal: train before cutoff - {horizon} d, test from {prep.split.info.get('cutoff')}",
    }
    desc = f"{data}: horizon {horizon} d, {len(s.train)} train / {len(s.val)} val titles"
    args = (prep.inputs(s.train), prep.y[s.train], prep.inputs(s.val), prep.y[s.val])
    return TrainJob(m, args, data=desc, recipe=recipe)


@register_evaluator("relation_mtl")
def relation_evaluate(model: Any, recipe: dict[str, Any]) -> dict[str, Any]:
    opts = {k: v for k, v in recipe.items() if k != "split"}
    setup, prep, horizon = _prepared(recipe["data"], opts)
    test, train = prep.split.test, prep.split.train
    pred = np.asarray(model.predict(prep.inputs(test))).reshape(len(test), -1)
    y = prep.y[test].reshape(len(test), -1)[:, : pred.shape[1]]
    names = [f"log1p_{setup.target}", f"log1p_{setup.aux}"][: pred.shape[1]]
    rows = evaluation.regression(y, pred, names)
    mean = np.nanmean(prep.y[train].reshape(len(train), -1)[:, : pred.shape[1]], axis=0, keepdims=True)
    baseline = evaluation.regression(y, mean.repeat(len(test), axis=0), names)
    return {"metrics": rows, "baseline (train mean)": baseline,
            "split": f"horizon {horizon} d, {len(test)} test titles"}  # fmt: skip
