"""Asymmetric, Mondrian and support-clipped conformal intervals, the validation comparison of interval
methods, and the cross-fitted text-ridge features (issue 13)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vidpop.experiments.leaderboard_models import interval_choice
from vidpop.features.text_ridge import TextRidgeEncoder, video_text
from vidpop.training.conformal import AsymmetricConformal, MondrianConformal, SplitConformal, clip_to_support


def _cover(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    return float(np.mean((y >= lo) & (y <= hi)))


def test_asymmetric_conformal_is_nominal_and_narrower_under_skewed_noise() -> None:
    rng = np.random.default_rng(0)
    # y = ŷ + exponential noise: the residuals are one-sided, so ŷ ± q wastes the whole lower half
    pred_cal, pred_test = rng.normal(size=4000), rng.normal(size=20000)
    y_cal, y_test = pred_cal + rng.exponential(size=4000), pred_test + rng.exponential(size=20000)
    lo, hi = AsymmetricConformal().fit(pred_cal, y_cal).interval(pred_test, 0.95)
    slo, shi = SplitConformal().fit(pred_cal, y_cal).interval(pred_test, 0.95)
    assert 0.94 <= _cover(y_test, lo, hi) <= 0.96
    assert np.mean(hi - lo) < 0.65 * np.mean(shi - slo)  # exp: q.975 - q.025 = 3.66 vs 2 * q.95 = 5.99
    assert np.all(lo > pred_test - 0.1)  # the lower end sits at the prediction, not 3 below it


def test_mondrian_conformal_covers_every_group_and_is_narrow_where_the_noise_is_small() -> None:
    rng = np.random.default_rng(1)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        g = rng.integers(0, 2, n)
        p = rng.normal(size=n)
        return p, p + rng.normal(size=n) * np.where(g == 1, 3.0, 0.5), g

    pc, yc, gc = draw(4000)
    pt, yt, gt = draw(20000)
    lo, hi = MondrianConformal().fit(pc, yc, gc).interval(pt, gt, 0.95)
    slo, shi = SplitConformal().fit(pc, yc).interval(pt, 0.95)
    for g in (0, 1):
        m = gt == g
        assert 0.94 <= _cover(yt[m], lo[m], hi[m]) <= 0.96
    assert _cover(yt[gt == 1], slo[gt == 1], shi[gt == 1]) < 0.92  # one pooled quantile under-covers the noisy group
    assert np.mean((hi - lo)[gt == 0]) < 0.3 * np.mean((shi - slo)[gt == 0])
    # a group with too few calibration rows for the level falls back to the pooled quantile, not ±∞
    lo2, hi2 = MondrianConformal().fit(np.r_[pc, 0.0], np.r_[yc, 0.0], np.r_[gc, 7]).interval(np.zeros(1), [7], 0.95)
    assert np.isfinite(hi2 - lo2).all()


def test_clipping_to_the_label_support_keeps_coverage_and_only_narrows() -> None:
    rng = np.random.default_rng(2)
    # a bounded score (like SMP's 1.2-13.4 popularity): the truth piles up near the bounds
    n = 20000
    pred = rng.uniform(0, 10, 2 * n)
    y = np.clip(pred + rng.normal(size=2 * n), 0, 10)
    lo, hi = SplitConformal().fit(pred[:n], y[:n]).interval(pred[n:], 0.95)
    clo, chi = clip_to_support(lo, hi, (0.0, 10.0))
    assert _cover(y[n:], clo, chi) == _cover(y[n:], lo, hi)
    assert np.all(chi - clo <= hi - lo) and np.mean(chi - clo) < 0.95 * np.mean(hi - lo)
    # an interval wholly above the support shrinks to the upper bound (width 0), never inverts
    a, b = clip_to_support(np.array([12.0]), np.array([14.0]), (0.0, 10.0))
    assert a[0] == b[0] == 10.0


def test_interval_choice_on_validation_reports_every_method_near_nominal() -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 10, 600)
    y = np.clip(p + rng.normal(size=600), 0, 10)
    got = interval_choice(p, y, (0.0, 10.0), reps=10)
    assert set(got) == {"split", "asymmetric", "mondrian_pred_terciles", "split_clipped", "asymmetric_clipped"}
    for v in got.values():
        assert 0.92 <= v["coverage95"] <= 0.98
    assert got["split_clipped"]["width95"] < got["split"]["width95"]
    assert got["split_clipped"]["coverage95"] == got["split"]["coverage95"]


def test_text_ridge_is_out_of_fold_on_training_rows_and_reads_the_vocabulary() -> None:
    rng = np.random.default_rng(4)
    n = 400
    words = rng.choice(["cat", "dog", "car", "sun"], n)
    frame = pd.DataFrame({"title": [f"my {w} video" for w in words], "tags": [f"{w}|fun" for w in words]})
    y = np.where(words == "cat", 3.0, 0.0) + rng.normal(scale=0.3, size=n)
    ids, texts = np.arange(n).astype(str), video_text(frame)
    emb = rng.normal(size=(n, 8)).astype(np.float32)
    tr = np.arange(300)
    f = TextRidgeEncoder().fit(ids[tr], texts[tr], emb[tr], y[tr]).transform(ids, texts, emb)
    assert f.shape == (n, 3)
    held = np.arange(300, n)
    assert np.corrcoef(f[held, 0], y[held])[0, 1] > 0.9  # the word column reads "cat"
    # a training row's own label never reaches its own feature (out-of-fold), the others' do
    y2 = y.copy()
    y2[0] += 100.0
    f2 = TextRidgeEncoder().fit(ids[tr], texts[tr], emb[tr], y2[tr]).transform(ids, texts, emb)
    assert np.allclose(f2[0], f[0])
    assert not np.allclose(f2[held], f[held])
