"""Tabular pipeline (fit on train only), tuning on validation only, and interval coverage on synthetic
tasks with known noise (all synthetic unless the test says "real")."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vidpop.data.splits import Split
from vidpop.features.tabular import TabularConfig, TabularFeaturizer
from vidpop.training import metrics
from vidpop.training.conformal import ConformalizedQuantile, NormalizedConformal, SplitConformal


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    words = np.array(["cat", "dog", "cook", "bread", "diy", "wood", "lamp", "fyp", "travel", "sea"])
    return pd.DataFrame(
        {
            "video_id": [f"v{i}" for i in range(n)],
            "title": [" ".join(rng.choice(words, 4)) for _ in range(n)],
            "tags": ["|".join(rng.choice(words, rng.integers(0, 4))) for _ in range(n)],
            "published_at": pd.Timestamp("2023-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 300, n), "D"),
            "duration": rng.integers(5, 120, n).astype(float),
            "video_width": 576.0,
            "video_height": 1024.0,
            "music_duration": rng.integers(5, 120, n).astype(float),
            "music_title": rng.choice(["original sound", "a song"], n),
            "language": rng.choice(["en", "es", "un"], n),
            "author_id": [f"a{i % 7}" for i in range(n)],
            "author_followers": rng.integers(0, 10**6, n).astype(float),
        }
    )


def test_tabular_transforms_are_fitted_on_the_training_rows_only() -> None:
    tr, te = _frame(80, 0), _frame(40, 1)
    cfg = TabularConfig(svd_dim=4, embedding_pca=0)
    a = TabularFeaturizer(cfg).fit(tr).transform(te)
    te2 = te.copy()
    te2["title"] = "completely different words here"
    # fitting again on the same training rows: test rows' content never changes the fitted transforms
    b = TabularFeaturizer(cfg).fit(tr).transform(te)
    np.testing.assert_array_equal(a, b)
    f = TabularFeaturizer(cfg).fit(tr)
    before = f.svd_.components_.copy()
    f.transform(te2)
    np.testing.assert_array_equal(f.svd_.components_, before)
    # and fitting on other rows does change them (the check is not vacuous)
    c = TabularFeaturizer(cfg).fit(pd.concat([tr, te2])).transform(te)
    assert not np.allclose(a, c, equal_nan=True)
    names = f.names_
    for n in ("duration", "music_duration", "original_sound", "hour", "weekday", "language=en", "caption_chars",
              "n_hashtags", "caption_svd0", "log1p_author_followers", "aspect"):  # fmt: skip
        assert n in names
    assert a.shape == (40, len(names))


def test_smp_tabular_features_hold_every_field_real_data() -> None:
    from vidpop.data.adapters import get_adapter
    from vidpop.errors import DataNotFoundError

    try:
        ds = get_adapter("smp_video_2025").load()
    except DataNotFoundError as exc:
        pytest.skip(f"SMP-Video not staged: {exc}")
    frame = ds.videos_with_authors()
    lab = frame[frame["popularity"].notna()].head(500)
    f = TabularFeaturizer(TabularConfig(svd_dim=8, embedding_pca=0)).fit(lab)
    x = f.transform(lab)
    need = ["video_width", "video_height", "duration", "music_duration", "original_sound", "hour", "weekday",
            "caption_chars", "n_hashtags", "n_suggested_words", "caption_svd0", "log1p_author_followers",
            "log1p_author_user_digg_count", "log_likes_per_follower"]  # fmt: skip
    assert set(need) <= set(f.names_) and any(n.startswith("language=") for n in f.names_)
    j = f.names_.index("music_duration")
    assert np.isfinite(x[:, j]).mean() > 0.9  # the adapter now carries music_duration
    # the features carry signal: author followers rank-correlate with the organisers' popularity
    rho = metrics.spearman(lab["popularity"], x[:, f.names_.index("log1p_author_followers")])
    assert rho > 0.3


# ------------------------------------------------------------------------------------------ tuning
def _regression(n: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    y = X[:, 0] + np.sin(2 * X[:, 1]) + 0.3 * rng.normal(size=n)
    return X, y, Split(np.arange(0, 250), np.arange(250, 320), np.arange(320, n))


def test_tuning_uses_the_validation_part_only() -> None:
    from vidpop.experiments.leaderboard_models import run_lightgbm

    X, y, sp = _regression()
    a = run_lightgbm(X, y, sp, n_trials=6, quantiles=False)[0]
    y_scrambled = y.copy()
    y_scrambled[sp.test] = np.random.default_rng(9).permutation(y[sp.test]) * 10 - 3
    b = run_lightgbm(X, y_scrambled, sp, n_trials=6, quantiles=False)[0]
    assert a.params == b.params and a.tuning.trials == b.tuning.trials  # test labels moved nothing
    np.testing.assert_array_equal(a.pred_test, b.pred_test)
    # validation labels do drive the choice (the test above is not vacuous)
    y_val = y.copy()
    y_val[sp.val] = np.random.default_rng(3).permutation(y[sp.val])
    c = run_lightgbm(X, y_val, sp, n_trials=6, quantiles=False)[0]
    assert c.tuning.trials != a.tuning.trials
    # the defaults are the first trial, so the chosen model is never worse on validation than the default
    assert a.tuning.best_value <= a.tuning.trials[0]["value"]


def test_chosen_hyper_parameters_are_recorded_in_the_model_folder(tmp_path) -> None:
    import json

    from vidpop.experiments.leaderboard_models import run_lightgbm, save_run
    from vidpop.models.base import load_model

    X, y, sp = _regression()
    run = run_lightgbm(X, y, sp, n_trials=3, quantiles=False)[0]
    save_run(run, tmp_path / "m")
    rec = json.loads((tmp_path / "m" / "tuning.json").read_text())
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())["config"]
    assert rec["best_params"] == run.params and rec["n_trials"] == 3
    assert all(cfg[k] == v for k, v in run.params.items())
    np.testing.assert_allclose(load_model(tmp_path / "m").predict(X[sp.test]), run.pred_test)


# ------------------------------------------------------------------------------------------ intervals
def _hetero(n: int, seed: int):
    """y = x + σ(x)·ε with σ(x) = 0.05 + x², ε ~ N(0, 1): the true 95% half-width is 1.96·σ(x)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, n)
    sigma = 0.05 + x**2
    return x, x + sigma * rng.normal(size=n), sigma


