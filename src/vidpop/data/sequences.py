"""Interaction logs -> :class:`~vidpop.models.recommender.RecData` (per-user item sequences in time order).

Design decisions (why they are what they are):

* **Time.** Real timestamps are used wherever *every* interaction has one (``time_unit="day"``:
  days since the Unix epoch, as floats, so time-decay rates are "per day"); otherwise the position in
  the user's sequence (``time_unit="step"``). MicroLens-50k has positions only.
* **Item vocabulary = training interactions only.** The item index is built from the interactions
  a model is allowed to see (the protocol's *training view*), keeping videos seen by at least
  ``min_item_users`` distinct users there and present in the corpus (``ds.videos``). Items are
  ordered as in ``ds.videos`` (not by frequency), so the same corpus gives the same order in every
  split and item feature rows line up with the videos table. A video that appears only in some test
  user's ground truth is therefore *not* a candidate: it stays in that user's relevant set and counts as
  a miss (recall is not inflated), and it can never reach popularity counts or vocabularies.
* **Users filter** (``min_user_interactions``) counts a user's whole log: it selects *which users are
  studied* (as RecBole and the paper do: "users with more than 10 interactions"), not what a model
  sees, so it leaks nothing about which items are in anyone's ground truth.
* **Text streams.** A user's text stream is the titles and category/tags of the videos in the
  sequence, in time order, as plain text: the cold-start models see words, never video ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vidpop.data.recdata import RecData
from vidpop.data.schema import VideoDataset
from vidpop.errors import VidpopError


@dataclass
class SequenceFilter:
    """Which users and videos are studied: users with >= ``min_user_interactions`` interactions (whole
    log) and videos seen by >= ``min_item_users`` distinct users *in the training view*."""

    min_user_interactions: int = 5
    min_item_users: int = 1


def ordered_interactions(interactions: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """``user_id, video_id, t`` sorted by user then time, and the time unit ("day" or "step").

    ``t`` is days since the epoch when every row has a timestamp, else the sequence position.
    """
    if interactions.empty:
        raise VidpopError("no interactions: a recommender needs a watch log (user_id, video_id, time)")
    df = pd.DataFrame(
        {"user_id": interactions["user_id"].astype(str), "video_id": interactions["video_id"].astype(str)}
    )
    if "timestamp" in interactions and interactions["timestamp"].notna().all():
        ts = pd.to_datetime(interactions["timestamp"], utc=True)
        # via Timedelta, not astype(int64): the integer unit depends on the datetime resolution (ns/us)
        df["t"] = ((ts - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(days=1)).to_numpy(dtype="float64")
        unit = "day"
    elif "position" in interactions and interactions["position"].notna().all():
        df["t"] = interactions["position"].astype("float64").to_numpy()
        unit = "step"
    else:
        raise VidpopError("interactions need a timestamp or a position on every row to order them in time")
    df = df.sort_values(["user_id", "t"], kind="stable").reset_index(drop=True)
    return df, unit


def filter_users(df: pd.DataFrame, min_user_interactions: int) -> pd.DataFrame:
    """Rows of users with at least ``min_user_interactions`` interactions."""
    size = df.groupby("user_id")["video_id"].transform("size")
    out = df[size >= min_user_interactions].reset_index(drop=True)
    if out.empty:
        raise VidpopError(f"no user has >= {min_user_interactions} interactions")
    return out


def build_item_vocabulary(train_view: pd.DataFrame, videos: pd.DataFrame, min_item_users: int = 1) -> np.ndarray:
    """Video ids (corpus order) seen by >= ``min_item_users`` distinct users in ``train_view``.

    Only the training view is counted, so nothing of a test user's ground truth shapes the vocabulary.
    """
    n_users = train_view.drop_duplicates(["user_id", "video_id"]).groupby("video_id").size()
    keep = set(n_users.index[n_users >= min_item_users].astype(str))
    corpus = videos["video_id"].astype(str)
    ids = corpus[corpus.isin(keep)].to_numpy(dtype=object)
    if not len(ids):
        raise VidpopError(f"no video is seen by >= {min_item_users} users in the training interactions")
    return ids.astype(str)


def item_texts(items: pd.DataFrame) -> list[str]:
    """One short text per item: title, then category and tags (the "tags" of MicroLens are its category)."""
    parts = []
    for col in ("title", "category", "tags"):
        if col in items:
            parts.append(items[col].fillna("").astype(str).str.replace("|", " ", regex=False))
    if not parts:
        return [""] * len(items)
    text = parts[0]
    for p in parts[1:]:
        text = text + " " + p
    return [t.strip() for t in text.tolist()]


def text_stream(item_idx: Sequence[int] | np.ndarray, texts: Sequence[str]) -> str:
    """A user's text stream: the texts of the given items, in time order, joined as one document."""
    return " . ".join(texts[int(i)] for i in item_idx)


