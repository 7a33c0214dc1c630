"""Validation users of the paper protocol (``ProtocolConfig.val_frac``): disjoint from the test users,
their ground truth never in training, and what the torch models early-stop on. Synthetic, fast."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from vidpop.data.schema import VideoDataset
from vidpop.errors import VidpopError
from vidpop.training.rec_protocol import ProtocolConfig, fit_on_split, make_user_split


def _ds(n_users: int = 60, n_items: int = 30, length: int = 12) -> VideoDataset:
    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"v{rng.integers(n_items)}", i) for u in range(n_users) for i in range(length)]
    inter = pd.DataFrame(rows, columns=["user_id", "video_id", "position"])
    videos = pd.DataFrame({"video_id": [f"v{i}" for i in range(n_items)], "title": [f"t {i}" for i in range(n_items)]})
    return VideoDataset("synthetic", videos, interactions=inter)


def _truth_pairs(split: Any) -> set[tuple[str, str]]:
    ids = split.train.item_ids
    return {(u, ids[i]) for u, t in zip(split.validation.user_ids, split.validation.truth, strict=True) for i in t}


def test_validation_users_disjoint_and_their_truth_never_trains() -> None:
    ds = _ds()
    base = make_user_split(ds, ProtocolConfig(progress=False))
    split = make_user_split(ds, ProtocolConfig(progress=False, val_frac=0.2))
    assert base.validation is None  # val_frac 0: as before
    v = split.validation
    assert v is not None and len(v.queries) >= 5
    val_users = set(v.user_ids.tolist())
    assert not val_users & set(split.test_user_ids.tolist())
    assert set(split.test_user_ids.tolist()) == set(base.test_user_ids.tolist())  # same test users
    # a validation user's training sequence is exactly its query's input period, never its ground truth
    pos = {u: i for i, u in enumerate(split.train.user_ids)}
    for u, q in zip(v.user_ids, v.queries, strict=True):
        np.testing.assert_array_equal(split.train.sequences[pos[u]], q.history)
    # no ground-truth interaction (position after the cut) of a validation user is in training
    inter = ds.interactions[ds.interactions["user_id"].isin(val_users)]
    for u, g in inter.groupby("user_id"):
        n_in = len(split.validation.queries[list(v.user_ids).index(u)].history)
        assert len(split.train.sequences[pos[u]]) == n_in < len(g)
    assert split.info["validation_users"] == len(v.queries)
    assert split.info["train_users"] == base.info["train_users"] - len(val_users)
    cold = make_user_split(ds, ProtocolConfig(progress=False, val_frac=0.2, cold_start=True))
    assert not set(cold.validation.user_ids.tolist()) & set(cold.train.user_ids)  # cold: no ids of theirs
    assert all(len(q.history) == 0 for q in cold.validation.queries)


class _Spy:
    model_name = "spy"
    uses_validation = True

    def fit(self, X: Any, validation: Any = None, protocol: Any = None) -> None:
        self.validation = validation


def test_torch_models_get_the_validation_users() -> None:
    split = make_user_split(_ds(), ProtocolConfig(progress=False, val_frac=0.2))
    spy = _Spy()
    fit_on_split(spy, split, ProtocolConfig(progress=False))
    assert spy.validation is split.validation


def test_fpmc_early_stops_on_validation_users() -> None:
    from vidpop.models.registry import build_model

    split = make_user_split(_ds(), ProtocolConfig(progress=False, val_frac=0.2))
    model = build_model("rec_fpmc", dim=8)
    model.config.train.epochs, model.config.train.progress = 3, False
    fit_on_split(model, split, ProtocolConfig(progress=False))
    assert all("val_NDCG@10" in e for e in model.train_log_)


def test_paper_tuner_scores_trials_on_validation_and_reuses_fits() -> None:
    from vidpop.experiments.rec_paper_tuning import PaperTuner
    from vidpop.recipes.rec import Row

    ds = _ds()
    cfg = ProtocolConfig(progress=False, val_frac=0.2)
    split = make_user_split(ds, cfg)
    tuner = PaperTuner(cfg, ds, budget=2, epochs=None, log=lambda *_: None)
    (res,) = tuner.tune_rows([Row("Item-KNN", "rec_itemknn")], split)
    assert res["status"] == "ok" and len(res["trials"]) == 2
    assert all("val_F@5" in t for t in res["trials"])
    best = max(res["trials"], key=lambda t: (t["val_F@5"], t["val_NDCG@10"]))
    assert res["chosen"] == best["overrides"]
    n_fits = len(tuner.fitted)
    tuner.run_chosen([Row("Item-KNN again", "rec_itemknn")], split)
    assert len(tuner.fitted) == n_fits  # the chosen configuration was reused, not refitted

    # a later run takes the chosen configuration from this run's tables.json instead of tuning again
    later = PaperTuner(cfg, ds, budget=2, epochs=None, log=lambda *_: None)
    later.load_chosen({"seconds": 1.0, "long": [res, {"label": "Random", "model": "rec_random", "status": "ok"}]})
    assert later.chosen == {"rec_itemknn": res["chosen"]}
    (again,) = later.run_chosen([Row("Item-KNN", "rec_itemknn")], split)
    assert again["chosen"] == res["chosen"] and len(later.fitted) == 1
    assert again["metrics"] == res["metrics"]  # the same configuration, the same fit and test numbers
    with pytest.raises(VidpopError, match="no tuned rows"):
        PaperTuner(cfg, ds, budget=2, epochs=None).load_chosen({"long": [{"model": "rec_pop", "status": "ok"}]})


class _FixedRanking:
    """Ranks items 0, 1, 2, ... for every query (however many are asked)."""

    def recommend(self, queries: list[Any], k: int = 10, exclude_seen: bool = True) -> np.ndarray:
        return np.tile(np.arange(k), (len(queries), 1))


def test_early_stopping_scores_validation_like_the_protocol() -> None:
    """Cold start drops each user's input-period items from the ranking before the cut at 10, and a
    relevant video outside the vocabulary is a miss: the early-stopping metric must do both (it
    ignored ``exclude`` and ``truth_oov`` before)."""
    from vidpop.models.rec_baselines.torch_common import validation_ndcg
    from vidpop.training.rec_protocol import RecValidation

    truth = [np.array([10]), np.array([0])]
    excluded = RecValidation([object(), object()], truth, exclude=[np.arange(5), np.zeros(0, np.int64)])
    m = validation_ndcg(_FixedRanking(), excluded)
    assert m["val_HR@10"] == 1.0  # item 10 is 6th once 0-4 are dropped; the first user's hit was missed
    with_oov = RecValidation([object()], [np.array([0])], truth_oov=np.array([1]))
    ideal_two = 1.0 + 1.0 / np.log2(3)
    assert np.isclose(validation_ndcg(_FixedRanking(), with_oov)["val_NDCG@10"], 1.0 / ideal_two)


def test_chosen_configuration_reaches_the_single_rows_but_not_the_ablation_switches(monkeypatch) -> None:
    """The long table chose relevance off: the short and cold tables' RNN row must run with it (it ran
    with the defaults, relevance on), while every ablation row keeps its own switches."""
    from vidpop.experiments import rec_paper_tuning as rpt
    from vidpop.experiments.rec_tables import ablation_rows, cold_rows, single_rows

    ds = _ds()
    cfg = ProtocolConfig(progress=False, val_frac=0.2)
    split = make_user_split(ds, cfg)
    tuner = rpt.PaperTuner(cfg, ds, budget=2, epochs=None, log=lambda *_: None)
    tuner.chosen = {"interest_rnn": {"use_relevance": False}}
    fitted: dict[str, dict[str, Any]] = {}

    def fake_fit(row: Any, overrides: dict[str, Any], split_: Any) -> None:
        fitted[row.label] = overrides
        raise RuntimeError("not fitted in this test")  # run_chosen reports it and goes on

    monkeypatch.setattr(tuner, "fit_trial", fake_fit)
    rnn = [r for r in single_rows() if r.model == "interest_rnn"]
    tuner.run_chosen(rnn, split)
    assert fitted["Interest RNN (paper)"]["use_relevance"] is False
    tuner.run_chosen([r for r in cold_rows() if r.model == "interest_rnn"], split)
    assert fitted["Interest RNN (paper)"]["use_relevance"] is False
    tuner.run_chosen([r for r in ablation_rows() if r.model == "interest_rnn"], split)
    assert fitted["full"]["use_relevance"] is True and fitted["RNN-noRel"]["use_relevance"] is False
    assert fitted["RNN"] == {**rpt.PROTOCOL_OVERRIDES["interest_rnn"], **dict(ablation_rows()[0].overrides)}
    # a relevance weight chosen on validation applies where relevance is on, not where a row turned it off
    tuner.chosen = {"interest_rnn": {"lambda_rel": 0.05}}
    tuner.run_chosen([r for r in ablation_rows() if r.label in ("full", "RNN-noRel")], split)
    assert fitted["full"]["lambda_rel"] == 0.05 and fitted["full"]["use_relevance"] is True


def test_rec_tables_names_its_tables_and_needs_validation_users_for_chosen_configurations(tmp_path) -> None:
    from typer.testing import CliRunner

    from vidpop.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["rec", "tables", "--tables", "short,bogus"])
    assert isinstance(res.exception, VidpopError) and "bogus" in str(res.exception)
    assert "ablation_short" in str(res.exception)
    res = runner.invoke(app, ["rec", "tables", "--chosen-from", str(tmp_path / "tables.json")])
    assert isinstance(res.exception, VidpopError) and "--val-frac" in str(res.exception)
