"""One feature pipeline for every popularity model (issue 13, ask 1): the leaderboard's features and the
served ``gbdt_retrieval`` model's are the same numbers. SYNTHETIC task (seeded), shared with the
leaderboard tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from test_leaderboard import _task
from vidpop.experiments import leaderboard as L
from vidpop.features.popularity_features import PopularityFeatures, PopularityFeaturesConfig
from vidpop.models.gbdt_retrieval import GBDTRetrievalConfig, GBDTRetrievalRegressor, VideoTable


def _with_images(task: L.LeaderboardTask) -> L.LeaderboardTask:
    rng = np.random.default_rng(1)
    n = len(task.y)
    task.media["visual"] = (rng.normal(size=(n, 6)).astype(np.float32), rng.random(n) < 0.7)
    return task


def test_served_model_reads_the_leaderboards_features() -> None:
    task = _task()
    feats = L.build_features(task, k=5)
    tr = task.split.train
    model = GBDTRetrievalRegressor(GBDTRetrievalConfig(k=5, retrieval=True))
    model.fit_features(VideoTable(task.frame.iloc[tr].reset_index(drop=True), task.emb[tr]), task.y[tr])
    served = model.features(VideoTable(task.frame, task.emb))
    assert model.feature_names_ == feats.names()
    np.testing.assert_allclose(served, feats.matrix(), rtol=1e-6, equal_nan=True)


def test_names_match_columns_with_images_and_without_retrieval() -> None:
    task = _with_images(_task())
    tr = task.split.train
    vis = task.media["visual"]
    for retrieval in (True, False):
        cfg = PopularityFeaturesConfig(k=5, media_pca=3, retrieval=retrieval)
        p = PopularityFeatures(cfg).fit(task.frame.iloc[tr], task.emb[tr], task.y[tr], (vis[0][tr], vis[1][tr]))
        f = p.transform(task.frame, task.emb, vis)
        assert f.names() == p.feature_names() and f.matrix().shape[1] == len(p.feature_names())
        assert any(n.startswith("visual_pca") for n in f.tab_names)
        assert any(n.startswith("img_nn_") for n in f.ret_names) == retrieval
        assert (f.ret.shape[1] > 0) == retrieval
        # a row without an image has no visual values, never made-up ones
        assert np.isnan(f.tab[~vis[1], -1]).all() and np.isfinite(f.tab[vis[1], -1]).all()


def test_a_video_without_posting_time_sees_every_training_video() -> None:
    task = _task()
    tr = task.split.train
    p = PopularityFeatures(PopularityFeaturesConfig(k=5)).fit(task.frame.iloc[tr], task.emb[tr], task.y[tr])
    new = task.frame.iloc[:1].copy()
    new["video_id"], new["published_at"] = "brand-new", pd.NaT
    f = p.transform(new, task.emb[:1])
    assert f.ret[0, f.ret_names.index("nn_count")] == pytest.approx(5)
