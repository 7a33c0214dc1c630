"""The fallback recipe of a popularity regressor that reads a VideoDataset itself (``consumes = "dataset"``)
and has no recipe of its own, so that a new model is one module and one registration (issue 16 §6):
log1p of the dataset's popularity column (``meta["popularity_column"]``, else ``views``; ``recipe.target``
names another) on the labelled rows, the named 70/10/20 ``--split``; ``vidpop evaluate`` scores the test
part with :func:`vidpop.training.evaluation.evaluate_model`. The model's ``prepare_inputs`` must work
before ``fit`` (it builds the training input here)."""

from __future__ import annotations

from typing import Any

import numpy as np

from vidpop.data.schema import VideoDataset
from vidpop.data.splits import Split
from vidpop.errors import VidpopError
from vidpop.models.base import VidpopModel
from vidpop.models.registry import build_model, get_model_class
from vidpop.recipes.common import dataset_split, describe_split, load_data, split_kind, split_options, with_seed
from vidpop.recipes.registry import register_for_class
from vidpop.training import evaluation
from vidpop.training.ddp_entry import TrainJob


def _labelled(data: str, opts: dict[str, Any]) -> tuple[VideoDataset, np.ndarray, str, Split]:
    """The labelled rows, their log1p target, the target's column and the named split of those rows."""
    ds = load_data(data, opts.get("limit"), int(opts.get("seed", 0)))
    col = str(opts.get("target") or ds.meta.get("popularity_column") or "views")
    values = ds.videos[col].to_numpy("float64") if col in ds.videos else np.full(len(ds.videos), np.nan)
    keep = np.isfinite(values) & (values >= 0)
    if not keep.any():
        raise VidpopError(f"{ds.name} has no non-negative '{col}' values to learn; name a column with recipe.target")
    ds = ds.subset(ds.videos["video_id"].to_numpy()[keep])
    return ds, np.log1p(values[keep]), col, dataset_split(ds, opts)


def dataset_recipe(model: str, data: str, config: dict[str, Any]) -> TrainJob:
    config, opts = split_options(config)
    seed = int(opts.get("seed", 0))
    if hasattr(get_model_class(model).Config(), "train"):  # a torch model: the recipe's seed seeds it
        config = with_seed(config, seed)
    m = build_model(model, config)
    ds, y, col, sp = _labelled(data, opts)
    recipe = {"data": data, "seed": seed, "limit": opts.get("limit"), "split_kind": split_kind(opts),
              "split": describe_split(sp), "target": col}  # fmt: skip
    desc = f"{data}: {len(sp.train)} train rows, target log1p({col})"
    return TrainJob(m, (m.prepare_inputs(ds, sp.train), y[sp.train]), data=desc, recipe=recipe)


def dataset_evaluate(model: Any, recipe: dict[str, Any]) -> dict[str, Any]:
    opts = {k: recipe.get(k) for k in ("limit", "seed", "target")} | {"split": recipe.get("split_kind", "random")}
    ds, y, col, sp = _labelled(recipe["data"], opts)
    name = f"log1p_{col}"
    rows = evaluation.evaluate_model(model, ds, sp.test, y[sp.test], [name])
    # the trivial baseline every number should beat: the training mean
    baseline = evaluation.regression(y[sp.test], np.full(len(sp.test), y[sp.train].mean()), [name])
    return {"metrics": rows, "baseline (train mean)": baseline, "split": recipe.get("split")}


def _reads_a_dataset(cls: type) -> bool:
    return getattr(cls, "consumes", "") == "dataset" and getattr(cls, "task", "") == "regression"


register_for_class(VidpopModel, dataset_recipe, dataset_evaluate, when=_reads_a_dataset)
