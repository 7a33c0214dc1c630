"""The attention model's results table and the model used for the explanations.

Rows, as in the paper: frames with mean pooling, frames with attention, headline biLSTM, headline biLSTM
with attention, multimodal, multimodal with attention. Each row is the popular/unpopular accuracy and the
Spearman correlation between P(popular) and the normalised popularity on held-out items, averaged over
seeds (each seed draws a new split and a new initialisation).

Which data feeds which row:
* frame rows: a labelled video collection (``video_path`` + a count). None is reachable offline, so the
  rows read "no labelled videos" unless the user passes one (any dataset imported with the generic adapter);
* headline rows: YouTube headlines, views ÷ channel subscribers;
* multimodal rows: Spotify covers + track titles, a cover being a one-frame clip (so frame attention is
  trivially α = 1 there); when a labelled video collection is given, its multimodal rows are added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vidpop.data.labels import MedianSplitLabeler
from vidpop.data.schema import VideoDataset
from vidpop.data.splits import random_split
from vidpop.errors import NoLabelledDataError, VidpopError
from vidpop.models.attention_explain import AttentionExplainModel, AttentionInputs
from vidpop.models.registry import build_model
from vidpop.training import metrics
from vidpop.training.loop import TrainConfig

#: (row label, input kind, model options) in the paper's order
ROWS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("frames, mean pooling", "frames", {"modalities": "frames", "frame_pooling": "mean"}),
    ("frames, attention", "frames", {"modalities": "frames", "frame_pooling": "attention"}),
    ("headline biLSTM", "headline", {"modalities": "headline", "headline_pooling": "last"}),
    ("headline biLSTM + attention", "headline", {"modalities": "headline", "headline_pooling": "attention"}),
    ("multimodal", "both", {"modalities": "both", "frame_pooling": "mean", "headline_pooling": "last"}),
    (
        "multimodal + attention",
        "both",
        {"modalities": "both", "frame_pooling": "attention", "headline_pooling": "attention"},
    ),
)


@dataclass
class Task:
    """One labelled collection ready for the model: inputs aligned with ``table`` rows."""

    name: str
    inputs: AttentionInputs
    table: pd.DataFrame
    labeler: MedianSplitLabeler
    groups: np.ndarray | None = None
    note: str = ""

    def __len__(self) -> int:
        return len(self.table)


@dataclass
class RowResult:
    row: str
    data: str
    accuracy: list[float] = field(default_factory=list)
    spearman: list[float] = field(default_factory=list)
    n_train: int = 0
    n_test: int = 0
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"row": self.row, "data": self.data, "note": self.note}
        if self.accuracy:
            out.update(
                accuracy=float(np.mean(self.accuracy)),
                accuracy_std=float(np.std(self.accuracy)),
                spearman=float(np.mean(self.spearman)),
                spearman_std=float(np.std(self.spearman)),
                n_seeds=len(self.accuracy),
                n_train=self.n_train,
                n_test=self.n_test,
            )
        return out


# ------------------------------------------------------------------------------------------ tasks
def _labeler(table: pd.DataFrame, value: str | None) -> MedianSplitLabeler:
    """Median split of ``value`` (default: views, else the first count/score the data has), divided by the
    uploader's followers when the data has them."""
    candidates = [value] if value else ["views", "popularity", "likes", "comments"]
    col = next((c for c in candidates if c and c in table and table[c].notna().any()), None)
    if col is None:
        raise NoLabelledDataError(f"no popularity column among {candidates}")
    norm = "author_followers" if "author_followers" in table and table["author_followers"].notna().any() else None
    return MedianSplitLabeler(value=col, normalise_by=norm)


def _labelled(ds: VideoDataset, value: str | None) -> tuple[pd.DataFrame, MedianSplitLabeler]:
    table = ds.videos_with_authors()
    lab = _labeler(table, value)
    keep = table[lab.value].notna()
    if lab.normalise_by:
        keep &= table[lab.normalise_by].notna()
    return table[keep.to_numpy()].reset_index(drop=True), lab


