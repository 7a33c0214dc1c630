"""The paper's F-score, leave-one-out over the whole catalogue with a validation item, the estimator
meaning of ``Recommender.score``, the shared FPMC/SASRec training routine (nested ``TrainConfig``,
early stopping on validation), SASRec's sequence packing and validation-only tuning.

Logs here are SYNTHETIC (labelled): the cluster log of ``test_rec_baselines`` and tiny hand-made ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from test_rec_baselines import synthetic_dataset
from vidpop.data.schema import VideoDataset
from vidpop.experiments.rec_tuning import SEARCH_SPACES, trial_overrides, tune
from vidpop.models.rec_baselines.itemknn import ItemKNNRecommender
from vidpop.models.rec_baselines.sasrec import SASRecNet, pack_sequences
from vidpop.models.recommender import RecData, Recommender, UserQuery
from vidpop.models.registry import build_model
from vidpop.recipes.rec import Row, build_row_model
from vidpop.training.loop import TrainConfig
from vidpop.training.rec_protocol import (
    ProtocolConfig,
    evaluate,
    evaluate_queries,
    f_score,
    fit_and_evaluate,
    loo_split,
    make_user_split,
    metric_names,
)


class FixedRanker(Recommender):
    """Returns a fixed ranking per query (test helper)."""

    model_name = "fixed"

    def __init__(self, rankings: list[list[int]], n_items: int) -> None:
        super().__init__()
        self.rankings, self.n = rankings, n_items

    def fit(self, X: RecData, y: Any = None, **kwargs: Any) -> FixedRanker:
        return self

    def full_sort_scores(self, queries: list[UserQuery]) -> np.ndarray:
        out = np.zeros((len(queries), self.n), np.float32)
        for r, q in enumerate(queries):
            ranking = self.rankings[int(q.text)]
            out[r, ranking] = np.arange(len(ranking), 0, -1)
        return out


def test_f_is_the_harmonic_mean_of_averaged_precision_and_recall() -> None:
    # the paper's Table 1, long mode: FPMC P 0.0216, R 0.0357 -> F 0.0269; ours P 0.0296, R 0.0399 -> 0.0340
    assert round(f_score(0.0216, 0.0357), 4) == 0.0269
    assert round(f_score(0.0296, 0.0399), 4) == 0.0340
    # user 0: 5 hits of 5 relevant (P 1, R 1, F1 1); user 1: 1 hit of 20 relevant (P .2, R .05, F1 .08)
    rankings = [[0, 1, 2, 3, 4, 5], [10, 50, 51, 52, 53, 54]]
    truth = [np.arange(5), np.arange(10, 30)]
    queries = [UserQuery(np.zeros(0, np.int64), text=str(i)) for i in range(2)]
    m = evaluate_queries(FixedRanker(rankings, 60), queries, truth, ProtocolConfig(progress=False))
    assert m["P@5"] == pytest.approx(0.6) and m["R@5"] == pytest.approx(0.525)
    assert m["F@5"] == pytest.approx(2 * 0.6 * 0.525 / 1.125)  # 0.56, from the means
    assert m["F1@5 (per-user mean)"] == pytest.approx((1.0 + 0.08) / 2)  # 0.54, the old "F1@5"
    assert (
        list(m)
        == metric_names(ProtocolConfig())
        == [
            "P@5",
            "R@5",
            "F@5",
            "F1@5 (per-user mean)",
            "HR@10",
            "NDCG@10",
        ]
    )


def _loo_log() -> VideoDataset:
    """SYNTHETIC: 6 users of 5 items; the catalogue has 3 videos nobody watches before the test item."""
    videos = pd.DataFrame({"video_id": [f"v{i}" for i in range(12)], "title": [f"t{i}" for i in range(12)]})
    rows = []
    for u in range(6):
        seq = [f"v{(u + j) % 6}" for j in range(4)] + [f"v{9 + u}" if u < 3 else f"v{(u + 4) % 6}"]
        rows += [(f"u{u}", v, t) for t, v in enumerate(seq)]
    return VideoDataset(
        "synthetic_loo", videos, interactions=pd.DataFrame(rows, columns=["user_id", "video_id", "position"])
    )


class Oracle(Recommender):
    """Ranks the test item of each user first (test helper)."""

    model_name = "oracle"

    def __init__(self, answers: dict[int, int]) -> None:
        super().__init__()
        self.answers = answers

    def fit(self, X: RecData, y: Any = None, **kwargs: Any) -> Oracle:
        self.n_ = X.n_items
        return self

    def full_sort_scores(self, queries: list[UserQuery]) -> np.ndarray:
        out = np.zeros((len(queries), self.n_), np.float32)
        for r, q in enumerate(queries):
            out[r, self.answers[id(q)]] = 1.0
        return out


def test_loo_ranks_the_whole_catalogue_and_holds_out_a_validation_item() -> None:
    ds = _loo_log()
    cfg = ProtocolConfig(progress=False)
    split = loo_split(ds, cfg)
    # every video is a candidate, also v9-v11 which no training history contains
    assert list(split.train.item_ids) == [f"v{i}" for i in range(12)]
    assert split.truth_oov.sum() == 0 and split.info["truth_oov_share"] == 0.0
    answers = {id(q): int(t[0]) for q, t in zip(split.queries, split.truth, strict=True)}
    assert evaluate(Oracle(answers).fit(split.train), split, cfg)["HR@10"] == 1.0
    # the old candidate set (items seen in training) can never hit v9-v11
    old = loo_split(ds, ProtocolConfig(progress=False, loo_candidates="train"))
    assert old.info["truth_oov_share"] == pytest.approx(0.5)
    # validation: the second-to-last item, asked from the training items only
    inter = ds.interactions.sort_values(["user_id", "position"])
    by_user = inter.groupby("user_id")["video_id"].apply(list)
    index = {v: i for i, v in enumerate(split.train.item_ids)}
    assert split.validation is not None and len(split.validation.queries) == 6
    for u, q, t in zip(split.test_user_ids, split.validation.queries, split.validation.truth, strict=True):
        assert [split.train.item_ids[i] for i in q.history] == by_user[u][:-2]
        assert t.tolist() == [index[by_user[u][-2]]]


def test_score_keeps_its_estimator_meaning_and_the_old_matrix_alias() -> None:
    ds = synthetic_dataset(n_users=120)
    split = make_user_split(ds, ProtocolConfig(progress=False))
    knn = ItemKNNRecommender().fit(split.train)
    q = split.queries[:30]
    hr = knn.score(q, split.truth[: len(q)])
    assert isinstance(hr, float)
    ranked = knn.recommend(q, k=10)
    assert hr == pytest.approx(
        np.mean([bool(set(r) & set(t)) for r, t in zip(ranked, split.truth[: len(q)], strict=True)])
    )
    with pytest.warns(DeprecationWarning):
        np.testing.assert_array_equal(knn.score(q), knn.full_sort_scores(q))

    class Legacy(Recommender):  # a model written against the old API (matrix ``score``)
        def fit(self, X: RecData, y: Any = None, **kwargs: Any) -> Legacy:
            return self

        def score(self, X: list[UserQuery], y: Any = None) -> np.ndarray:  # type: ignore[override]
            return -knn.full_sort_scores(X)

    legacy = Legacy()
    np.testing.assert_array_equal(legacy.full_sort_scores(q), -knn.full_sort_scores(q))
    assert legacy.recommend(q, k=3).shape == (len(q), 3)


def test_itemknn_recency_weights_the_latest_items() -> None:
    """SYNTHETIC: items 0-1 co-occur, 2-3 co-occur; a history [0, 2] ends on 2, so 3 must outrank 1."""
    seqs = [np.array([0, 1])] * 5 + [np.array([2, 3])] * 5
    data = RecData(np.array(["a", "b", "c", "d"]), np.array([f"u{i}" for i in range(10)]), seqs, seqs, pd.DataFrame())
    q = [UserQuery(np.array([0, 2]))]
    flat = ItemKNNRecommender().fit(data).full_sort_scores(q)[0]
    assert flat[1] == pytest.approx(flat[3])
    recent = ItemKNNRecommender(ItemKNNRecommender.Config(recency=0.5)).fit(data).full_sort_scores(q)[0]
    assert recent[3] > recent[1] > 0


def test_packed_rows_keep_users_apart() -> None:
    """A user's hidden states are the same alone and packed next to another user (eval mode)."""
    seqs = [np.array([0, 1, 2, 3]), np.array([4, 5, 6]), np.array([7, 8])]
    packed = pack_sequences(seqs, width=6)
    assert packed["seq"].shape == (1, 6)  # 3 + 2 + 1 input slots fill one row
    valid = packed["seg"] > 0
    assert (packed["target"][valid] > 0).all() and (packed["seq"][~valid] == 0).all()
    torch.manual_seed(0)
    net = SASRecNet(n_items=9, dim=8, max_len=6, layers=2, heads=2, dropout=0.0).eval()
    t = {k: torch.from_numpy(v) for k, v in packed.items()}
    with torch.no_grad():
        h = net.encode(t["seq"], t["seg"], t["pos"])
        for j in (1, 2, 3):
            slots = (t["seg"][0] == j).nonzero().ravel()
            hist = t["seq"][0, slots] - 1
            alone = net.all_scores(torch.from_numpy(np.r_[np.zeros(6 - len(hist)), hist.numpy() + 1]).long()[None])
            np.testing.assert_allclose(
                (h[0, slots[-1]] @ net.items.weight[1:].T).numpy(), alone[0].numpy(), rtol=1e-4, atol=1e-5
            )


