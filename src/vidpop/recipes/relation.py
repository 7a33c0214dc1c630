"""Relation network + multi-task regressor (the relation paper): the dataset presets (features, targets)
and the temporal protocol (train before cutoff − H, test from the cutoff) at horizon ``recipe.horizon``.

How the model is fed lives here (:class:`RelationSetup`, :func:`prepare`); the protocol and what is
known on a title's prediction date are described in :mod:`vidpop.experiments.relation`, which runs
the ablation tables on top of it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vidpop.data.adapters.base import load_dataset
from vidpop.data.schema import VideoDataset
from vidpop.data.splits import Split, temporal_split
from vidpop.errors import NoLabelledDataError, VidpopError
from vidpop.models.config import merge_config
from vidpop.models.lightgbm_baseline import LightGBMConfig
from vidpop.models.registry import build_model
from vidpop.models.relation_features import (
    DATASET_PRESETS,
    WideFeatureBuilder,
    WideFeatureConfig,
    _ns,
    _shift,
    relation_inputs,
    select_related,
    trailing_level,
)
from vidpop.models.relation_mtl import RelationMTLConfig
from vidpop.recipes.common import split_kind, split_options, with_seed
from vidpop.recipes.registry import register_evaluator, register_recipe
from vidpop.training import evaluation
from vidpop.training.ddp_entry import TrainJob


@dataclass
class RelationSetup:
    """Everything an ablation run needs besides the data."""

    dataset: str = "bilibili_bangumi_series"
    horizons: tuple[int, ...] = (7, 180, 360)
    #: test titles are those released at/after the cutoff; default: the 90 % quantile of release dates (month start)
    cutoff: str | None = None
    n_related: int = 3
    same_category: bool = False
    features: WideFeatureConfig | None = None
    model: RelationMTLConfig = field(default_factory=RelationMTLConfig)
    lightgbm: LightGBMConfig = field(default_factory=LightGBMConfig)
    target: str = "views"
    aux: str = "follows"
    #: a 0/1 column: only rows with 1 are labelled (train/test); the others still serve as competitors
    label_filter: str = ""
    #: models learn log target minus the mean log target of the titles known within this many days
    #: before the prediction date (the market level; 0 = off). Leak-free: only earlier, known labels
    level_window: int = 0


def setup_for(dataset: str, **overrides: Any) -> RelationSetup:
    """The dataset's preset (feature columns, auxiliary target) with ``overrides`` applied."""
    preset = DATASET_PRESETS.get(dataset, {})
    feats = WideFeatureConfig(**preset.get("features", {}))
    extra = {k: preset[k] for k in ("target", "aux", "label_filter", "cutoff") if k in preset}
    overrides = {k: v for k, v in overrides.items() if not (k == "cutoff" and v is None)}
    base = RelationSetup(dataset=dataset, features=feats, **extra)
    return dataclasses.replace(base, **overrides)


def load_dated(dataset: str) -> VideoDataset:
    """The adapter's dataset restricted to titles with a release date (the only ones a temporal split uses)."""
    ds = load_dataset(dataset)
    dated = ds.videos["published_at"].notna()
    if not dated.any():
        raise NoLabelledDataError(f"{dataset}: no title has a release date; the temporal protocol needs one")
    return ds.subset(ds.videos.loc[dated, "video_id"].tolist())


def default_cutoff(times: pd.Series, quantile: float = 0.9) -> pd.Timestamp:
    t = pd.to_datetime(times, utc=True).dropna()
    q = t.quantile(quantile)
    return pd.Timestamp(year=q.year, month=q.month, day=1, tz="UTC")


def title_embeddings(ds: VideoDataset, mode: str, progress: bool = True) -> np.ndarray | None:
    """MiniLM title vectors aligned to ``ds.videos`` when the features ask for them (cached in the store)."""
    if mode != "minilm":
        return None
    from vidpop.features.extract import dataset_features

    values, _present = dataset_features(ds, "title_minilm", progress=progress)
    return values


@dataclass
class Prepared:
    """Features, targets, split and competitors of one horizon."""

    split: Split
    features: np.ndarray  # standardised wide features of every row
    y: np.ndarray  # (n, 2): log1p(target), log1p(aux)
    related: np.ndarray  # (n, n_related) positions, -1 = padding
    feature_names: list[str]
    builder: WideFeatureBuilder
    #: (n, 2) per-row offset subtracted from y for training and added back to predictions (0 = none)
    offset: np.ndarray | None = None

    def inputs(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        return relation_inputs(self.features, self.related[rows], rows)


def prepare(ds: VideoDataset, setup: RelationSetup, horizon: int, title_emb: np.ndarray | None = None) -> Prepared:
    v = ds.videos
    for col in (setup.target, setup.aux):
        if col not in v:
            raise VidpopError(f"{ds.name} has no '{col}' column")
    y = np.stack([np.log1p(v[setup.target].to_numpy(np.float64)), np.log1p(v[setup.aux].to_numpy(np.float64))], axis=1)
    cutoff = pd.Timestamp(setup.cutoff, tz="UTC") if setup.cutoff else default_cutoff(v["published_at"])
    labelled = np.isfinite(y[:, 0])
    if setup.label_filter:
        if setup.label_filter not in v:
            raise VidpopError(f"{ds.name} has no '{setup.label_filter}' column to select labelled rows")
        labelled &= v[setup.label_filter].to_numpy(np.float64) == 1
    # split the labelled rows only (the validation part = the latest 10 % of labelled training titles) ...
    split = temporal_split(v["published_at"].where(labelled), cutoff, horizon)
    # ... while every dated title, labelled or not, may be a competitor of a later one
    pool = np.flatnonzero(v["published_at"].notna().to_numpy())
    if len(split.train) < 20 or len(split.test) == 0:
        raise NoLabelledDataError(
            f"{ds.name}, horizon {horizon} d, cutoff {cutoff:%Y-%m-%d}: {len(split.train)} labelled training and "
            f"{len(split.test)} test titles; too few for this horizon"
        )
    builder = WideFeatureBuilder(dataclasses.replace(setup.features or WideFeatureConfig(), horizon_days=horizon))
    tr = split.train
    emb = (lambda rows: None) if title_emb is None else (lambda rows: title_emb[rows])
    history = (v, np.where(labelled, y[:, 0], np.nan))  # each row reads only what was known on its date
    builder.fit_transform(v.iloc[tr], y[tr, 0], emb(tr), history=history)
    feats = builder.transform(v, emb(np.arange(len(v))))
    cats = v["category"] if setup.same_category else None
    related = select_related(v["published_at"], np.arange(len(v)), pool, setup.n_related, cats)
    split.info.update(cutoff=str(cutoff), n_pool=len(pool))
    offset = np.zeros_like(y)
    if setup.level_window > 0:
        query = _shift(_ns(v["published_at"]), -horizon)
        known = _shift(_ns(v["published_at"]), builder.config.label_delay_days)
        for j in range(2):
            lvl = trailing_level(query, known, np.where(labelled, y[:, j], np.nan), setup.level_window)
            offset[:, j] = np.where(np.isfinite(lvl), lvl, np.nanmean(y[tr, j]))
    return Prepared(split, feats, y, related, builder.feature_names_, builder, offset)


def _prepared(data: str, opts: dict[str, Any]) -> tuple[RelationSetup, Prepared, int]:
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
