"""Train/validation/test splits shared by every model.

All splits return positional indices (numpy int arrays) into the frame they were built from,
so that features, labels and side tables can be sliced the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vidpop.errors import VidpopError


@dataclass
class Split:
    """Positional indices of the train, validation and test parts."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("train", "val", "test"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.int64))
        tr, va, te = set(self.train.tolist()), set(self.val.tolist()), set(self.test.tolist())
        overlap = (tr & te) | (tr & va) | (va & te)
        if overlap:
            raise VidpopError(f"split parts overlap on {len(overlap)} rows")

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def random_split(
    n: int, test_frac: float = 0.2, val_frac: float = 0.1, seed: int = 0, groups: np.ndarray | None = None
) -> Split:
    """Seeded random split. With ``groups``, all rows of a group land in the same part (e.g. tracks
    that repeat across playlists)."""
    if not 0 <= test_frac < 1 or not 0 <= val_frac < 1 or test_frac + val_frac >= 1:
        raise VidpopError("test_frac and val_frac must be in [0, 1) and sum below 1")
    rng = np.random.default_rng(seed)
    if groups is None:
        order = rng.permutation(n)
        n_test, n_val = round(n * test_frac), round(n * val_frac)
        info = {"kind": "random", "seed": seed}
        return Split(order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test], info)
    groups = np.asarray(groups)
    uniq = pd.unique(groups)
    perm = uniq[rng.permutation(len(uniq))]
    n_test, n_val = round(len(uniq) * test_frac), round(len(uniq) * val_frac)
    test_g, val_g = set(perm[:n_test]), set(perm[n_test : n_test + n_val])
    part = np.array([2 if g in test_g else 1 if g in val_g else 0 for g in groups])
    idx = np.arange(n)
    return Split(idx[part == 0], idx[part == 1], idx[part == 2], {"kind": "random_grouped", "seed": seed})


def temporal_split(
    times: pd.Series | np.ndarray,
    cutoff: str | pd.Timestamp,
    horizon: pd.Timedelta | str | int = 0,
    val_frac: float = 0.1,
    test_end: str | pd.Timestamp | None = None,
) -> Split:
    """Train on items published before ``cutoff - horizon``, test on items published at/after ``cutoff``.

    ``horizon`` (days if an int) is the gap between the last item seen in training and the first
    predicted item: predicting *horizon* days ahead. The last ``val_frac`` of the training period
    (by time) is held out for early stopping. Items without a time are dropped from all parts.
    """
    t = pd.to_datetime(pd.Series(np.asarray(times)), utc=True, errors="coerce")
    cutoff_ts = pd.Timestamp(cutoff)
    cutoff_ts = cutoff_ts.tz_localize("UTC") if cutoff_ts.tzinfo is None else cutoff_ts
    gap = pd.Timedelta(days=horizon) if isinstance(horizon, int | np.integer) else pd.Timedelta(horizon)
    train_end = cutoff_ts - gap
    idx = np.arange(len(t))
    known = t.notna().to_numpy()
    train_mask = known & (t < train_end).to_numpy()
    test_mask = known & (t >= cutoff_ts).to_numpy()
    if test_end is not None:
        end = pd.Timestamp(test_end)
        end = end.tz_localize("UTC") if end.tzinfo is None else end
        test_mask &= (t < end).to_numpy()
    train_idx = idx[train_mask]
    train_idx = train_idx[np.argsort(t.to_numpy()[train_idx], kind="stable")]
    n_val = round(len(train_idx) * val_frac)
    val_idx = train_idx[len(train_idx) - n_val :] if n_val else train_idx[:0]
    train_idx = train_idx[: len(train_idx) - n_val]
    info = {
        "kind": "temporal",
        "cutoff": str(cutoff_ts),
        "horizon": str(gap),
        "horizon_days": gap / pd.Timedelta(days=1),
        "train_end": str(train_end),
    }
    return Split(np.sort(train_idx), np.sort(val_idx), idx[test_mask], info)


@dataclass
class UserSplit:
    """Recommendation split: users in train keep their full history; each test user's history is
    cut into an *input* part (model may see it) and a *ground-truth* part (never seen in training)."""

    train_users: np.ndarray
    test_users: np.ndarray
    #: interactions usable for fitting: all train-user rows + input rows of test users
    train_interactions: pd.DataFrame
    #: input period of each test user (history given at prediction time)
    test_input: pd.DataFrame
    #: ground truth of each test user (to be predicted)
    test_truth: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)


def _order_key(interactions: pd.DataFrame) -> pd.Series:
    """Time of each interaction: the timestamp where known, else the position in the sequence."""
    if "timestamp" in interactions and interactions["timestamp"].notna().all():
        return interactions["timestamp"].astype("int64").astype("float64")
    if "position" in interactions and interactions["position"].notna().all():
        return interactions["position"].astype("float64")
    raise VidpopError("interactions need a timestamp or a position on every row to split by time")


