"""Every recommender: fitted on the training view of the long user split (the shared protocol), so
``vidpop evaluate`` scores it on the held-out futures of the test users."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from vidpop.data.schema import VideoDataset
from vidpop.errors import VidpopError
from vidpop.models.recommender import Recommender
from vidpop.models.registry import build_model
from vidpop.recipes.common import load_data, split_kind, split_options
from vidpop.recipes.registry import register_for_class
from vidpop.training import evaluation
from vidpop.training.ddp_entry import TrainJob


@dataclass
class Row:
    """One row of a recommendation table: its label, the registered model (None: not available), config
    overrides (dotted keys set nested configs) and a note shown when it is not available."""

    label: str
    model: str | None  # None: not available
    overrides: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def set_option(cfg: Any, key: str, value: Any) -> None:
    """Set ``key`` on a config; a dotted key (``train.lr``) sets a field of a nested config and keeps
    that config's other (model-specific) defaults."""
    head, _, rest = key.partition(".")
    if not hasattr(cfg, head):
        raise VidpopError(f"{type(cfg).__name__} has no option '{head}'")
    if rest:
        part = getattr(cfg, head)
        set_option(part, rest, value)
    else:
        setattr(cfg, head, value)


def build_row_model(row: Row, epochs: int | None = None, progress: bool = False) -> Recommender:
    """The row's model; ``epochs`` caps training epochs (baselines' ``epochs``/``iterations`` or the
    ``train`` TrainConfig of the torch models) to keep a table run short on a small CPU."""
    assert row.model is not None
    flat = {k: v for k, v in row.overrides.items() if "." not in k}
    model = build_model(row.model, **flat)
    cfg = model.config
    for key, value in row.overrides.items():
        if "." in key:
            set_option(cfg, key, value)
    for part in (cfg, *(getattr(cfg, f.name) for f in dataclasses.fields(cfg))):
        if dataclasses.is_dataclass(part) and hasattr(part, "progress"):
            part.progress = progress  # nested configs too (e.g. SCA's LFM)
    if epochs is not None:
        if hasattr(cfg, "epochs"):
            cfg.epochs = epochs
        elif dataclasses.is_dataclass(getattr(cfg, "train", None)):
            cfg.train = dataclasses.replace(cfg.train, epochs=epochs, progress=progress)
    return model  # type: ignore[return-value]


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
