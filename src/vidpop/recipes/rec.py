"""Every recommender: fitted on the training view of the long user split (the shared protocol), so
``vidpop evaluate`` scores it on the held-out futures of the test users."""

from __future__ import annotations

from typing import Any

from vidpop.data.schema import VideoDataset
from vidpop.errors import VidpopError
from vidpop.models.recommender import Recommender
from vidpop.recipes.common import load_data, split_kind, split_options
from vidpop.recipes.registry import register_for_class
from vidpop.training import evaluation
from vidpop.training.ddp_entry import TrainJob


def _split(data: str, opts: dict[str, Any]) -> tuple[VideoDataset, Any, Any]:
    from vidpop.training.rec_protocol import ProtocolConfig, make_user_split

    split_kind(opts, ("user",), default="user")  # the protocol holds out users' futures; no other split yet
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
    """Fitted on the training users (and the input part of the test users, who are saved as known users)."""
    from vidpop.features.item_features import attach_item_features
    from vidpop.training.rec_protocol import needed_item_features
    from vidpop.training.rec_tables import Row, build_row_model

    config, opts = split_options(config)
    ds, split, cfg = _split(data, opts)
    rec = build_row_model(Row(model, model, config), opts.get("epochs"), progress=True)
    attach_item_features(split.train, ds, needed_item_features(rec))
    rec.add_known_users(zip(split.test_user_ids, [q.history for q in split.queries], strict=True))
    recipe = {
        "data": data,
        "seed": cfg.seed,
        "split_kind": "user",
        "min_user_interactions": cfg.min_user_interactions,
        "max_test_users": cfg.max_test_users,
        "split": {k: v for k, v in split.info.items() if isinstance(v, int | float | str)},
    }
    desc = f"{data}: {split.train.n_users} users, {split.train.n_items} items (long user split)"
    return TrainJob(rec, (split.train,), data=desc, recipe=recipe)


def rec_evaluate(model: Any, recipe: dict[str, Any]) -> dict[str, Any]:
    _, split, cfg = _split(recipe["data"], {k: v for k, v in recipe.items() if k != "split"})
    return {"metrics": {"test users": evaluation.recommendation(model, split, cfg)}, "split": split.info}


register_for_class(Recommender, rec_recipe, rec_evaluate)
