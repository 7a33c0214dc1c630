"""Serving a recommender (issue 17 §3): tables read once, retrieval through the faiss index where the model's
scores are inner products (checked against the model's own top-k), and parallel requests without a lock.
Models are fitted on a SYNTHETIC interaction log (labelled) so the test takes a second."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vidpop.errors import UnknownItemError, VidpopError
from vidpop.models.rec_baselines.itemknn import ItemKNNRecommender
from vidpop.models.rec_baselines.lfm import LFMRecommender
from vidpop.models.recommender import RecData, UserQuery
from vidpop.serve.recommending import ServedRecommender


def synthetic_log(n_users: int = 200, n_items: int = 120, seed: int = 0) -> RecData:
    """SYNTHETIC: users watch runs of consecutive items from one of six blocks."""
    rng = np.random.default_rng(seed)
    seqs = []
    for _ in range(n_users):
        block = rng.integers(0, 6) * (n_items // 6)
        seqs.append((block + rng.integers(0, n_items // 6, size=8)).astype(np.int64))
    ids = np.array([f"v{j}" for j in range(n_items)])
    items = pd.DataFrame({"video_id": ids, "title": [f"title {j}" for j in range(n_items)]})
    return RecData(ids, np.array([f"u{u}" for u in range(n_users)]), seqs,
                   [np.arange(8, dtype=float) for _ in seqs], items)  # fmt: skip


def model_folder(tmp_path: Path, model: object, data: RecData) -> Path:
    folder = tmp_path / "m"
    folder.mkdir()
    pd.DataFrame({"video_id": data.item_ids, "title": data.items["title"], "text": data.items["title"],
                  "cover_path": [None] * data.n_items}).to_parquet(folder / "items.parquet")  # fmt: skip
    users = [(u, data.item_ids[s].tolist()) for u, s in zip(data.user_ids, data.sequences, strict=True)]
    pd.DataFrame(users, columns=["user_id", "history"]).to_parquet(folder / "users.parquet")
    return folder


def test_lfm_is_served_through_faiss_with_the_models_own_ranking(tmp_path: Path) -> None:
    data = synthetic_log()
    model = LFMRecommender(LFMRecommender.Config(factors=16, iterations=4, progress=False)).fit(data)
    served = ServedRecommender("lfm", model_folder(tmp_path, model, data), model)
    assert served.vectors is not None  # inner-product model: retrieval by the index
    for u in range(0, 200, 25):
        q = UserQuery(history=data.sequences[u], times=data.times[u])
        top, scores = served.top(q, k=10)
        want = model.recommend([q], k=10)[0].tolist()
        assert len(set(top) & set(want)) >= 9  # same top-10 (ties may swap at the boundary)
        assert not set(top) & set(data.sequences[u].tolist())
        assert scores == sorted(scores, reverse=True)
    hist = served.history_of("u3")
    assert served.video_ids[hist].tolist() == data.item_ids[data.sequences[3]].tolist()
    with pytest.raises(UnknownItemError, match="unknown user"):
        served.history_of("nobody")


def test_models_without_vectors_use_their_own_scores(tmp_path: Path) -> None:
    data = synthetic_log()
    model = ItemKNNRecommender(ItemKNNRecommender.Config()).fit(data)
    served = ServedRecommender("knn", model_folder(tmp_path, model, data), model)
    assert served.vectors is None
    q = UserQuery(history=data.sequences[0], times=data.times[0])
    top, scores = served.top(q, k=5)
    want = model.recommend([q], k=5)[0]
    np.testing.assert_allclose(scores, model.full_sort_scores([q])[0][want])  # the same ranking (ties in any order)
    assert not set(top) & set(q.history.tolist())
    # parallel requests (no lock) give the same answers as serial ones
    queries = [UserQuery(history=s, times=t) for s, t in zip(data.sequences, data.times, strict=True)]
    serial = [served.top(q, 10)[0] for q in queries]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(lambda q: served.top(q, 10)[0], queries))
    assert parallel == serial


def test_incomplete_model_folder_is_one_line(tmp_path: Path) -> None:
    data = synthetic_log(n_users=20)
    model = ItemKNNRecommender(ItemKNNRecommender.Config()).fit(data)
    folder = model_folder(tmp_path, model, data)
    (folder / "items.parquet").unlink()
    with pytest.raises(VidpopError, match=r"incomplete: missing items\.parquet — retrain it"):
        ServedRecommender("knn", folder, model)
    (folder / "items.parquet").write_bytes(b"PAR1garbage")
    with pytest.raises(VidpopError, match=r"cannot be read .* retrain it"):
        ServedRecommender("knn", folder, model)
