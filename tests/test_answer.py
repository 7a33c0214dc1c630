"""Shaping one answer (issue 15 ask 5) and serving without mutating a loaded model (issue 16 ask 3).

Unit tests: the training contexts below are SYNTHETIC (small seeded arrays), labelled as such; the real
models' answers are tested in test_api.py / test_product_cli.py."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from vidpop.serve import answer
from vidpop.serve.context import TrainingContext
from vidpop.serve.inputs import NewVideo
from vidpop.serve.popularity import capabilities, per_call_view
from vidpop.serve.predicting import predict_video

NAMES = ["log1p_views", "log1p_likes", "log1p_comments"]


def synthetic_context(n: int = 400, seed: int = 0) -> TrainingContext:
    """SYNTHETIC training labels: likes ~ views / e^3, comments ~ views / e^8, followers tied to views."""
    rng = np.random.default_rng(seed)
    views = rng.normal(12.0, 1.5, n)
    y = np.stack([views, views - 3 + rng.normal(0, 0.3, n), views - 8 + rng.normal(0, 0.3, n)], axis=1)
    log_followers = (views - 12.0) / 1.5 + 4.0 + rng.normal(0, 0.2, n)  # log10(1 + followers)
    return TrainingContext("synthetic", y, NAMES, log_followers)


@pytest.mark.parametrize(
    ("x", "want"),
    [(61.7, 62), (0.4, 0), (999.4, 999), (999.6, 1000), (1_093_456, 1_090_000), (5_512_345, 5_510_000), (-3, 0)],
)
def test_counts_are_whole_with_at_most_three_significant_digits(x: float, want: int) -> None:
    assert answer.round_count(x) == want


def test_round_count_over_many_magnitudes() -> None:
    for x in np.logspace(0, 9, 200):
        r = answer.round_count(x)
        assert isinstance(r, int) and len(str(r).rstrip("0")) <= 3 and abs(r - x) <= 0.005 * x + 0.5


def test_likes_and_comments_are_bounded_by_the_training_ratios() -> None:
    ctx = synthetic_context()
    lo, hi = ctx.ratio_bounds(1)
    # a prediction whose likes exceed its views (impossible on the training data) and sane comments
    mean, lower, upper = np.array([12.0, 12.5, 4.0]), np.array([10.0, 10.5, 2.0]), np.array([14.0, 14.5, 6.0])
    m, lw, up, moved, note = answer.bound_ratios(NAMES, mean, lower, upper, ctx)
    assert moved == ["likes"] and note is not None and "bounded here: likes" in note and "400 training" in note
    assert math.isclose(m[1], 12.0 + hi) and lo < m[1] - m[0] <= hi + 1e-9
    assert m[2] == 4.0  # comments/views was inside the training range: unchanged
    assert (lw <= m).all() and (m <= up).all()
    # without a context (or for another model's targets) nothing is bounded and nothing is claimed
    assert answer.bound_ratios(NAMES, mean, lower, upper, None)[4] is None
    assert answer.bound_ratios(["log1p_views", "log1p_shares"], mean[:2], lower[:2], upper[:2], ctx)[4] is None


def test_context_line_percentile_and_similar_authors() -> None:
    ctx = synthetic_context()
    line, notes = answer.context_line(ctx, "log1p_views", float(np.median(ctx.y[:, 0])), 10_000, "poe")
    assert line is not None and "more than 50% of the 400 training videos (synthetic)" in line
    assert "authors with 0.5x to 2x the followers" in line and not notes
    no_followers = dataclasses.replace(ctx, log_followers=None)
    line, notes = answer.context_line(no_followers, "log1p_views", 12.0, 10_000, "poe")
    assert "authors" not in (line or "") and any("no follower counts" in n for n in notes)
    line, notes = answer.context_line(None, "log1p_views", 12.0, None, "poe")
    assert line is None and "not readable" in notes[0]


def test_verdict_class_and_p_popular_come_from_one_model_and_agree() -> None:
    ctx = synthetic_context()
    edges = np.quantile(ctx.y[:, 0], [0.2, 0.4, 0.6, 0.8]).tolist()
    rng = np.random.default_rng(1)
    for mean0 in (10.0, 12.0, 14.0):
        samples = mean0 + rng.normal(0, 1.0, 500)
        cls, pp = answer.verdict("poe", edges, ctx, mean0, samples, "log1p_views")
        assert cls is not None and pp is not None and cls["model"] == pp["model"] == "poe"
        # the class above the middle one <=> P(popular) above one half (both read the same distribution)
        if cls["label"] != 2:
            assert (cls["label"] > 2) == (pp["value"] > 0.5), (cls, pp)
    assert answer.verdict_text(cls, pp).endswith("(both from poe)")
    # P(popular) is a whole percent, so the verdict text and the page's Math.round show the same number
    _, pp = answer.verdict("poe", edges, ctx, 12.0, np.r_[np.full(89, 13.0), np.full(111, 11.0)], "log1p_views")
    assert pp is not None and pp["value"] == 0.45 and "P(popular) 45%" in (answer.verdict_text(None, pp) or "")


def test_effect_line_only_beyond_a_factor_of_two() -> None:
    entry, line = answer.effect_line("clip", "log1p_views", 14.0, 12.5)
    assert line is not None and line.startswith("the clip moves predicted views ×4.5") and entry["ratio"] > 4
    assert answer.effect_line("cover", "log1p_views", 12.0, 12.5)[1] is None  # ÷1.6: no line
    assert "÷3.3" in (answer.effect_line("follower count", "log1p_views", 12.0, 13.2)[1] or "")


class _FusionStandIn:
    """The real CoverTitleFusion class with its prediction replaced (no training in a unit test): it records
    the config it was called with, as the real one reads its feature store from there."""

    seen: ClassVar[list[Any]] = []

    @staticmethod
    def predict_proba(self: Any, ds: Any) -> np.ndarray:
        _FusionStandIn.seen.append(self.config)
        return np.array([[0.1, 0.1, 0.2, 0.3, 0.3]])


def test_serving_never_mutates_a_loaded_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The old serving code set model.config.feature_store / progress on every request (issue 16)."""
    from vidpop.models.cover_title_fusion import CoverTitleFusion
    from vidpop.serve.predictors import LoadedModel

    monkeypatch.setattr(CoverTitleFusion, "predict_proba", _FusionStandIn.predict_proba)
    model = CoverTitleFusion()
    before = dataclasses.asdict(model.config)
    lm = LoadedModel("fusion", tmp_path, model)
    assert capabilities(model) == {"predict", "from_text"} and lm.roles == ["predict"]
    out = predict_video([lm], NewVideo(title="a title"), tmp_path / "work", 0.95)
    assert dataclasses.asdict(model.config) == before and model.config.feature_store is None
    used = _FusionStandIn.seen[-1]
    assert used is not model.config and used.feature_store == str(tmp_path / "work" / "features")
    assert not used.progress
    # with only the fusion model, its class and its P(class 4 or 5) are the headline, from one model
    assert out["popularity_class"]["model"] == out["p_popular"]["model"] == "fusion"
    assert math.isclose(out["p_popular"]["value"], 0.6) and out["verdict"].endswith("(both from fusion)")


def test_serving_dispatches_on_declared_capabilities_not_methods() -> None:
    """A model class's declared ``capabilities`` (issue 16) decide its roles, not the methods it happens to
    have: a PoE subclass that declares no intervals is not asked for them."""
    from vidpop.models.variational_poe import VariationalPoERegressor

    class PointOnly(VariationalPoERegressor):
        capabilities = frozenset({"predict"})

    assert hasattr(PointOnly, "predict_interval")
    assert capabilities(PointOnly()) == {"predict"}
    assert capabilities(VariationalPoERegressor()) == {"predict", "intervals", "from_text"}


def test_per_call_view_shares_state_and_leaves_the_model_alone() -> None:
    from vidpop.models.cover_title_fusion import CoverTitleFusion

    model = CoverTitleFusion()
    model.fitted_marker_ = object()
    view = per_call_view(model, feature_store="/tmp/x", progress=False, not_a_field=1)
    assert view.fitted_marker_ is model.fitted_marker_  # the fitted state is shared, not copied
    assert (view.config.feature_store, view.config.progress) == ("/tmp/x", False)
    assert (model.config.feature_store, model.config.progress) == (None, True)
