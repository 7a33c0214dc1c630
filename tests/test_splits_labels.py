"""Splits, labels and fitted transforms: leakage rules (everything fitted on train only) on SYNTHETIC
fixtures built here, plus the user split on a real MicroLens slice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vidpop.config import dataset_dir
from vidpop.data.labels import PAPER_ENGAGEMENT_WEIGHTS, EngagementScorer, MedianSplitLabeler, log_targets
from vidpop.data.preprocessing import MultiHotEncoder, Standardizer, Vocabulary, tokenize
from vidpop.data.splits import Split, UserSplit, random_split, split_videos, temporal_split, user_split
from vidpop.errors import VidpopError


# ------------------------------------------------------------------------------------------ splits
def _times(n: int = 400, seed: int = 0) -> pd.Series:
    """SYNTHETIC publish times spread over 2023, in random order, some missing."""
    rng = np.random.default_rng(seed)
    t = pd.Series(pd.Timestamp("2023-01-01", tz="UTC") + pd.to_timedelta(rng.uniform(0, 365, n), unit="D"))
    t[rng.choice(n, 10, replace=False)] = pd.NaT
    return t


@pytest.mark.parametrize("horizon", [0, 14, "36h"])
def test_temporal_split_respects_cutoff_and_horizon(horizon: int | str) -> None:
    t = _times()
    cutoff = pd.Timestamp("2023-10-01", tz="UTC")
    gap = pd.Timedelta(days=horizon) if isinstance(horizon, int) else pd.Timedelta(horizon)
    s = temporal_split(t, "2023-10-01", horizon=horizon, val_frac=0.1)
    assert (t.iloc[s.train] < cutoff - gap).all() and (t.iloc[s.val] < cutoff - gap).all()
    assert (t.iloc[s.test] >= cutoff).all()
    # validation is the latest part of the training period
    assert t.iloc[s.val].min() >= t.iloc[s.train].max()
    # nothing in the gap, nothing without a time; everything else is used
    in_gap = ((t >= cutoff - gap) & (t < cutoff)).to_numpy()
    used = np.zeros(len(t), bool)
    used[np.concatenate([s.train, s.val, s.test])] = True
    assert not used[in_gap].any() and not used[t.isna().to_numpy()].any()
    assert used.sum() == t.notna().sum() - in_gap.sum()
    assert s.info["horizon_days"] == pytest.approx(gap / pd.Timedelta(days=1))


def test_temporal_split_test_end_and_naive_cutoff() -> None:
    t = _times()
    s = temporal_split(t.dt.tz_localize(None), "2023-06-01", test_end="2023-07-01")
    assert (t.iloc[s.test] >= pd.Timestamp("2023-06-01", tz="UTC")).all()
    assert (t.iloc[s.test] < pd.Timestamp("2023-07-01", tz="UTC")).all()
    assert len(s.test) > 0


def test_random_split_sizes_and_seed() -> None:
    a, b = random_split(1000, 0.2, 0.1, seed=3), random_split(1000, 0.2, 0.1, seed=3)
    assert a.sizes() == {"train": 700, "val": 100, "test": 200}
    assert np.array_equal(a.test, b.test)
    assert not np.array_equal(a.test, random_split(1000, 0.2, 0.1, seed=4).test)
    with pytest.raises(VidpopError):
        random_split(10, 0.6, 0.5)


def test_grouped_random_split_keeps_groups_together() -> None:
    rng = np.random.default_rng(1)
    groups = rng.integers(0, 60, 500).astype(str)  # SYNTHETIC: 60 groups of uneven size
    s = random_split(len(groups), 0.2, 0.1, seed=0, groups=groups)
    parts = [set(groups[idx]) for idx in (s.train, s.val, s.test)]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert sum(map(len, parts)) == len(set(groups))
    assert len(s.train) + len(s.val) + len(s.test) == len(groups)
    assert len(parts[2]) == 12 and len(parts[1]) == 6  # fractions apply to groups


def test_named_time_split_latest_20_percent_is_test() -> None:
    t = _times(400)  # SYNTHETIC: 390 dated rows, 10 undated
    videos = pd.DataFrame({"published_at": t, "author_id": [f"a{i % 37}" for i in range(400)]})
    s = split_videos(videos, "time")
    assert s.sizes() == {"train": 273, "val": 39, "test": 78} and s.info["undated"] == 10
    assert t[s.train].max() < t[s.val].min() and t[s.val].max() < t[s.test].min()
    u = split_videos(videos, "user", seed=1)
    sides = [set(videos["author_id"].iloc[idx]) for idx in (u.train, u.val, u.test)]
    assert not (sides[0] & sides[2]) and not (sides[0] & sides[1]) and not (sides[1] & sides[2])
    with pytest.raises(VidpopError, match="no published_at"):
        split_videos(pd.DataFrame({"x": range(5)}), "time")
    with pytest.raises(VidpopError, match="no author_id"):
        split_videos(pd.DataFrame({"x": range(5)}), "user")
    with pytest.raises(VidpopError, match="random, time, user"):
        split_videos(videos, "weekly")


@pytest.mark.skipif(not dataset_dir("smp_video_2025").is_dir(), reason="needs the SMP-Video data")
def test_time_split_on_smp_video_tests_the_latest_800_labelled_posts() -> None:
    from vidpop.data.adapters import get_adapter
    from vidpop.models.poe_inputs import poe_targets

    ds = get_adapter("smp_video_2025").load()
    y, _, _ = poe_targets(ds)
    v = ds.videos[np.isfinite(y.reshape(len(y), -1)).any(axis=1)].reset_index(drop=True)
    assert len(v) == 4000
    s = split_videos(v, "time")
    assert s.sizes() == {"train": 2800, "val": 400, "test": 800}
    t = pd.to_datetime(v["published_at"], utc=True)
    assert t[s.test].min() >= t[s.val].max() >= t[s.train].max()
    # MAPE as the challenge computes it, on the log-scale popularity: the train-mean predictor's 0.369
    from vidpop.training.metrics import mape

    y = y.reshape(len(y), -1)[np.isfinite(y.reshape(len(y), -1)).any(axis=1), 0]
    assert mape(y[s.test], np.full(len(s.test), y[s.train].mean())) == pytest.approx(0.369, abs=5e-4)


def test_split_rejects_overlap() -> None:
    with pytest.raises(VidpopError, match="overlap"):
        Split(np.array([0, 1]), np.array([2]), np.array([1]))


def _synthetic_log(n_users: int = 120, seed: int = 0, with_time: bool = True) -> pd.DataFrame:
    """SYNTHETIC watch log: users with 1-15 interactions, random items, increasing times."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        n = int(rng.integers(1, 16))
        t = np.cumsum(rng.exponential(3600, n))
        for k in range(n):
            rows.append(
                (
                    f"u{u}",
                    f"v{rng.integers(0, 300)}",
                    pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(seconds=t[k]),
                    k,
                )
            )
    df = pd.DataFrame(rows, columns=["user_id", "video_id", "timestamp", "position"])
    if not with_time:
        df["timestamp"] = pd.NaT
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # order must not matter