def _aligned_features(
    ds: VideoDataset, table: pd.DataFrame, kind: str, progress: bool, **opts: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Cached features of ``kind`` (extracted on first use) aligned with ``table`` rows."""
    from vidpop.features.extract import dataset_features

    sub = ds.subset(table["video_id"].tolist()) if len(table) < len(ds.videos) else ds
    feats, present = dataset_features(sub, kind, progress=progress, **opts)
    order = pd.Index(sub.videos["video_id"]).get_indexer(table["video_id"])
    return feats[order], present[order]


def headline_task(ds: VideoDataset, value: str | None = None) -> Task:
    table, lab = _labelled(ds, value)
    titles = table["title"].fillna("").astype(str).tolist()
    return Task(ds.name, AttentionInputs(titles=titles), table, lab, note="")


def cover_task(ds: VideoDataset, value: str | None = None, progress: bool = True) -> Task:
    """Cover image + title per item; the cover is a one-frame clip (pooled CNN features of the cover)."""
    table, lab = _labelled(ds, value)
    feats, present = _aligned_features(ds, table, "cover", progress)
    if not present.any():
        raise NoLabelledDataError(f"{ds.name}: no cover image could be read")
    keep = np.flatnonzero(present)
    table = table.iloc[keep].reset_index(drop=True)
    inputs = AttentionInputs(titles=table["title"].fillna("").astype(str).tolist(), frames=feats[keep][:, None, :])
    # a track repeats across playlists: keep a track (and a shared cover) on one side of the split
    group_col = next((c for c in ("group", "album_url") if c in table), "title")
    groups = table[group_col].astype(str).to_numpy()
    return Task(ds.name, inputs, table, lab, groups=groups, note="a cover is a one-frame clip (α = 1)")


def video_task(
    ds: VideoDataset, n_frames: int, seconds: float, value: str | None = None, progress: bool = True
) -> Task:
    """Clips with a readable ``video_path`` and a label: N frames over the first T seconds per clip."""
    if "video_path" not in ds.videos or ds.videos["video_path"].isna().all():
        raise NoLabelledDataError("no labelled videos")
    table, lab = _labelled(ds, value)
    table = table[table["video_path"].notna()].reset_index(drop=True)
    if len(table) < 10:
        raise NoLabelledDataError(f"no labelled videos (only {len(table)} clips with a label)")
    feats, present = _aligned_features(ds, table, "frames", progress, n_frames=n_frames, first_seconds=seconds)
    keep = np.flatnonzero(present)
    table = table.iloc[keep].reset_index(drop=True)
    inputs = AttentionInputs(titles=table["title"].fillna("").astype(str).tolist(), frames=feats[keep])
    return Task(ds.name, inputs, table, lab, note=f"{n_frames} frames over the first {seconds:g} s")


# ------------------------------------------------------------------------------------------ evaluation
def evaluate_row(
    task: Task, options: dict[str, Any], seeds: Sequence[int], train: TrainConfig, row: str = ""
) -> RowResult:
    """Train and test one configuration on ``task`` for every seed (new split + new init per seed)."""
    uses_frames = options.get("modalities", "both") in ("frames", "both")
    res = RowResult(row, task.name, note=task.note if uses_frames and task.inputs.frames is not None else "")
    for seed in seeds:
        split = random_split(len(task), test_frac=0.2, val_frac=0.1, seed=seed, groups=task.groups)
        lab = MedianSplitLabeler(task.labeler.value, task.labeler.normalise_by).fit(task.table.iloc[split.train])
        y = lab.transform(task.table)
        cfg_train = TrainConfig(**{**train.__dict__, "seed": seed})
        model = build_model("attention_explain", **options, train=cfg_train.__dict__)
        model.fit(task.inputs.take(split.train), y[split.train], task.inputs.take(split.val), y[split.val])
        proba = model.predict_proba(task.inputs.take(split.test))[:, 1]
        res.accuracy.append(metrics.accuracy(y[split.test], (proba > 0.5).astype(int)))
        res.spearman.append(metrics.spearman(lab.normalised(task.table.iloc[split.test]), proba))
        res.n_train, res.n_test = len(split.train), len(split.test)
    return res


def attention_table(
    headline: Task | None,
    covers: Task | None,
    videos: Task | None,
    seeds: Sequence[int] = (0, 1, 2),
    train: TrainConfig | None = None,
    videos_reason: str = "no labelled videos",
    extra_rows: bool = True,
) -> list[dict[str, Any]]:
    """The results table as a list of dicts (rows without data carry only ``note``)."""
    train = train or TrainConfig(epochs=30, batch_size=64, lr=1e-3, weight_decay=1e-4, patience=5, progress=False)
    out: list[dict[str, Any]] = []
    for label, kind, options in ROWS:
        if kind == "frames":
            tasks, missing = [videos], videos_reason
        elif kind == "headline":
            tasks, missing = [headline], "no headline data"
        else:
            tasks, missing = [t for t in (covers, videos) if t is not None] or [None], "no image + title data"
        for task in tasks:
            if task is None:
                out.append({"row": label, "data": "-", "note": missing})
            else:
                out.append(evaluate_row(task, options, seeds, train, label).as_dict())
    if extra_rows and covers is not None:
        # Context for the cover rows: each modality alone on the same items and splits.
        for label, options in (
            ("(context) cover only, 1 frame", {"modalities": "frames"}),
            ("(context) track title only, biLSTM + attention", {"modalities": "headline"}),
        ):
            out.append(evaluate_row(covers, options, seeds, train, label).as_dict())
    return out


def format_table(rows: list[dict[str, Any]], seeds: Sequence[int]) -> str:
    """Plain-text table: accuracy and Spearman as mean ± std over seeds."""
    head = f"{'row':48s} {'data':32s} {'accuracy':>15s} {'Spearman':>15s} {'n_test':>7s}  note"
    lines = [head, "-" * len(head)]
    for r in rows:
        if "accuracy" not in r:
            lines.append(f"{r['row']:48s} {r['data']:32s} {'—':>15s} {'—':>15s} {'':>7s}  {r['note']}")
            continue
        acc = f"{r['accuracy']:.3f} ± {r['accuracy_std']:.3f}"
        rho = f"{r['spearman']:.3f} ± {r['spearman_std']:.3f}"
        lines.append(f"{r['row']:48s} {r['data']:32s} {acc:>15s} {rho:>15s} {r['n_test']:>7d}  {r['note']}")
    lines.append(
        f"mean ± std over seeds {list(seeds)} (each seed: new 70/10/20 split and new initialisation). "
        "Spearman: P(popular) vs views ÷ followers (YouTube) / popularity index (Spotify, no followers)."
    )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ explainer
def explainer_training_data(
    headline: Task, covers: Task, seed: int = 0
) -> tuple[AttentionInputs, np.ndarray, AttentionInputs, np.ndarray, dict[str, Any]]:
    """Training and validation rows of the explanation model: the union of the headline rows (no frames:
    their frame mask is empty, so they contribute v = 0) and the cover rows (one frame + title). Each
    collection keeps its own median split, fitted on its training part. The last item holds, per
    collection, what :func:`explainer_scores` needs to score the test part."""
    if covers.inputs.frames is None:
        raise VidpopError("the cover task has no frame features")
    feat_dim = covers.inputs.frames.shape[2]
    parts_x: dict[str, list[AttentionInputs]] = {"train": [], "val": []}
    parts_y: dict[str, list[np.ndarray]] = {"train": [], "val": []}
    report: dict[str, Any] = {}
    for task in (headline, covers):
        split = random_split(len(task), 0.2, 0.1, seed=seed, groups=task.groups)
        lab = MedianSplitLabeler(task.labeler.value, task.labeler.normalise_by).fit(task.table.iloc[split.train])
        y = lab.transform(task.table)
        x = task.inputs
        if x.frames is None:  # headline-only rows: an empty (fully masked) one-frame clip
            x = AttentionInputs(
                titles=x.titles,
                frames=np.zeros((len(task), 1, feat_dim), np.float32),
                frame_mask=np.zeros((len(task), 1), bool),
            )
        for part in ("train", "val"):
            idx = getattr(split, part)
            parts_x[part].append(x.take(idx))
            parts_y[part].append(y[idx])
        report[task.name] = {"split": split, "labeler": lab, "inputs": x, "y": y, "table": task.table}
    return (_concat(parts_x["train"]), np.concatenate(parts_y["train"]), _concat(parts_x["val"]),
            np.concatenate(parts_y["val"]), report)  # fmt: skip


def explainer_scores(model: AttentionExplainModel, report: dict[str, Any]) -> dict[str, Any]:
    """Accuracy and Spearman (P(popular) vs the normalised popularity) on each collection's test part."""
    scores = {}
    for name, r in report.items():
        test = r["split"].test
        proba = model.predict_proba(r["inputs"].take(test))[:, 1]
        scores[name] = {
            "accuracy": metrics.accuracy(r["y"][test], (proba > 0.5).astype(int)),
            "spearman": metrics.spearman(r["labeler"].normalised(r["table"])[test], proba),
            "n_test": len(test),
        }
    return scores


def train_explainer(
    headline: Task, covers: Task, seed: int = 0, train: TrainConfig | None = None, **options: Any
) -> tuple[AttentionExplainModel, dict[str, Any]]:
    """One multimodal model (frame + headline attention) for the explanations; returns it and its test scores."""
    train = train or TrainConfig(epochs=30, batch_size=64, lr=1e-3, weight_decay=1e-4, patience=5, progress=False)
    Xtr, ytr, Xva, yva, report = explainer_training_data(headline, covers, seed)
    model = build_model("attention_explain", modalities="both", train=train.__dict__, **options)
    model.fit(Xtr, ytr, Xva, yva)
    return model, explainer_scores(model, report)


def _concat(parts: list[AttentionInputs]) -> AttentionInputs:
    return AttentionInputs(
        titles=[t for p in parts for t in (p.titles or [])],
        frames=np.concatenate([p.frames for p in parts]),
        frame_mask=np.concatenate([p.frame_mask for p in parts]),
    )
