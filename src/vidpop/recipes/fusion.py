"""Cover + title late fusion (the Bilibili/fusion paper): ordinal popularity classes of one collection."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vidpop.data.schema import VideoDataset
from vidpop.data.splits import Split
from vidpop.models.registry import build_model
from vidpop.recipes.common import dataset_split, describe_split, load_data, split_kind, split_options, with_seed
from vidpop.recipes.registry import register_evaluator, register_recipe
from vidpop.training import evaluation
from vidpop.training.ddp_entry import TrainJob


@dataclass
class Parts:
    """A dataset cut into train / validation / test datasets."""

    train: VideoDataset
    val: VideoDataset
    test: VideoDataset
    split: Split
    notes: list[str] = field(default_factory=list)


def parts(data: str, opts: dict[str, Any]) -> Parts:
    """Train / validation / test datasets of the named split."""
    ds = load_data(data, opts.get("limit"), int(opts.get("seed", 0)))
    sp = dataset_split(ds, opts)
    ids = ds.videos["video_id"].to_numpy()
    note = f"split {describe_split(sp)} seed {int(opts.get('seed', 0))}"
    return Parts(ds.subset(ids[sp.train]), ds.subset(ids[sp.val]), ds.subset(ids[sp.test]), sp, [note])


@register_recipe("cover_title_fusion")
def fusion_recipe(model: str, data: str, config: dict[str, Any]) -> TrainJob:
    """Cover + title late fusion on one collection (70/10/20 by ``--split``)."""
    config, opts = split_options(config)
    seed = int(opts.get("seed", 0))
    p = parts(data, opts)
    recipe = {"data": data, "seed": seed, "limit": opts.get("limit"), "split_kind": split_kind(opts),
              "split": p.notes[0]}  # fmt: skip
    m = build_model(model, with_seed(config, seed))
    return TrainJob(m, (p.train,), {"val": p.val}, data=f"{data}: {p.notes[0]}", recipe=recipe)


def fusion_scores(model: Any, ds: Any) -> dict[str, float]:
    """The ordinal set on ``ds`` with labels from the model's train-fitted scorer."""
    return evaluation.ordinal(model.labels(ds), model.predict(ds))


@register_evaluator("cover_title_fusion")
def fusion_evaluate(model: Any, recipe: dict[str, Any]) -> dict[str, Any]:
    p = parts(recipe["data"], {**recipe, "split": recipe.get("split_kind", "random")})
    return {"metrics": {"test": fusion_scores(model, p.test)}, "split": recipe.get("split")}