def _check_user_split(df: pd.DataFrame, us: UserSplit, key: str) -> None:
    test = set(us.test_users)
    assert not test & set(us.train_users)
    assert set(df["user_id"]) == test | set(us.train_users)
    # truth rows never reach training; inputs do
    row = ["user_id", "video_id", key]
    truth = set(map(tuple, us.test_truth[row].astype(str).to_numpy()))
    train = set(map(tuple, us.train_interactions[row].astype(str).to_numpy()))
    assert not truth & train
    assert set(map(tuple, us.test_input[row].astype(str).to_numpy())) <= train
    # every test user has >= 1 input and >= 1 truth item, and its truth comes after its input
    assert set(us.test_input["user_id"]) == test == set(us.test_truth["user_id"])
    last_in = us.test_input.groupby("user_id")[key].max()
    first_truth = us.test_truth.groupby("user_id")[key].min()
    assert (first_truth >= last_in.loc[first_truth.index]).all()
    # rows are conserved
    assert len(us.train_interactions) + len(us.test_truth) == len(df)


def test_user_split_with_timestamps() -> None:
    df = _synthetic_log()
    us = user_split(df, test_frac=0.25, input_frac=0.75, seed=0)
    _check_user_split(df, us, "timestamp")
    singles = (df.groupby("user_id").size() == 1).sum()
    assert singles > 0 and us.info["single_interaction_users"] == singles
    assert len(us.test_users) == round((df["user_id"].nunique() - singles) * 0.25)


def test_user_split_with_positions_only_and_short_input() -> None:
    df = _synthetic_log(with_time=False, seed=2)
    long, short = user_split(df, input_frac=0.75, seed=0), user_split(df, input_frac=0.25, seed=0)
    _check_user_split(df, short, "position")
    assert np.array_equal(long.test_users, short.test_users)
    assert len(short.test_input) < len(long.test_input)


