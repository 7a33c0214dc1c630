"""Inputs of the variational product-of-experts model, and how they are built from a VideoDataset.

Four modalities, each an array with a per-row presence mask (a missing modality contributes no expert):

* ``visual``   — EfficientNet-Lite0 pooled features (1280-d): the mean over the sampled frames of the
  video (default 10) when there is a video file, else the cover image (one frame);
* ``acoustic`` — MFCC mean + variance (48-d) of the soundtrack;
* ``textual``  — the MiniLM sentence embedding (384-d) of the title; the model projects it to a small
  contrastively-learned vector. ``text_view`` holds the embedding of a second view of the same item
  (description / search suggestions, else the title with words dropped) for that contrastive training;
* ``social``   — log(1 + author statistics) and log(1 + days since release), standardised by the model.

Targets: log(1 + [views, likes, comments, shares]) where the data has any of these counts; else the
dataset's ``popularity_column`` as is (SMP's score is already log-scale, Spotify's index 0-100).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vidpop.data.schema import VideoDataset
from vidpop.errors import NoLabelledDataError, VidpopError

MODALITIES: tuple[str, ...] = ("visual", "acoustic", "textual", "social")
COUNT_TARGETS: tuple[str, ...] = ("views", "likes", "comments", "shares")
#: author columns used as social inputs when present (log(1 + x))
AUTHOR_STATS: tuple[str, ...] = ("followers", "following", "n_videos", "total_likes", "user_digg_count")
#: columns holding a second text of an item, in order of preference, for the contrastive view
VIEW_COLUMNS: tuple[str, ...] = ("description", "suggested_words")


@dataclass
class PoEInputs:
    """Modality arrays ``values[m]`` (n, d_m) with masks ``masks[m]`` (n,) bool; absent modalities may be
    left out entirely. ``text_view`` (n, 384) is only needed to fit the contrastive text projection."""

    values: dict[str, np.ndarray] = field(default_factory=dict)
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    text_view: np.ndarray | None = None
    n: int | None = None

    def __post_init__(self) -> None:
        unknown = set(self.values) - set(MODALITIES)
        if unknown:
            raise VidpopError(f"unknown modalities {sorted(unknown)}; known: {MODALITIES}")
        lengths = {len(v) for v in self.values.values()}
        if self.n is not None:
            lengths.add(self.n)
        if len(lengths) > 1:
            raise VidpopError(f"modality arrays have different lengths {sorted(lengths)}")
        self.n = lengths.pop() if lengths else 0
        for m, v in self.values.items():
            self.values[m] = np.asarray(v, np.float32).reshape(self.n, -1)
            mask = self.masks.get(m)
            self.masks[m] = np.ones(self.n, bool) if mask is None else np.asarray(mask, bool).reshape(self.n)

    def __len__(self) -> int:
        return int(self.n or 0)

    def get(self, m: str, n: int | None = None, dim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(values, mask) of modality ``m``; all-absent zeros of width ``dim`` when it is not given."""
        if m in self.values:
            v = self.values[m]
            if dim is not None and v.shape[1] != dim:
                raise VidpopError(f"{m} inputs have {v.shape[1]} dims, the model was trained on {dim}")
            return v, self.masks[m]
        return np.zeros((len(self), dim or 0), np.float32), np.zeros(len(self), bool)

    def present_modalities(self) -> list[str]:
        return [m for m in MODALITIES if m in self.values and self.masks[m].any()]

    def take(self, idx: np.ndarray) -> PoEInputs:
        idx = np.asarray(idx)
        return PoEInputs(
            {m: v[idx] for m, v in self.values.items()},
            {m: k[idx] for m, k in self.masks.items()},
            None if self.text_view is None else self.text_view[idx],
            n=len(idx),
        )

    def drop(self, *modalities: str) -> PoEInputs:
        """The same rows without some modalities (to ask what the others alone predict)."""
        keep = [m for m in self.values if m not in modalities]
        return PoEInputs({m: self.values[m] for m in keep}, {m: self.masks[m] for m in keep}, self.text_view, self.n)


def concat_inputs(parts: list[PoEInputs]) -> PoEInputs:
    """Rows of several collections stacked; a modality one collection lacks is absent (masked) for its
    rows. This is how one model learns experts from collections that label different modalities."""
    dims: dict[str, int] = {}
    for p in parts:
        for m, v in p.values.items():
            if dims.setdefault(m, v.shape[1]) != v.shape[1]:
                raise VidpopError(f"{m} inputs differ in width across collections ({dims[m]} vs {v.shape[1]})")
    values, masks = {}, {}
    for m in (m for m in MODALITIES if m in dims):
        got = [p.get(m, len(p), dims[m]) for p in parts]
        values[m] = np.concatenate([g[0] for g in got])
        masks[m] = np.concatenate([g[1] for g in got])
    view = None
    if "textual" in dims and any(p.text_view is not None for p in parts):
        view = np.concatenate(
            [p.text_view if p.text_view is not None else p.get("textual", len(p), dims["textual"])[0] for p in parts]
        )
    return PoEInputs(values, masks, view, n=sum(len(p) for p in parts))


