"""Experiments of the cover + title fusion model: one training run, the fusion-weight sweep, the
backbone swap table and the title-only tables. The CLI (``vidpop fusion ...``) only formats them.

Every table on ``spotify_fresh_finds_covers_2022`` is labelled "music artwork, not video covers".
Splits: grouped by the adapter's ``group`` column where there is one (Spotify tracks repeat across
playlists), random otherwise; 70/10/20 train/val/test, results averaged over ``seeds`` splits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from vidpop.data.adapters.base import load_dataset  # the one loader
from vidpop.data.labels import LABEL_RECIPES
from vidpop.data.schema import VideoDataset
from vidpop.data.splits import random_split
from vidpop.errors import MissingBackboneError
from vidpop.models.cover_title_fusion import CoverTitleFusion, CoverTitleFusionConfig
from vidpop.recipes.fusion import Parts
from vidpop.training import metrics

SPOTIFY = "spotify_fresh_finds_covers_2022"
BILIBILI = "bilibili_popular_videos_2021"
MICROLENS = "microlens"
SWEEP_WEIGHTS = (0.0, 0.3, 0.45, 0.6, 0.75, 0.9, 1.0)
#: caption of every table measured on the Spotify set
SPOTIFY_CAVEAT = "music artwork, not video covers (Spotify Fresh Finds; label = popularity index 0-100)"


def caveat(dataset: str) -> str:
    return SPOTIFY_CAVEAT if dataset == SPOTIFY else ""


def split_dataset(ds: VideoDataset, seed: int = 0, test_frac: float = 0.2, val_frac: float = 0.1) -> Parts:
    """Grouped split when the data has a ``group`` column (no title shared by train and test)."""
    groups = ds.videos["group"].astype(str).to_numpy() if "group" in ds.videos else None
    sp = random_split(len(ds.videos), test_frac, val_frac, seed=seed, groups=groups)
    ids = ds.videos["video_id"].to_numpy()
    sizes = " / ".join(f"{part} {n}" for part, n in sp.sizes().items())
    notes = [f"split {sp.info['kind']} seed {seed}: {sizes}"]
    return Parts(ds.subset(ids[sp.train]), ds.subset(ids[sp.val]), ds.subset(ids[sp.test]), sp, notes)


def run_one(parts: Parts, config: CoverTitleFusionConfig) -> dict[str, Any]:
    """Fit on train (early stopping on val) and score val and test."""
    model = CoverTitleFusion(config).fit(parts.train, val=parts.val)
    best = model.history_["epochs"][model.history_["best_epoch"]]
    return {
        "model": model,
        "test": model.evaluate(parts.test),
        "val": model.evaluate(parts.val),
        "best_epoch": model.history_["best_epoch"],
        "train_accuracy": best.get("train_accuracy", float("nan")),
        "label_info": model.label_info_,
        "coverage": model.coverage_,
    }


def majority_baseline(parts: Parts, config: CoverTitleFusionConfig) -> dict[str, float]:
    """Always the training set's most frequent class (labels from the same train-fitted scorer)."""
    labeller = CoverTitleFusion(config)
    y_train = labeller.fit_labels(parts.train.videos)
    y_test = labeller.scorer_.transform(parts.test.videos)
    pred = np.full(len(y_test), np.bincount(y_train).argmax())
    return {"accuracy": metrics.accuracy(y_test, pred), "ordinal_accuracy": metrics.ordinal_accuracy(y_test, pred)}


def _mean_row(runs: list[dict[str, Any]]) -> dict[str, float]:
    acc = [r["test"]["accuracy"] for r in runs]
    oacc = [r["test"]["ordinal_accuracy"] for r in runs]
    return {
        "accuracy": float(np.mean(acc)),
        "accuracy_sd": float(np.std(acc)),
        "ordinal_accuracy": float(np.mean(oacc)),
        "ordinal_accuracy_sd": float(np.std(oacc)),
        "n_test": int(np.mean([r["test"]["n"] for r in runs])),
    }