@pytest.mark.parametrize("name", ["rec_fpmc", "rec_sasrec"])
def test_sequential_baselines_share_one_routine_and_stop_on_validation(name: str) -> None:
    model = build_model(name)
    assert isinstance(model.config.train, TrainConfig)  # `vidpop train <name> --nproc 2` reads it
    ds = synthetic_dataset(n_users=200)
    cfg = ProtocolConfig(progress=False)
    split = loo_split(ds, cfg)
    small = {"dim": 16, "train.epochs": 12, "train.patience": 2, "train.lr": 1e-2, "train.progress": False}
    small |= {"train.batch_size": 32, "max_len": 8} if name == "rec_sasrec" else {"window": 5, "train.batch_size": 256}
    model = build_row_model(Row(name, name, small))
    r = fit_and_evaluate(model, split, cfg)
    log = model.train_log_
    assert all("val_NDCG@10" in e for e in log)
    best = max(range(len(log)), key=lambda i: log[i]["val_NDCG@10"])
    assert model.best_epoch_ == best  # the weights kept are those of the best validation epoch
    assert len(log) == 12 or len(log) - 1 - best == 2  # stopped after `patience` epochs without progress
    assert r.metrics["HR@10"] > 0.5 and model.seconds_per_epoch_ > 0


def test_tuning_uses_validation_only_and_the_same_budget() -> None:
    assert all(len(trial_overrides(m, 4)) == 4 for m in SEARCH_SPACES)
    assert trial_overrides("rec_itemknn", 4)[0] == {}  # the defaults are always a trial
    ds = synthetic_dataset(n_users=200)
    cfg = ProtocolConfig(progress=False)
    split = loo_split(ds, cfg)
    res = tune(Row("Item-KNN", "rec_itemknn"), split, cfg, ds, budget=4, log=lambda *_: None)
    scores = [t["val_NDCG@10"] for t in res.trials]
    assert len(scores) == 4 and res.overrides == res.trials[int(np.argmax(scores))]["overrides"]
    # moving every test item elsewhere leaves the choice unchanged: the test part is never looked at
    split.truth = [(t + 1) % split.train.n_items for t in split.truth]
    again = tune(Row("Item-KNN", "rec_itemknn"), split, cfg, ds, budget=4, log=lambda *_: None)
    assert again.overrides == res.overrides and [t["val_NDCG@10"] for t in again.trials] == scores