def test_user_split_int_user_ids_still_split() -> None:
    df = _synthetic_log(seed=3)
    df["user_id"] = df["user_id"].str[1:].astype(int)
    us = user_split(df, test_frac=0.3, seed=0)
    assert len(us.test_truth) > 0
    assert set(us.test_truth["user_id"].astype(str)) == set(us.test_users)


def test_user_split_on_real_microlens_slice() -> None:
    """REAL data: the first 2,000 MicroLens-50k users (positions only, no timestamps)."""
    pairs = dataset_dir("microlens") / "MicroLens-50k_pairs.tsv"
    if not pairs.exists():
        pytest.skip("MicroLens data not staged")
    rows = []
    with open(pairs) as fh:
        for _, line in zip(range(2000), fh, strict=False):
            user, items = line.rstrip("\n").split("\t")
            rows += [(user, item, k) for k, item in enumerate(items.split())]
    df = pd.DataFrame(rows, columns=["user_id", "video_id", "position"])
    us = user_split(df, test_frac=0.2, input_frac=0.75, seed=0)
    _check_user_split(df, us, "position")
    assert len(us.test_users) == 400  # every MicroLens user has >= 5 interactions


# ------------------------------------------------------------------------------------------ labels
def _videos(n: int, seed: int, cols: tuple[str, ...] = ("views", "likes", "coins", "favorites")) -> pd.DataFrame:
    """SYNTHETIC heavy-tailed counts."""
    rng = np.random.default_rng(seed)
    views = rng.lognormal(8, 2, n)
    data = {"views": views, "likes": views * rng.uniform(0.01, 0.1, n)}
    data["coins"] = data["likes"] * rng.uniform(0.1, 0.5, n)
    data["favorites"] = data["likes"] * rng.uniform(0.1, 0.5, n)
    return pd.DataFrame({c: data[c] for c in cols})


def test_engagement_scorer_renormalises_over_available_counts() -> None:
    train = _videos(300, 0, cols=("views", "likes"))
    sc = EngagementScorer(n_classes=5).fit(train)
    w = PAPER_ENGAGEMENT_WEIGHTS
    assert sc.used_weights_ == pytest.approx({"views": w["views"] / 0.85, "likes": w["likes"] / 0.85})
    assert sum(sc.used_weights_.values()) == pytest.approx(1.0)
    # an all-NaN count column is "not available" either
    train["coins"] = np.nan
    assert set(EngagementScorer().fit(train).used_weights_) == {"views", "likes"}
    with pytest.raises(VidpopError, match="none of the weighted counts"):
        EngagementScorer().fit(pd.DataFrame({"shares": [1.0, 2.0]}))


def test_engagement_scorer_cuts_come_from_train_only() -> None:
    train, test = _videos(500, 0), _videos(200, 1)
    sc = EngagementScorer(n_classes=4).fit(train)
    cuts, lo, hi = sc.cuts_.copy(), sc.min_.copy(), sc.max_.copy()
    # equal-sized classes on train
    assert np.bincount(sc.transform(train), minlength=4).tolist() == [125, 125, 125, 125]
    # transforming test rows does not move the thresholds ...
    y_test = sc.transform(test)
    assert np.array_equal(sc.cuts_, cuts) and np.array_equal(sc.min_, lo) and np.array_equal(sc.max_, hi)
    # ... and a test row's class does not depend on which other test rows are transformed with it
    extreme = test.copy()
    extreme.iloc[:100] *= 1e6
    assert np.array_equal(sc.transform(extreme)[100:], y_test[100:])
    assert np.array_equal(sc.transform(test.iloc[::-1])[::-1], y_test)
    # whereas fitting on other rows does move them
    assert not np.allclose(EngagementScorer(n_classes=4).fit(extreme).cuts_, cuts)


def test_engagement_scorer_missing_counts() -> None:
    train = _videos(200, 0)
    sc = EngagementScorer(n_classes=3).fit(train)
    row = train.iloc[:2].copy()
    row.loc[row.index[0], ["likes", "coins", "favorites"]] = np.nan  # only views known: scored on views
    row.loc[row.index[1], :] = np.nan  # nothing known: no class
    y = sc.transform(row)
    assert y[0] >= 0 and y[1] == -1
    views_only = EngagementScorer(weights={"views": 1.0}, n_classes=3)
    views_only.min_, views_only.max_ = sc.min_[:1], sc.max_[:1]
    views_only.used_weights_ = {"views": 1.0}
    assert sc.score(row)[0] == pytest.approx(views_only.score(row)[0])