def _evaluate_configs(
    dataset: str,
    configs: dict[str, CoverTitleFusionConfig | str],
    seeds: int,
    limit: int | None,
    baseline: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Test metrics (mean ± sd over ``seeds`` splits) per named config; a string value is a row
    that cannot be measured (its reason is reported instead of a number). ``log`` receives one
    line per finished run (these tables take minutes on a CPU)."""
    ds = load_dataset(dataset, limit)
    rows: dict[str, dict[str, Any]] = {name: {"runs": []} for name in configs}
    base: list[dict[str, float]] = []
    info: dict[str, Any] = {}
    for seed in range(seeds):
        parts = split_dataset(ds, seed)
        for name, cfg in configs.items():
            if isinstance(cfg, str):
                continue
            try:
                run = run_one(parts, dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=seed)))
            except MissingBackboneError as exc:
                configs[name] = f"not run: {exc}"
                continue
            rows[name]["runs"].append({k: v for k, v in run.items() if k != "model"})
            info = {"label": run["label_info"], "split": parts.notes[0]}
            if log is not None:
                t = run["test"]
                log(f"{name} seed {seed}: test accuracy {t['accuracy']:.3f}, ordinal {t['ordinal_accuracy']:.3f}")
        if baseline:
            first = next((c for c in configs.values() if not isinstance(c, str)), CoverTitleFusionConfig())
            base.append(majority_baseline(parts, first))
    table = []
    for name, cfg in configs.items():
        if isinstance(cfg, str) or not rows[name]["runs"]:
            table.append({"row": name, "note": cfg if isinstance(cfg, str) else "no runs"})
            continue
        r = rows[name]["runs"][0]
        table.append({"row": name, **_mean_row(rows[name]["runs"]), "covers_present": r["coverage"]["covers_present"]})
    if base:
        table.append(
            {
                "row": "majority class (baseline)",
                "accuracy": float(np.mean([b["accuracy"] for b in base])),
                "ordinal_accuracy": float(np.mean([b["ordinal_accuracy"] for b in base])),
            }
        )
    return {
        "dataset": dataset,
        "caveat": caveat(dataset),
        "seeds": seeds,
        "rows": table,
        "info": info,
        "notes": list(ds.meta.get("notes", [])),
    }


def weight_sweep(
    weights: tuple[float, ...] = SWEEP_WEIGHTS,
    seeds: int = 3,
    limit: int | None = None,
    base: CoverTitleFusionConfig | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Test accuracy / ordinal accuracy for each fusion weight w on Spotify covers + titles
    (w = 0: title branch alone; w = 1: cover branch alone)."""
    base = base or CoverTitleFusionConfig(progress=False)
    configs: dict[str, CoverTitleFusionConfig | str] = {
        f"w={w:g}": dataclasses.replace(base, fusion_weight=float(w)) for w in weights
    }
    return _evaluate_configs(SPOTIFY, configs, seeds, limit, log=log)


def backbone_table(
    seeds: int = 3, limit: int | None = None, vit_weights: str | None = None, log: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Backbone swap at w = 0.75 on Spotify. Without user-supplied ViT weights the ViT row says so."""
    base = CoverTitleFusionConfig(progress=False, text_encoder="minilm")
    configs: dict[str, CoverTitleFusionConfig | str] = {
        "efficientnet_lite0 + MiniLM": base,
        "efficientnet_lite0 + GloVe-GRU": dataclasses.replace(base, text_encoder="glove_gru"),
        "vit_b16 + MiniLM": (
            dataclasses.replace(base, image_backbone="vit_b16", image_weights=vit_weights)
            if vit_weights
            else "no offline weights (pass --vit-weights with a ViT-B/16 checkpoint)"
        ),
    }
    return _evaluate_configs(SPOTIFY, configs, seeds, limit, log=log)


def title_only_table(
    dataset: str,
    seeds: int = 3,
    limit: int | None = None,
    log: Callable[[str], None] | None = None,
    recipes: tuple[str, ...] = LABEL_RECIPES,
) -> dict[str, Any]:
    """Title branch on a dataset without (or with few) covers, under each label recipe (quantile classes
    and the paper's fixed thresholds): the sentence encoder the titles' language calls for (e5 for
    Chinese titles), MiniLM and GloVe-GRU for comparison (both English), plus the fused model where some
    covers exist (the rest run the text branch alone). Rows carry ``labels`` = the recipe."""
    from vidpop.features.text import encoder_for_titles

    ds = load_dataset(dataset, limit)
    chosen, why = encoder_for_titles(ds.videos["title"].tolist(), ds.meta.get("language"))
    rows: list[dict[str, Any]] = []
    infos: dict[str, Any] = {}
    result: dict[str, Any] = {}
    for recipe in recipes:
        base = CoverTitleFusionConfig(progress=False, fusion_weight=0.0, label_recipe=recipe)
        configs: dict[str, CoverTitleFusionConfig | str] = {}
        if chosen == "title_e5":
            configs["title only: e5 (multilingual)"] = dataclasses.replace(base, text_encoder="e5")
        configs["title only: MiniLM"] = dataclasses.replace(base, text_encoder="minilm")
        configs["title only: GloVe-GRU"] = dataclasses.replace(base, text_encoder="glove_gru")
        if dataset == MICROLENS:
            configs["fused w=0.75 (covers where present, text alone elsewhere)"] = dataclasses.replace(
                base, fusion_weight=0.75, text_encoder="auto"
            )
        result = _evaluate_configs(dataset, configs, seeds, limit, log=log)
        rows += [{**r, "labels": recipe} for r in result["rows"]]
        infos[recipe] = result["info"].get("label", {})
    notes = [f"text encoder by language: {chosen} ({why})"]
    if chosen == "title_e5":
        notes.append("MiniLM and GloVe are English-only: on these titles their rows are a comparison, not the method")
    return {
        **result,
        "rows": rows,
        "info": {**result.get("info", {}), "labels": infos, "text_encoder": chosen},
        "notes": notes + result.get("notes", []),
    }