def test_cqr_covers_95_percent_with_narrower_intervals_than_split_conformal() -> None:
    from vidpop.models.registry import build_model

    x, y, _ = _hetero(2000, 0)
    xc, yc, _ = _hetero(1000, 1)
    xt, yt, sigma_t = _hetero(20000, 2)
    fit = lambda **kw: build_model("lightgbm", n_estimators=300, **kw).fit(x[:, None], y)  # noqa: E731
    lo_m, hi_m, mid = fit(objective="quantile", alpha=0.025), fit(objective="quantile", alpha=0.975), fit()
    cqr = ConformalizedQuantile(0.95).fit(lo_m.predict(xc[:, None]), hi_m.predict(xc[:, None]), yc)
    lo, hi = cqr.interval(lo_m.predict(xt[:, None]), hi_m.predict(xt[:, None]))
    assert abs(metrics.interval_coverage(yt, lo, hi) - 0.95) < 0.015
    sc = SplitConformal().fit(mid.predict(xc[:, None]), yc)
    slo, shi = sc.interval(mid.predict(xt[:, None]), 0.95)
    assert abs(metrics.interval_coverage(yt, slo, shi) - 0.95) < 0.015
    assert metrics.interval_width(lo, hi) < 0.9 * metrics.interval_width(slo, shi)
    # the adaptive band tracks the known noise: width correlates with σ(x)
    assert np.corrcoef(hi - lo, sigma_t)[0, 1] > 0.8


def test_normalized_conformal_with_the_true_scale_is_nominal_and_sharp() -> None:
    xc, yc, sc = _hetero(2000, 3)
    xt, yt, st = _hetero(20000, 4)
    nc = NormalizedConformal().fit(xc, sc, yc)
    lo, hi = nc.interval(xt, st, 0.95)
    assert abs(metrics.interval_coverage(yt, lo, hi) - 0.95) < 0.015
    oracle = metrics.interval_width(xt - 1.96 * st, xt + 1.96 * st)
    assert metrics.interval_width(lo, hi) == pytest.approx(oracle, rel=0.05)


