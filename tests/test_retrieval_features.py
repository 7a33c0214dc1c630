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


def _brute_force(emb, y, ids, times, q_emb, q_ids, q_times, k):
    """Reference: full cosine matrix, leak filters, stable sort (synthetic data, labelled as such)."""
    a = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    b = q_emb / np.linalg.norm(q_emb, axis=1, keepdims=True)
    sims = b @ a.T
    out = []
    for i in range(len(b)):
        ok = ids != q_ids[i]
        if q_times is not None:
            ok &= times < q_times[i]
        cand = np.flatnonzero(ok)
        cand = cand[np.argsort(-sims[i, cand], kind="stable")][:k]
        out.append((cand, sims[i, cand]))
    return out


@pytest.mark.parametrize("time_aware", [True, False])
def test_batched_search_and_features_equal_a_brute_force_reference(time_aware: bool) -> None:
    # oversample=1 makes most early queries on the time split fall short of k and be searched again wider
    emb, y, times, ids, authors = _data(150, seed=3)
    emb = emb + 0.5 * np.random.default_rng(9).normal(size=emb.shape)  # no ties between neighbours
    cfg = RetrievalConfig(k=7, time_aware=time_aware, oversample=1)
    t = times if time_aware else None
    rf = RetrievalFeaturizer(cfg).fit(emb, y, ids, t, authors)
    got = rf.neighbours(emb, ids, t)
    ref = _brute_force(emb, y, ids, times, emb, ids, t, 7)
    short = 0
    for (gi, gs), (ri, rs) in zip(got, ref, strict=True):
        assert gi.tolist() == ri.tolist()
        np.testing.assert_allclose(gs, rs, atol=1e-5)
        short += len(ri) < 7
    assert short == (7 if time_aware else 0)  # the 7 earliest videos have 0..6 earlier ones
    f = rf.transform(emb, ids, t, authors)
    names = rf.feature_names()
    for i, (ri, rs) in enumerate(ref):
        if not len(ri):
            assert np.isnan(f[i, names.index("nn_mean")]) and f[i, names.index("nn_count")] == 0
            continue
        yy = y[ri]
        w = np.exp((rs - rs.max()) / cfg.temperature)
        w /= w.sum()
        want = {"nn_wmean": w @ yy, "nn_mean": yy.mean(), "nn_std": yy.std(), "nn_q10": np.quantile(yy, 0.1)}
        want |= {"nn_q50": np.quantile(yy, 0.5), "nn_q90": np.quantile(yy, 0.9), "nn_top1_y": yy[0]}
        want |= {"nn_top1_sim": rs[0], "nn_mean_sim": rs.mean(), "nn_count": len(ri)}
        o = np.argsort(yy, kind="stable")
        want["nn_wq50"] = yy[o][np.searchsorted(np.cumsum(w[o]), 0.5 - 1e-12)]
        for name, v in want.items():
            assert f[i, names.index(name)] == pytest.approx(v, rel=1e-4, abs=1e-4), (i, name)


def test_author_prior_without_time_leaves_only_itself_out() -> None:
    emb, y, _, ids, authors = _data(120, seed=1)
    rf = RetrievalFeaturizer(RetrievalConfig(k=5, time_aware=False)).fit(emb, y, ids, None, authors)
    # queries: the training videos themselves, plus unseen videos of known and of unknown authors
    q_ids = np.concatenate([ids, ["new1", "new2"]])
    q_auth = np.concatenate([authors, [authors[0], "nobody"]])
    q_emb = np.concatenate([emb, emb[:2]])
    f = rf.transform(q_emb, q_ids, None, q_auth)
    names = rf.feature_names()
    m, c = f[:, names.index("author_prior_mean")], f[:, names.index("author_prior_count")]
    for i in range(len(ids)):
        same = (authors == authors[i]) & (ids != ids[i])
        assert c[i] == same.sum() and m[i] == pytest.approx(y[same].mean(), rel=1e-5)
    assert c[-2] == (authors == authors[0]).sum() and m[-2] == pytest.approx(y[authors == authors[0]].mean(), rel=1e-5)
    assert c[-1] == 0 and np.isnan(m[-1])