def user_split(
    interactions: pd.DataFrame,
    test_frac: float = 0.2,
    input_frac: float = 0.75,
    seed: int = 0,
) -> UserSplit:
    """Split users (not rows) into train and test; cut each test user's own time span at
    ``input_frac`` (e.g. 9/12 = "long", 3/12 = "short"). A test user keeps at least one input and
    one ground-truth item, so users with a single interaction cannot be test users: they always
    stay in train (counted in ``info["single_interaction_users"]``); ``test_frac`` is a fraction of
    the users with two or more interactions."""
    if not 0 < input_frac < 1:
        raise VidpopError("input_frac must be in (0, 1)")
    df = interactions.copy()
    df["_t"] = _order_key(df).to_numpy()
    # Ties in time (same timestamp) fall back to the sequence position where there is one.
    order = ["user_id", "_t", "position"] if "position" in df and df["position"].notna().all() else ["user_id", "_t"]
    df = df.sort_values(order, kind="stable")
    size = df.groupby("user_id", sort=False)["_t"].transform("size")
    users = pd.unique(df["user_id"])
    eligible = pd.unique(df.loc[(size >= 2).to_numpy(), "user_id"])
    rng = np.random.default_rng(seed)
    perm = eligible[rng.permutation(len(eligible))]
    n_test = round(len(eligible) * test_frac)
    # Membership on the original values (ids may be ints); the returned arrays are strings.
    test_set = set(perm[:n_test].tolist())
    is_test = df["user_id"].isin(test_set).to_numpy()
    test_users = np.sort(np.asarray([str(u) for u in perm[:n_test]], dtype=str))
    train_users = np.sort(np.asarray([str(u) for u in users if u not in test_set], dtype=str))
    test_df = df[is_test]
    g = test_df.groupby("user_id", sort=False)["_t"]
    t0, t1 = g.transform("min"), g.transform("max")
    in_input = test_df["_t"] <= t0 + input_frac * (t1 - t0)
    # guarantee >= 1 input item and >= 1 truth item per test user (rank-based fallback)
    rank = test_df.groupby("user_id", sort=False).cumcount()
    n_user = g.transform("size")
    in_input = (in_input | (rank == 0)) & (rank < n_user - 1)
    test_input = test_df[in_input].drop(columns="_t").reset_index(drop=True)
    test_truth = test_df[~in_input].drop(columns="_t").reset_index(drop=True)
    train_inter = pd.concat([df[~is_test].drop(columns="_t"), test_input], ignore_index=True)
    info = {
        "kind": "user",
        "test_frac": test_frac,
        "input_frac": input_frac,
        "seed": seed,
        "cut": "per-user time span",
        "single_interaction_users": len(users) - len(eligible),
    }
    return UserSplit(train_users, test_users, train_inter, test_input, test_truth, info)


#: what ``vidpop train --split`` accepts for a table of videos
SPLIT_KINDS: tuple[str, ...] = ("random", "time", "user")


def split_videos(
    videos: pd.DataFrame, kind: str = "random", seed: int = 0, test_frac: float = 0.2, val_frac: float = 0.1
) -> Split:
    """The named 70/10/20 split of a videos table (``vidpop train --split``):

    * ``random``: seeded, grouped by the ``group`` column where the data has one (the same track in two
      playlists never lands on both sides);
    * ``time``: by ``published_at``: the latest ``test_frac`` of the dated rows is the test part and the
      ``val_frac`` before it the validation part (SMP-Video: the latest 800 of its 4,000 labelled posts);
      rows without a date are left out of every part;
    * ``user``: seeded, grouped by ``author_id``: no uploader has videos on both sides.
    """
    n = len(videos)
    if kind == "random":
        groups = videos["group"].astype(str).to_numpy() if "group" in videos else None
        return random_split(n, test_frac, val_frac, seed=seed, groups=groups)
    if kind == "user":
        if "author_id" not in videos or videos["author_id"].isna().all():
            raise VidpopError("this data has no author_id: --split user needs the uploader of every video")
        known = videos["author_id"].notna().to_numpy()
        # videos of unknown uploaders form one group each (they cannot leak an uploader across parts)
        groups = np.where(known, videos["author_id"].astype(str), [f"\0row{i}" for i in range(n)])
        sp = random_split(n, test_frac, val_frac, seed=seed, groups=groups)
        return Split(sp.train, sp.val, sp.test, {"kind": "user", "seed": seed, "grouped_by": "author_id"})
    if kind != "time":
        raise VidpopError(f"--split must be one of {', '.join(SPLIT_KINDS)}, got '{kind}'")
    t = pd.to_datetime(videos["published_at"], utc=True, errors="coerce") if "published_at" in videos else None
    if t is None or t.isna().all():
        raise VidpopError("this data has no published_at: use --split random (or user)")
    dated = np.flatnonzero(t.notna().to_numpy())
    order = dated[np.argsort(t.to_numpy()[dated], kind="stable")]
    m = len(order)
    n_test, n_val = round(m * test_frac), round(m * val_frac)
    info = {"kind": "time", "test_from": str(t.iloc[order[m - n_test]]) if n_test else None, "undated": n - m}
    return Split(order[: m - n_test - n_val], order[m - n_test - n_val : m - n_test], order[m - n_test :], info)