def test_stacked_model_blends_and_covers_on_a_synthetic_task() -> None:
    from vidpop.models.registry import build_model

    rng = np.random.default_rng(5)

    def make(n: int):
        truth = rng.normal(size=n)
        sigma = 0.1 + 1.5 * rng.uniform(size=n)
        y = truth + sigma * rng.normal(size=n)
        # two noisy base predictors of the truth; the blend should beat both
        P = np.column_stack([truth + 0.2 * rng.normal(size=n), truth + 0.2 * rng.normal(size=n)])
        return P, y, sigma

    Pv, yv, sv = make(1500)
    Pt, yt, st = make(20000)
    m = build_model("stacked").fit(Pv, yv, sv[:, None])
    r = m.predict_interval(Pt, st[:, None])
    assert metrics.mae(yt, r["mean"]) < min(metrics.mae(yt, Pt[:, 0]), metrics.mae(yt, Pt[:, 1]))
    assert abs(metrics.interval_coverage(yt, r["lower"], r["upper"]) - 0.95) < 0.02
    assert m.scale_column_ == 1  # the informative spread beats the constant one on validation


def test_poe_calibration_brings_coverage_to_nominal() -> None:
    from vidpop.models.poe_inputs import PoEInputs
    from vidpop.models.registry import build_model
    from vidpop.training.loop import TrainConfig

    rng = np.random.default_rng(7)
    x = rng.normal(size=(5000, 3))
    y = x[:, 0] + 0.5 * rng.standard_t(3, size=5000)  # heavy tails: the Gaussian decoder mis-covers
    X = PoEInputs({"social": x})
    cfg = {"latent_dim": 4, "hidden": 16, "n_hidden": 2, "n_samples": 200, "kl_warmup_epochs": 2,
           "train": TrainConfig(epochs=15, batch_size=64, lr=3e-3, patience=0, progress=False)}  # fmt: skip
    tr, cal, te = np.arange(1500), np.arange(1500, 2500), np.arange(2500, 5000)
    m = build_model("variational_poe", cfg).fit(X.take(tr), y[tr])
    m.calibrate(X.take(cal), y[cal], (0.95,))
    r = m.predict_interval(X.take(te), 0.95)
    raw = m.predict_interval(X.take(te), 0.95, calibrated=False)
    assert bool(r["calibrated"]) and not bool(raw["calibrated"])
    cov = metrics.interval_coverage(y[te], r["lower"][:, 0], r["upper"][:, 0])
    assert 0.92 <= cov <= 0.98
    assert not np.allclose(r["lower"], raw["lower"])


def test_tag_target_encoding_uses_training_labels_only_and_leaves_the_video_itself_out() -> None:
    from vidpop.features.tabular import TagTargetEncoder

    tr, te = _frame(60, 0), _frame(20, 1)
    te["video_id"] = [f"t{i}" for i in range(20)]
    y = np.random.default_rng(3).normal(size=60)
    enc = TagTargetEncoder(smoothing=2.0).fit(tr, y)
    ftr, fte = enc.transform(tr), enc.transform(te)
    tags_tr = [{t for t in s.split("|") if t} for s in tr["tags"]]

    def want(tags: set[str], me: int | None) -> list[float]:
        te_vals, counts = [], []
        for t in sorted(tags):
            rows = [j for j, s in enumerate(tags_tr) if t in s and j != me]
            te_vals.append((y[rows].sum() + 2.0 * y.mean()) / (len(rows) + 2.0))
            counts.append(len(rows))
        return [np.mean(te_vals), np.max(te_vals), np.log1p(sum(counts))] if tags else [np.nan] * 3

    for i in range(60):
        np.testing.assert_allclose(ftr[i], want(tags_tr[i], i), rtol=1e-5)
    for i, s in enumerate(te["tags"]):
        np.testing.assert_allclose(fte[i], want({t for t in s.split("|") if t}, None), rtol=1e-5)
    assert np.isnan(ftr[[not s for s in tags_tr]]).all()  # no tag: no value, not a made-up one
