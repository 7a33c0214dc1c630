"""The recommendation protocol: leakage proofs, masking of seen items, metrics plumbing, LOO.

End-to-end tests use a tiny slice of the real MicroLens-50k log (first 400 users); the unit
tests for timestamps build a small synthetic log (labelled as such).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from vidpop.config import dataset_dir
from vidpop.data.schema import VideoDataset
from vidpop.data.sequences import ordered_interactions
from vidpop.models.rec_baselines.simple import PopularityRecommender, RandomRecommender
from vidpop.models.recommender import RecData, Recommender, UserQuery
from vidpop.training.rec_protocol import (
    ProtocolConfig,
    RecSplit,
    evaluate,
    fit_and_evaluate,
    loo_split,
    make_user_split,
)

pytestmark = pytest.mark.skipif(not dataset_dir("microlens").exists(), reason="MicroLens data not staged")


@pytest.fixture(scope="module")
def slice_ds() -> VideoDataset:
    from vidpop.data.adapters import get_adapter

    ds = get_adapter("microlens").load()
    users = pd.unique(ds.interactions["user_id"])[:400]
    inter = ds.interactions[ds.interactions["user_id"].isin(set(users))]
    return VideoDataset("microlens_slice", ds.videos, interactions=inter)


def _pairs(data: RecData) -> set[tuple[str, str]]:
    return {(u, data.item_ids[i]) for u, s in zip(data.user_ids, data.sequences, strict=True) for i in s}


@pytest.mark.parametrize("mode", ["long", "short"])
def test_no_ground_truth_pair_reaches_training(slice_ds: VideoDataset, mode: str) -> None:
    cfg = ProtocolConfig(mode=mode, progress=False)
    split = make_user_split(slice_ds, cfg)
    truth = set(zip(split.truth_rows["user_id"], split.truth_rows["video_id"], strict=True))
    assert truth, "the split must have ground truth to predict"
    assert not truth & _pairs(split.train)
    # a test user's training sequence is exactly the history the query gives
    pos = {u: i for i, u in enumerate(split.train.user_ids)}
    for u, q in zip(split.test_user_ids, split.queries, strict=True):
        np.testing.assert_array_equal(split.train.sequences[pos[u]], q.history)
    # short mode gives less input than long mode
    if mode == "short":
        long = make_user_split(slice_ds, ProtocolConfig(mode="long", progress=False))
        assert np.mean([len(q.history) for q in split.queries]) < np.mean([len(q.history) for q in long.queries])


def _with_canary(ds: VideoDataset, user: str) -> VideoDataset:
    """``ds`` plus a brand-new video watched once, by ``user``, after everything else."""
    videos = pd.concat([ds.videos, pd.DataFrame({"video_id": ["canary"], "title": ["canary video"]})])
    last = ds.interactions[ds.interactions["user_id"] == user]["position"].max()
    row = pd.DataFrame({"user_id": [user], "video_id": ["canary"], "position": [int(last) + 1]})
    return VideoDataset(ds.name, videos, interactions=pd.concat([ds.interactions, row], ignore_index=True))


def test_canary_in_ground_truth_never_reaches_vocab_or_popularity(slice_ds: VideoDataset) -> None:
    cfg = ProtocolConfig(progress=False)
    base = make_user_split(slice_ds, cfg)
    test_user, train_user = (
        base.test_user_ids[0],
        next(u for u in base.train.user_ids if u not in set(base.test_user_ids)),
    )
    split = make_user_split(_with_canary(slice_ds, test_user), cfg)
    assert ((split.truth_rows["user_id"] == test_user) & (split.truth_rows["video_id"] == "canary")).any()
    assert "canary" not in set(split.train.item_ids)
    pop = PopularityRecommender().fit(split.train)
    assert len(pop.counts_) == split.train.n_items and pop.counts_.sum() == sum(
        len(set(s)) for s in split.train.sequences
    )
    i = list(split.test_user_ids).index(test_user)
    assert split.truth_oov[i] >= 1  # it stays relevant: an unrecommendable miss, not a dropped item
    # negative control: the same canary watched by a *training* user does enter the vocabulary
    control = make_user_split(_with_canary(slice_ds, train_user), cfg)
    assert "canary" in set(control.train.item_ids)


class SpyRecommender(Recommender):
    """Records what it is given; scores by popularity (test helper)."""

    model_name = "spy"

    def fit(self, X: RecData, y: Any = None, **kwargs: Any) -> SpyRecommender:
        self.fit_data_ = X
        self.pop_ = PopularityRecommender().fit(X)
        self.seen_queries_: list[UserQuery] = []
        return self

    def score(self, X: list[UserQuery], y: Any = None) -> np.ndarray:
        self.seen_queries_.extend(X)
        return self.pop_.full_sort_scores(X)


def test_cold_start_models_never_receive_video_ids(slice_ds: VideoDataset) -> None:
    cfg = ProtocolConfig(cold_start=True, progress=False)
    split = make_user_split(slice_ds, cfg)
    spy = SpyRecommender()
    fit_and_evaluate(spy, split, cfg)
    assert len(spy.seen_queries_) == len(split.queries) > 0
    assert all(len(q.history) == 0 and q.times is None and q.text for q in spy.seen_queries_)
    # the test users are absent from the fitting data altogether
    assert not set(spy.fit_data_.user_ids) & set(split.test_user_ids)
    # their input-period videos are described in words: titles appear in the query text
    titles = slice_ds.videos.set_index("video_id")["title"]
    inp_user = split.test_user_ids[0]
    inp = slice_ds.interactions[slice_ds.interactions["user_id"] == inp_user].sort_values("position")
    assert str(titles[inp["video_id"].iloc[0]]) in spy.seen_queries_[0].text


class OracleRecommender(Recommender):
    """Scores the split's ground truth highest, and each query's history even higher (test helper)."""

    model_name = "oracle"

    def __init__(self, split: RecSplit) -> None:
        super().__init__()
        self.split = split

    def fit(self, X: RecData, y: Any = None, **kwargs: Any) -> OracleRecommender:
        self.n_ = X.n_items
        return self

    def score(self, X: list[UserQuery], y: Any = None) -> np.ndarray:
        out = np.zeros((len(X), self.n_))
        for r, q in enumerate(X):
            i = next(i for i, sq in enumerate(self.split.queries) if sq is q)
            out[r, self.split.truth[i]] = 1.0
            out[r, q.history] = 2.0
        return out


def test_seen_items_masked_and_metrics(slice_ds: VideoDataset) -> None:
    cfg = ProtocolConfig(progress=False, batch_size=64)
    split = make_user_split(slice_ds, cfg)
    oracle = OracleRecommender(split).fit(split.train)
    recs = oracle.recommend(split.queries[:50], k=10, exclude_seen=True)
    for q, r in zip(split.queries[:50], recs, strict=True):
        assert not set(r) & set(q.history)
    m = evaluate(oracle, split, cfg)
    has_truth = np.array([len(t) > 0 for t in split.truth])
    assert m["HR@10"] == pytest.approx(has_truth.mean())
    n_in = np.array([len(t) for t in split.truth])
    n_all = n_in + split.truth_oov  # out-of-vocabulary truth stays in the denominator
    assert m["P@5"] == pytest.approx(np.mean(np.minimum(n_in, 5) / 5))
    assert m["R@5"] == pytest.approx(np.mean(np.minimum(n_in, 5) / n_all))
    # with seen items kept as candidates the history outranks the truth and the oracle collapses
    keep = ProtocolConfig(progress=False, exclude_seen=False)
    split_keep = make_user_split(slice_ds, keep)
    m_keep = evaluate(OracleRecommender(split_keep).fit(split_keep.train), split_keep, keep)
    assert m_keep["P@5"] < m["P@5"]
    rnd = evaluate(RandomRecommender().fit(split.train), split, cfg)
    assert rnd["HR@10"] < m["HR@10"]


def test_leave_one_out(slice_ds: VideoDataset) -> None:
    cfg = ProtocolConfig(progress=False)
    split = loo_split(slice_ds, cfg)
    df, _ = ordered_interactions(slice_ds.interactions)
    sizes = df.groupby("user_id").size()
    lengths = dict(zip(split.train.user_ids, map(len, split.train.sequences), strict=True))
    for u in split.test_user_ids[:50]:
        assert lengths[u] <= sizes[u] - 2  # last (test) and second-to-last (validation) held out
    last = df.groupby("user_id")["video_id"].last()
    assert (split.truth_rows.set_index("user_id")["video_id"] == last.loc[split.truth_rows["user_id"]].to_numpy()).all()
    assert all(len(t) + o == 1 for t, o in zip(split.truth, split.truth_oov, strict=True))


def test_timestamps_give_days_and_span_cut() -> None:
    """Synthetic log (labelled): 10 users x 8 daily interactions with real timestamps."""
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    rows = [(f"u{u}", f"v{(u + i) % 12}", t0 + pd.Timedelta(days=i)) for u in range(10) for i in range(8)]
    inter = pd.DataFrame(rows, columns=["user_id", "video_id", "timestamp"])
    videos = pd.DataFrame({"video_id": [f"v{i}" for i in range(12)], "title": [f"title {i}" for i in range(12)]})
    ds = VideoDataset("synthetic", videos, interactions=inter)
    split = make_user_split(ds, ProtocolConfig(mode="long", test_frac=0.3, progress=False))
    assert split.train.time_unit == "day"
    q = split.queries[0]
    assert np.allclose(np.diff(q.times), 1.0)  # one day apart
    assert len(q.history) == 6  # days 0..5.25 of a 7-day span -> 6 input items