# ------------------------------------------------------------------------------------------ targets
def poe_targets(ds: VideoDataset) -> tuple[np.ndarray, list[str], str]:
    """(y (n, targets), names, a sentence on the scale). Counts -> log(1 + x); else the popularity column."""
    counts = [c for c in COUNT_TARGETS if c in ds.engagement_columns]
    if counts:
        y = np.log1p(ds.videos[counts].to_numpy(np.float64).clip(min=0))
        return y, [f"log1p_{c}" for c in counts], "log(1 + count)"
    col = ds.meta.get("popularity_column")
    if col and col in ds.videos and ds.videos[col].notna().any():
        scale = (
            "already log-scale, used as is" if ds.meta.get("popularity_scale") == "log" else "the source's index, as is"
        )
        return ds.videos[col].to_numpy(np.float64), [str(col)], scale
    raise NoLabelledDataError(f"{ds.name}: no views/likes/comments/shares and no popularity column to predict")


# ------------------------------------------------------------------------------------------ social
def social_features(ds: VideoDataset) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """log(1 + author stats) and log(1 + days since release) per video, their mask and column names.

    The release reference is ``ds.meta['reference_time']`` (e.g. the crawl date) when given, else the
    latest ``published_at`` in the dataset. Rows with none of these values are absent.
    """
    cols: list[np.ndarray] = []
    names: list[str] = []
    joined = ds.videos_with_authors()
    for c in AUTHOR_STATS:
        col = f"author_{c}"
        if col in joined and joined[col].notna().any():
            cols.append(np.log1p(pd.to_numeric(joined[col], errors="coerce").clip(lower=0).to_numpy(np.float64)))
            names.append(f"log1p_{c}")
    if "published_at" in ds.videos and ds.videos["published_at"].notna().any():
        t = ds.videos["published_at"]
        ref = pd.Timestamp(ds.meta["reference_time"]) if ds.meta.get("reference_time") else t.max()
        ref = ref.tz_localize("UTC") if ref.tzinfo is None else ref
        days = ((ref - t).dt.total_seconds() / 86400.0).clip(lower=0).to_numpy(np.float64)
        cols.append(np.log1p(days))
        names.append("log1p_days_since_release")
    if not cols:
        return np.zeros((len(ds.videos), 0), np.float32), np.zeros(len(ds.videos), bool), []
    x = np.stack(cols, axis=1)
    mask = np.isfinite(x).any(axis=1)
    return x.astype(np.float32), mask, names  # NaNs inside a present row become the train mean (Standardizer)


# ------------------------------------------------------------------------------------------ text views
def _text(v: object) -> str:
    return (
        "" if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA else str(v).replace("|", ", ").strip()
    )


def second_views(ds: VideoDataset, seed: int = 0) -> list[str]:
    """Per video: the first non-empty of :data:`VIEW_COLUMNS`, else its title with words dropped."""
    from vidpop.models.contrastive_text import token_dropout_view

    titles = [_text(t) for t in ds.videos["title"]]
    dropped = token_dropout_view(titles, seed=seed)
    out = list(dropped)
    for col in reversed(VIEW_COLUMNS):
        if col in ds.videos:
            for i, v in enumerate(ds.videos[col]):
                if _text(v):
                    out[i] = _text(v)
    return out


# ------------------------------------------------------------------------------------------ builder
def build_poe_inputs(
    ds: VideoDataset,
    n_frames: int = 10,
    text_views: bool = True,
    progress: bool = True,
    store: object | None = None,
) -> PoEInputs:
    """Every modality the dataset has, aligned to ``ds.videos`` (features cached in the feature store)."""
    from vidpop.features.extract import dataset_features

    n = len(ds.videos)
    values: dict[str, np.ndarray] = {}
    masks: dict[str, np.ndarray] = {}
    has_video = "video_path" in ds.videos and ds.videos["video_path"].notna().any()
    has_cover = "cover_path" in ds.videos and ds.videos["cover_path"].notna().any()
    if has_video or has_cover:
        vis = np.zeros((n, 1280), np.float32)
        vmask = np.zeros(n, bool)
        if has_cover:
            c, cm = dataset_features(ds, "cover_effnet", store=store, progress=progress)
            vis[cm] = c[cm]
            vmask |= cm
        if has_video:
            f, fm = dataset_features(ds, "frames_effnet", store=store, progress=progress, n_frames=n_frames)
            vis[fm] = f[fm].mean(axis=1)  # frames, where decodable, win over the cover
            vmask |= fm
            a, am = dataset_features(ds, "audio_mfcc", store=store, progress=progress)
            values["acoustic"], masks["acoustic"] = a, am
        values["visual"], masks["visual"] = vis, vmask
    t, tm = dataset_features(ds, "title_minilm", store=store, progress=progress)
    values["textual"], masks["textual"] = t, tm
    view = None
    if text_views and tm.any():
        view_ds = VideoDataset(
            f"{ds.name}__textview", pd.DataFrame({"video_id": ds.videos["video_id"], "title": second_views(ds)})
        )
        # content-keyed: the views sit in the title set, and views equal to a title reuse its row
        view, view_mask = dataset_features(view_ds, "title_minilm", store=store, progress=progress)
        view = np.where(view_mask[:, None], view, t)  # an empty second view: fall back to the title itself
    s, sm, _ = social_features(ds)
    if s.shape[1]:
        values["social"], masks["social"] = s, sm
    return PoEInputs(values, masks, view, n=n)
