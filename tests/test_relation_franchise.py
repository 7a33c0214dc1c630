"""Franchise history (as-of statistics of the most similar earlier titles) and title markers of the
relation model's wide features. Synthetic tiny tables (labelled as such) for the leak rules; the
real Bilibili table for one known franchise."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from vidpop.config import dataset_dir
from vidpop.experiments import relation as exp
from vidpop.models.relation_features import WideFeatureBuilder, WideFeatureConfig
from vidpop.models.relation_franchise import FRANCHISE_NAMES, MARKER_NAMES, title_markers

BANGUMI = "bilibili_bangumi_series"
needs_bangumi = pytest.mark.skipif(not dataset_dir(BANGUMI).exists(), reason="bangumi data not staged")


def _frame() -> pd.DataFrame:
    """Synthetic: a franchise with three seasons, a same-day dub and an unrelated title."""
    return pd.DataFrame(
        {
            "title": ["星之旅", "毫不相关的故事", "星之旅 第二季", "星之旅 第二季（中配）", "星之旅 第三季"],
            "published_at": pd.to_datetime(
                ["2015-01-01", "2016-01-01", "2018-01-01", "2018-01-01", "2021-01-01"], utc=True
            ),
            "tags": ["a", "b", "a", "a", "a"],
        }
    )


def _features(frame: pd.DataFrame, y: np.ndarray, horizon: int = 7) -> pd.DataFrame:
    cfg = WideFeatureConfig(multi_hot={}, title="none", calendar=False, franchise=True, horizon_days=horizon)
    b = WideFeatureBuilder(cfg)
    b.fit_transform(frame, y, history=(frame, y))
    raw = b._franchise(frame, fit=False)
    assert b.feature_names_ == list(FRANCHISE_NAMES)
    return pd.DataFrame(raw, columns=list(FRANCHISE_NAMES))


def test_franchise_reads_only_titles_known_before_the_prediction_date():
    frame = _frame()
    y = np.array([18.0, 10.0, 16.0, 12.0, 15.0])
    f = _features(frame, y)
    # the first title knows nothing: similarity 0, the mean of nothing (0)
    assert f.loc[0, "fr_max_sim"] == 0 and f.loc[0, "fr_top1_target"] == 0
    # season 2 sees season 1 (similar) and the unrelated title, not itself, not its same-day dub
    assert f.loc[2, "fr_top1_target"] == 18.0 and f.loc[2, "fr_max_sim"] > 0.5
    assert f.loc[2, "fr_max_target_similar"] == 18.0 and f.loc[2, "fr_n_similar"] == pytest.approx(np.log1p(1))
    assert f.loc[3, "fr_top1_target"] != 12.0  # the dub never sees itself
    # season 3 sees both seasons and the dub, never itself
    assert f.loc[4, "fr_top1_target"] in (18.0, 16.0, 12.0)
    assert f.loc[4, "fr_max_target_similar"] == 18.0 and f.loc[4, "fr_n_similar"] >= np.log1p(1)
    # a later title's label changes nothing for an earlier row
    y2 = y.copy()
    y2[4] = 99.0
    pd.testing.assert_frame_equal(_features(frame, y2).iloc[:4], f.iloc[:4])


def test_franchise_horizon_hides_titles_released_within_it():
    frame = _frame()
    y = np.array([18.0, 10.0, 16.0, 12.0, 15.0])
    # predicted 3 years ahead, season 3 (2021) cannot know season 2 (2018): only season 1 and the other title
    f = _features(frame, y, horizon=3 * 365 + 10)
    assert f.loc[4, "fr_top1_target"] == 18.0
    assert f.loc[4, "fr_max_target_similar"] == 18.0


def test_title_markers():
    m = pd.DataFrame(
        title_markers(pd.Series(["鬼灭之刃 中配版", "路人超能100 III", "某科学 第三季", "某某 剧场版", "普通的标题"])),
        columns=list(MARKER_NAMES),
    )
    assert m.loc[0, "title_is_dub"] == 1 and m.loc[4].drop("title_season_log").sum() == 0
    assert m.loc[1, "title_is_sequel"] == 1 and m.loc[2, "title_is_sequel"] == 1
    assert m.loc[2, "title_season_log"] == pytest.approx(np.log(3)) and m.loc[4, "title_season_log"] == 0
    assert m.loc[3, "title_is_film"] == 1


@needs_bangumi
def test_real_franchise_feature_is_an_earlier_season():
    ds = exp.load_dated(BANGUMI)
    setup = exp.setup_for(BANGUMI)
    assert setup.features.franchise and setup.features.title == "none"
    feats = dataclasses.replace(setup.features, horizon_days=7)
    v = ds.videos
    y = np.log1p(v["views"].to_numpy(np.float64))
    b = WideFeatureBuilder(feats)
    b.fit_transform(v, y, history=(v, y))
    raw = pd.DataFrame(b._franchise(v, fit=False), columns=list(FRANCHISE_NAMES), index=v.index)
    fine = v.index[v["title"] == "路人女主的养成方法 Fine"][0]
    earlier = v[v["title"].str.startswith("路人女主的养成方法") & (v["published_at"] < v.loc[fine, "published_at"])]
    assert raw.loc[fine, "fr_top1_target"] in set(np.log1p(earlier["views"].to_numpy(np.float64)))
    assert raw.loc[fine, "fr_max_sim"] > 0.5


def test_episode_count_is_capped_at_what_a_season_announces():
    """Regression (leak): the crawl's episode count of a long-running show (hundreds of episodes aired
    after release) entered uncapped; the Bilibili preset now caps it at 26 (two cours)."""
    assert exp.setup_for(BANGUMI).features.numeric_clip == {"episodes": 26}
    frame = _frame().assign(episodes=[12, 1, 26, 26, 500])
    cfg = WideFeatureConfig(
        multi_hot={}, title="none", calendar=False, numeric=("episodes",), numeric_clip={"episodes": 26}
    )
    b = WideFeatureBuilder(cfg)
    b.fit_transform(frame, np.zeros(5))
    raw = b._numeric(frame)[:, 0]
    assert raw[4] == raw[2] == pytest.approx(np.log1p(26)) and raw[0] == pytest.approx(np.log1p(12))