def test_engagement_scorer_fixed_cut_points() -> None:
    sc = EngagementScorer(weights={"views": 1.0}, n_classes=3, cut_points=[0.7, 0.3]).fit(_videos(100, 0))
    assert sc.cuts_.tolist() == [0.3, 0.7]
    with pytest.raises(VidpopError, match="need 2 cut points"):
        EngagementScorer(n_classes=3, cut_points=[0.5]).fit(_videos(10, 0))


def test_median_split_threshold_from_train_and_missing_values() -> None:
    train = pd.DataFrame({"views": [1.0, 2.0, 3.0, 4.0, 100.0], "followers": [1.0, 1.0, 1.0, 1.0, 0.0]})
    lab = MedianSplitLabeler("views").fit(train)
    assert lab.threshold_ == 3.0
    test = pd.DataFrame({"views": [2.5, 3.5, np.nan], "followers": [1.0, 1.0, 1.0]})
    assert lab.transform(test).tolist() == [0, 1, -1]
    assert lab.threshold_ == 3.0
    norm = MedianSplitLabeler("views", normalise_by="followers").fit(train)
    assert norm.normalised(train)[-1] == 100.0  # followers clipped at 1


def test_log_targets() -> None:
    df = pd.DataFrame({"views": [0.0, np.e - 1, np.nan], "likes": [1.0, 2.0, 3.0]})
    y = log_targets(df, ["views", "likes"])
    assert y.shape == (3, 2) and y[1, 0] == pytest.approx(1.0) and np.isnan(y[2, 0])
    with pytest.raises(VidpopError, match="not in the data"):
        log_targets(df, ["shares"])
    with pytest.raises(VidpopError, match="non-negative"):
        log_targets(pd.DataFrame({"views": [-1.0]}), ["views"])


# ----------------------------------------------------------------------------------- preprocessing
def test_standardizer_fitted_on_train_only() -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(5, 2, (500, 3))
    train[0, 1] = np.nan
    test = rng.normal(50, 20, (50, 3))
    st = Standardizer().fit(train)
    z_train = st.transform(train)
    assert np.allclose(np.nanmean(np.where(np.isnan(train), np.nan, z_train), axis=0), 0, atol=1e-5)
    assert z_train[0, 1] == 0.0  # NaN -> train mean
    mean = st.mean_.copy()
    z_test = st.transform(test)
    assert np.array_equal(st.mean_, mean)
    assert z_test.mean() > 5  # test is far from the train distribution and stays so
    const = Standardizer().fit(np.ones((10, 1)))
    assert np.all(np.isfinite(const.transform(np.full((2, 1), 3.0))))
    with pytest.raises(VidpopError):
        Standardizer().fit(np.zeros((0, 2)))


def test_vocabulary_fitted_on_train_only() -> None:
    vocab = Vocabulary(min_count=1).fit(["cat videos are great", "great cat"])
    ids = vocab.encode("great zebra cat", max_len=5)
    assert ids.tolist() == [vocab.index_["great"], Vocabulary.UNK, vocab.index_["cat"], 0, 0]
    assert "zebra" not in vocab and len(vocab) == 2 + 4
    assert Vocabulary(min_count=2).fit(["cat videos are great", "great cat"]).tokens_[2:] == ["cat", "great"]
    # encode_many accepts a pandas Series (titles column) and an empty input
    out = vocab.encode_many(pd.Series(["cat", "are great videos videos"]), max_len=3)
    assert out.shape == (2, 3) and out[1, 2] == vocab.index_["videos"]
    assert vocab.encode_many(iter([]), max_len=3).shape == (0, 3)


def test_tokenize_missing_text() -> None:
    assert tokenize("Don't STOP, 2 me!") == ["don't", "stop", "2", "me"]
    assert tokenize(None) == [] and tokenize(float("nan")) == [] and tokenize(pd.NA) == []
    assert "nan" not in Vocabulary().fit(pd.Series(["a b", None, np.nan], dtype=object))


def test_multihot_encoder_vocab_from_train() -> None:
    enc = MultiHotEncoder(min_count=2).fit(["a|b", "a|c", "b", None, np.nan])
    assert sorted(enc.vocab_) == ["a", "b"]
    x = enc.transform(["a|z", "c", None])
    assert x.shape == (3, 2) and x[0, enc.vocab_["a"]] == 1 and x[1].sum() == 0 and x[2].sum() == 0
