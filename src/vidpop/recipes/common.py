"""What every recipe shares: recipe options, dataset loading, the named splits."""

from __future__ import annotations

from typing import Any

from vidpop.data.adapters.base import load_dataset as load_data  # noqa: F401  (the one loader)
from vidpop.data.schema import VideoDataset
from vidpop.data.splits import SPLIT_KINDS, Split, split_videos
from vidpop.errors import VidpopError

#: options a recipe reads from ``recipe.*`` overrides (anything else under ``recipe`` is refused)
RECIPE_OPTIONS = (
    "limit", "seed", "split", "covers", "covers_limit", "min_user_interactions", "max_test_users", "epochs",
    "progress", "horizon", "cutoff", "n_related", "same_category", "title", "target",
)  # fmt: skip


def split_options(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model config, recipe options): ``recipe.*`` keys are the recipe's, the rest the model's."""
    config = dict(config)
    opts = dict(config.pop("recipe", {}) or {})
    unknown = sorted(set(opts) - set(RECIPE_OPTIONS))
    if unknown:
        raise VidpopError(f"unknown recipe option(s) {unknown}; valid keys of 'recipe': {', '.join(RECIPE_OPTIONS)}")
    return config, opts


def with_seed(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """The model config with ``train.seed`` defaulting to the recipe's seed."""
    train = dict(config.get("train", {}) or {})
    train.setdefault("seed", seed)
    return {**config, "train": train}


def split_kind(opts: dict[str, Any], allowed: tuple[str, ...] = SPLIT_KINDS, default: str = "random") -> str:
    """The ``--split`` asked for, checked against what this model's data allows."""
    kind = str(opts.get("split") or default)
    if kind not in allowed:
        raise VidpopError(f"--split {kind} is not available for this model; use one of: {', '.join(allowed)}")
    return kind


def describe_split(sp: Split) -> str:
    kind = sp.info.get("kind", "?")
    what = {
        "random": "random 70/10/20",
        "random_grouped": "random 70/10/20, grouped",
        "time": "by publication time: latest 20% test, the 10% before it validation",
        "user": "70/10/20 by uploader (author_id)",
    }.get(kind, kind)
    return f"{what} {sp.sizes()}"


def dataset_split(ds: VideoDataset, opts: dict[str, Any]) -> Split:
    return split_videos(ds.videos, split_kind(opts), int(opts.get("seed", 0)))