def corpus_texts(videos: pd.DataFrame) -> dict[str, str]:
    """Video id -> its text (see :func:`item_texts`) for every video of the corpus."""
    return dict(zip(videos["video_id"].astype(str), item_texts(videos), strict=True))


def encode_sequences(
    df: pd.DataFrame, item_ids: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Per-user item-index and time arrays (time order) for the rows of ``df`` (sorted by user, t).

    Rows whose video is outside the vocabulary are dropped; users left with nothing still get an
    (empty) entry, so user lists stay aligned with ``df``'s users. Returns ``(user_ids, sequences,
    times, n_dropped_per_user)``.
    """
    index = pd.Index(item_ids)
    codes = index.get_indexer(df["video_id"].astype(str))
    users, starts = np.unique(df["user_id"].to_numpy(dtype=str), return_index=True)
    order = np.argsort(starts)
    users, starts = users[order], starts[order]
    bounds = np.append(starts, len(df))
    t = df["t"].to_numpy(dtype="float64")
    seqs, times, dropped = [], [], np.zeros(len(users), np.int64)
    for u in range(len(users)):
        c = codes[bounds[u] : bounds[u + 1]]
        keep = c >= 0
        dropped[u] = int((~keep).sum())
        seqs.append(c[keep].astype(np.int64))
        times.append(t[bounds[u] : bounds[u + 1]][keep])
    return users.astype(str), seqs, times, dropped


def items_table(videos: pd.DataFrame, item_ids: np.ndarray) -> pd.DataFrame:
    """The videos table aligned to item indices."""
    table = videos.assign(video_id=videos["video_id"].astype(str)).set_index("video_id")
    return table.loc[list(item_ids)].reset_index()


def build_rec_data(
    df: pd.DataFrame, videos: pd.DataFrame, item_ids: np.ndarray, time_unit: str, with_texts: bool = True
) -> RecData:
    """RecData from ordered interactions ``df`` (see :func:`ordered_interactions`) and a vocabulary."""
    users, seqs, times, _ = encode_sequences(df, item_ids)
    keep = [i for i, s in enumerate(seqs) if len(s)]
    items = items_table(videos, item_ids)
    data = RecData(
        item_ids=np.asarray(item_ids).astype(str),
        user_ids=users[keep],
        sequences=[seqs[i] for i in keep],
        times=[times[i] for i in keep],
        items=items,
        time_unit=time_unit,
    )
    if with_texts:
        texts = item_texts(items)
        data.user_texts = [text_stream(s, texts) for s in data.sequences]
    return data


def dataset_to_rec_data(ds: VideoDataset, filt: SequenceFilter | None = None, with_texts: bool = True) -> RecData:
    """All (filtered) interactions of ``ds`` as training data, e.g. to train a model for serving.

    The vocabulary is built from these same interactions (there is no test part here).
    """
    filt = filt or SequenceFilter()
    df, unit = ordered_interactions(ds.interactions)
    df = filter_users(df, filt.min_user_interactions)
    item_ids = build_item_vocabulary(df, ds.videos, filt.min_item_users)
    return build_rec_data(df, ds.videos, item_ids, unit, with_texts)
