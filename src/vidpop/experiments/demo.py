"""The README's main job: import the real MicroLens sample, extract its features, train one model
(an MLP on title embedding + category -> log views, likes, comments), print a metrics table."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidpop.data.adapters import get_adapter
from vidpop.data.labels import log_targets
from vidpop.data.preprocessing import MultiHotEncoder
from vidpop.data.splits import random_split
from vidpop.features.extract import build_extractor, dataset_features, default_store, extract_kinds
from vidpop.features.store import FeatureStore
from vidpop.models import build_model
from vidpop.training import metrics

TARGETS = ["views", "likes", "comments"]
KINDS = ["title_minilm", "cover_effnet", "frames_effnet", "audio_mfcc"]


@dataclass
class DemoResult:
    rows_imported: dict[str, int]
    extraction: list[dict[str, Any]]
    metrics: dict[str, dict[str, float]]
    baseline: dict[str, dict[str, float]]
    model_dir: Path
    seconds: dict[str, float] = field(default_factory=dict)


@contextmanager
def _step(message: str, progress: bool) -> Iterator[None]:
    """One line before and after a step that has no progress bar of its own (no silent seconds)."""
    t0 = time.perf_counter()
    if progress:
        print(f"{message} ...", file=sys.stderr, flush=True)
    yield
    if progress:
        print(f"{message}: done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)


def run_demo(
    out: Path,
    src: Path | None = None,
    seed: int = 0,
    progress: bool = True,
    store_dir: Path | None = None,
    limit: int | None = None,
) -> DemoResult:
    """Run the demo; features are cached in ``store_dir`` (default: the dataset's store under the
    cache root), so a rerun or an interrupted run only extracts what is missing."""
    t0 = time.perf_counter()
    with _step("importing MicroLens", progress):
        ds = get_adapter("microlens").load(src)
        if limit is not None:  # a quick slice (tests); the default is all 19,738 videos
            ds = ds.subset(n=limit)
        ds.save(out / "dataset")
    t_import = time.perf_counter() - t0

    store = FeatureStore(store_dir) if store_dir else default_store(ds)
    reports = extract_kinds(ds, KINDS, store=store, progress=progress)
    t_extract = time.perf_counter() - t0 - t_import

    videos = ds.videos
    keep = np.ones(len(videos), bool)
    if "likes_gt_views" in videos:  # the authors advise dropping botted rows (likes > views)
        keep &= ~videos["likes_gt_views"].fillna(False).to_numpy(bool)
    y_all = log_targets(videos, TARGETS)
    keep &= ~np.isnan(y_all).any(axis=1)
    title, present = dataset_features(ds, "title_minilm", store=store, progress=progress)
    keep &= present
    idx = np.flatnonzero(keep)
    split = random_split(len(idx), test_frac=0.2, val_frac=0.1, seed=seed)
    tr, va, te = idx[split.train], idx[split.val], idx[split.test]

    cats = MultiHotEncoder().fit(videos["category"].iloc[tr])
    X = np.hstack([title, cats.transform(videos["category"])])
    model = build_model("mlp", hidden=(256, 128), train={"epochs": 40, "progress": progress, "seed": seed})
    model.fit(X[tr], y_all[tr], X[va], y_all[va])
    model.feature_versions = {"title_minilm": build_extractor("title_minilm").version, "category": "multi-hot@train"}
    pred = model.predict(X[te])
    model_dir = model.save(out / "model")

    res, base = {}, {}
    for j, t in enumerate(TARGETS):
        res[t] = metrics.regression_report(y_all[te, j], pred[:, j])
        base[t] = metrics.regression_report(y_all[te, j], np.full(len(te), y_all[tr, j].mean()))
    return DemoResult(
        rows_imported=ds.row_counts(),
        extraction=[r.as_dict() for r in reports],
        metrics=res,
        baseline=base,
        model_dir=model_dir,
        seconds={"import": t_import, "extract": t_extract, "total": time.perf_counter() - t0},
    )


# ------------------------------------------------------------------------------------------ the quick bundle
#: the demo's model bundle: (folder, model, data, recipe + hyper-parameters), sized to train in minutes on
#: 2 cores with the demo's features cached; the full-size bundle is `make models`
QUICK_BUNDLE: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("poe", "variational_poe", "microlens",
     {"recipe": {"limit": 4000}, "train": {"epochs": 15}, "n_samples": 300, "kl_weight": 0.01, "n_hidden": 2}),
    ("explain", "attention_explain", "youtube_views_subscribers_2025",
     {"recipe": {"limit": 3000, "covers_limit": 800}, "train": {"epochs": 4}}),
    ("itemknn", "rec_itemknn", "microlens", {"recipe": {"max_test_users": 1000}}),
    ("text", "rec_cb", "microlens", {"recipe": {"max_test_users": 1000}}),
)  # fmt: skip


def train_quick_bundle(
    root: Path, plan: tuple[tuple[str, str, str, dict[str, Any]], ...] = QUICK_BUNDLE, progress: bool = True
) -> dict[str, str]:
    """Train each model of ``plan`` into ``root/<folder>``, or reuse the folder when a complete model with the
    same recipe is there already. Returns folder -> "trained" | "reused"."""
    import json

    from vidpop.recipes import train

    done: dict[str, str] = {}
    for folder, model, data, config in plan:
        out = root / folder
        stamp = out / "demo_plan.json"
        want = json.dumps({"model": model, "data": data, "config": config}, sort_keys=True)
        if (out / "config.json").exists() and stamp.exists() and stamp.read_text() == want:
            done[folder] = "reused"
            if progress:
                print(f"bundle: reusing {out}", file=sys.stderr, flush=True)
            continue
        with _step(f"bundle: training {model} on {data}", progress):
            train(model, data, out, config)
        stamp.write_text(want)
        done[folder] = "trained"
    return done
