"""Retrieval-augmented features: the leak rules (never itself, only earlier videos on a time split).

Synthetic embeddings (labelled as such): clustered random vectors with known times and authors.
"""

from __future__ import annotations

import numpy as np
import pytest

from vidpop.errors import VidpopError
from vidpop.features.retrieval_features import RetrievalConfig, RetrievalFeaturizer


def _data(n: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(5, 16))
    c = rng.integers(0, 5, n)
    emb = centres[c] + 0.1 * rng.normal(size=(n, 16))
    y = c.astype(float) + 0.01 * rng.normal(size=n)  # popularity = the cluster: neighbours know it
    times = np.datetime64("2023-01-01") + rng.permutation(n).astype("timedelta64[D]")
    ids = np.array([f"v{i}" for i in range(n)])
    authors = np.array([f"a{i % 40}" for i in range(n)])
    return emb, y, times, ids, authors


def test_a_video_never_retrieves_itself_but_finds_its_exact_duplicate() -> None:
    emb, y, _, ids, _ = _data()
    emb[1] = emb[0]  # a different video with the identical embedding: must still be retrievable
    rf = RetrievalFeaturizer(RetrievalConfig(k=5, time_aware=False)).fit(emb, y, ids)
    nbrs = rf.neighbours(emb, ids)
    for i, (idx, _) in enumerate(nbrs):
        assert i not in idx.tolist() and len(idx) == 5
    assert nbrs[0][0][0] == 1 and nbrs[1][0][0] == 0  # the duplicate is the nearest, at similarity 1
    assert nbrs[0][1][0] == pytest.approx(1.0, abs=1e-5)


def test_on_a_time_split_only_earlier_training_videos_count() -> None:
    emb, y, times, ids, _ = _data()
    rf = RetrievalFeaturizer(RetrievalConfig(k=10, time_aware=True)).fit(emb, y, ids, times)
    nbrs = rf.neighbours(emb, ids, times)
    checked = 0
    for i, (idx, _) in enumerate(nbrs):
        assert (times[idx] < times[i]).all()
        checked += len(idx)
    assert checked > 1000  # the rule was exercised, not vacuous
    first = int(np.argmin(times))  # the earliest video has no earlier neighbour at all
    assert len(nbrs[first][0]) == 0
    feats = rf.transform(emb, ids, times)
    names = rf.feature_names()
    assert np.isnan(feats[first, names.index("nn_wmean")]) and feats[first, names.index("nn_count")] == 0
    # without the time rule the same query has neighbours (so the empty list above is the rule's doing)
    free = RetrievalFeaturizer(RetrievalConfig(k=10, time_aware=False)).fit(emb, y, ids)
    assert len(free.neighbours(emb[first : first + 1], ids[first : first + 1])[0][0]) == 10


def test_queries_later_than_training_see_all_of_it_and_features_carry_the_signal() -> None:
    emb, y, times, ids, _ = _data(300)
    tr, te = np.arange(200), np.arange(200, 300)
    late = times.max() + np.timedelta64(10, "D") + np.zeros(100, "timedelta64[D]")
    rf = RetrievalFeaturizer(RetrievalConfig(k=8)).fit(emb[tr], y[tr], ids[tr], times[tr])
    f = rf.transform(emb[te], ids[te], late)
    wmean = f[:, rf.feature_names().index("nn_wmean")]
    assert np.abs(wmean - y[te]).mean() < 0.1  # neighbours share the cluster's popularity


def test_author_prior_uses_only_the_same_authors_earlier_posts() -> None:
    emb, y, times, ids, authors = _data()
    rf = RetrievalFeaturizer(RetrievalConfig(k=5)).fit(emb, y, ids, times, authors)
    f = rf.transform(emb, ids, times, authors)
    names = rf.feature_names()
    mean_col, count_col = names.index("author_prior_mean"), names.index("author_prior_count")
    for i in range(len(y)):
        same = (authors == authors[i]) & (times < times[i])
        assert f[i, count_col] == same.sum()
        if same.any():
            assert f[i, mean_col] == pytest.approx(y[same].mean(), rel=1e-5)
        else:
            assert np.isnan(f[i, mean_col])


def test_time_aware_retrieval_needs_times() -> None:
    emb, y, _, ids, _ = _data(20)
    with pytest.raises(VidpopError):
        RetrievalFeaturizer(RetrievalConfig(time_aware=True)).fit(emb, y, ids)
