"""(d) Training speed on MicroLens: seconds per epoch of the interest RNN and of the strongest baselines.

One epoch over all 50,000 users takes many minutes on a shared 2-core box, longer than the whole
``make bench`` budget, so each model trains one epoch on two nested seeded samples of users (the
protocol's long user split; item features attached beforehand and not timed) and the full-data figure
is extrapolated with a line through the two points (a fixed per-epoch cost — e.g. the interest RNN's
item-side losses — plus a cost per training interaction). Measured and extrapolated figures are both
written; the extrapolated one is labelled as such. ``rec_itemknn`` has no epochs: its whole fit.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from benchmarks.common import Table, measure, report
from vidpop.data.adapters import get_adapter
from vidpop.data.schema import VideoDataset
from vidpop.data.sequences import attach_item_features
from vidpop.models import build_model
from vidpop.training.rec_protocol import ProtocolConfig, make_user_split, needed_item_features

SAMPLE_USERS = tuple(int(v) for v in os.environ.get("VIDPOP_BENCH_USERS", "1000,2500").split(","))
#: (label, registered model, overrides, has epochs)
MODELS: list[tuple[str, str, dict[str, Any], bool]] = [
    ("interest_rnn (full model)", "interest_rnn", {}, True),
    ("rec_sasrec (strongest epoch-trained baseline)", "rec_sasrec", {}, True),
    ("rec_itemknn (no epochs: whole fit)", "rec_itemknn", {}, False),
]


def _one_epoch(name: str, overrides: dict[str, Any]) -> Any:
    model = build_model(name, **overrides)
    cfg = model.config
    if hasattr(cfg, "epochs"):
        cfg.epochs = 1
    if dataclasses.is_dataclass(getattr(cfg, "train", None)):
        cfg.train = dataclasses.replace(cfg.train, epochs=1, progress=False, patience=0)
    if hasattr(cfg, "progress"):
        cfg.progress = False
    return model


def _fit_line(xs: list[float], ys: list[float], x: float) -> float:
    """Affine extrapolation through the measured points (fixed per-epoch cost + cost per interaction)."""
    b, a = np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)
    return float(a + b * x) if b >= 0 else float("nan")  # a negative slope is noise, not a figure


def run() -> dict[str, Any]:
    full = get_adapter("microlens").load()
    pcfg = ProtocolConfig(mode="long", max_test_users=200, progress=False)
    counts = full.interactions.groupby("user_id").size()
    full_inter = int(counts[counts >= pcfg.min_user_interactions].sum())
    order = np.random.default_rng(0).permutation(counts.index.to_numpy())
    measured: dict[str, list[tuple[int, float, Any]]] = {name: [] for _, name, _, _ in MODELS}
    sizes: list[tuple[int, int]] = []
    for n_users in SAMPLE_USERS:
        users = set(order[: min(n_users, len(order))])  # nested samples: the larger contains the smaller
        inter = full.interactions[full.interactions["user_id"].isin(users)]
        # same name as the full dataset: item features come from (and go to) its feature store
        sub = VideoDataset(full.name, videos=full.videos, interactions=inter.reset_index(drop=True), meta=full.meta)
        split = make_user_split(sub, pcfg)
        n_sub = int(split.info["interactions"])
        sizes.append((len(users), n_sub))
        for _, name, overrides, _ in MODELS:
            model = _one_epoch(name, overrides)
            attach_item_features(split.train, sub, needed_item_features(model), progress=False)
            with measure() as m:
                model.fit(split.train)
            epochs = max(int(getattr(model, "epochs_run_", 1) or 1), 1)
            per_epoch = float(getattr(model, "seconds_per_epoch_", 0) or m.seconds / epochs)
            measured[name].append((n_sub, per_epoch, m))
    head = ", ".join(f"{u} users = {n:,} interactions" for u, n in sizes)
    table = Table(f"Training speed on MicroLens (samples: {head}; all users = {full_inter:,} interactions)",
                  ["model", *[f"s/epoch at {u} users" for u, _ in sizes], "s/epoch all users (extrapolated)",
                   "peak RSS MB"])  # fmt: skip
    out: dict[str, Any] = {"samples": [{"users": u, "interactions": n} for u, n in sizes],
                           "full_interactions": full_inter, "models": {}}  # fmt: skip
    for label, name, _, has_epochs in MODELS:
        pts = measured[name]
        est = _fit_line([p[0] for p in pts], [p[1] for p in pts], full_inter)
        rss = max(p[2].peak_rss_mb for p in pts)
        table.add(label, *[p[1] for p in pts], est, rss)
        out["models"][name] = {
            "label": label, "seconds_per_epoch_measured": {str(p[0]): round(p[1], 3) for p in pts},
            "seconds_per_epoch_sample": round(pts[-1][1], 3),
            "seconds_per_epoch_full_extrapolated": round(est, 1), "has_epochs": has_epochs,
            "fit": [p[2].as_dict() for p in pts],
        }  # fmt: skip
    report("training_speed", [table], out)
    return out


if __name__ == "__main__":
    run()
