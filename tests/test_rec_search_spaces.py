"""Every tunable recommender of the leave-one-out table has a search space, and the space's keys are
real config fields (a typo fails here, not an hour into a tuning run)."""

from __future__ import annotations

import dataclasses
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from cli_runner import run_cli
from vidpop.commands.rec import command_line
from vidpop.experiments.rec_tables import single_rows
from vidpop.experiments.rec_tuning import SEARCH_SPACES, trial_overrides
from vidpop.models.registry import get_model_class
from vidpop.recipes.rec import Row, build_row_model

#: config fields that are not hyper-parameters (bookkeeping, not tuned)
NOT_TUNED = {"seed", "progress"}


def _tunable(model: str) -> list[str]:
    cfg = get_model_class(model).Config
    return [f.name for f in dataclasses.fields(cfg) if f.name not in NOT_TUNED]


LOO_MODELS = sorted({r.model for r in single_rows() if r.model is not None})


def test_the_loo_table_has_the_interest_rnn_and_the_sequential_baselines() -> None:
    assert {"interest_rnn", "rec_sasrec", "rec_fpmc", "rec_lfm", "rec_itemknn"} <= set(LOO_MODELS)


@pytest.mark.parametrize("model", LOO_MODELS)
def test_every_tunable_loo_model_has_a_search_space_of_real_fields(model: str) -> None:
    if not _tunable(model):  # e.g. popularity: nothing to tune, defaults only
        assert trial_overrides(model, 3) == [{}]
        return
    space = SEARCH_SPACES.get(model)
    assert space, f"{model} has hyper-parameters but no search space"
    assert all(len(v) >= 1 for v in space.values()) and any(len(v) > 1 for v in space.values())
    for key, values in space.items():
        for value in values:  # building the model with the override fails on an unknown (nested) field
            model_ = build_row_model(Row(model, model, {key: value}))
            head, _, rest = key.partition(".")
            got = getattr(getattr(model_.config, head), rest) if rest else getattr(model_.config, head)
            assert got == value
    trials = trial_overrides(model, 3)
    assert trials[0] == {} and len(trials) == 3 and trials[1] != trials[2]


@pytest.mark.parametrize("model", sorted(SEARCH_SPACES))
def test_no_trial_after_the_defaults_is_the_defaults_again(model: str) -> None:
    """SASRec's old seeded draw {full softmax, dropout .3, lr 1e-3} became its defaults: drawn again it
    spent one of its three trials on a configuration already tried, so its budget was two, not three."""
    defaults = build_row_model(Row(model, model, {})).config
    trials = trial_overrides(model, 6)
    assert trials[0] == {} and len(trials) == 6
    for overrides in trials[1:]:
        built = build_row_model(Row(model, model, overrides)).config
        assert built != defaults, f"{model}: trial {overrides} is the defaults"


def test_a_misspelt_space_key_is_an_error() -> None:
    with pytest.raises(Exception, match=r"hiden|no option"):
        build_row_model(Row("interest_rnn", "interest_rnn", {"hiden": 256}))
    with pytest.raises(Exception, match="no option"):
        build_row_model(Row("rec_fpmc", "rec_fpmc", {"train.lrr": 1e-3}))


def test_loo_records_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["/venv/bin/vidpop", "rec", "loo", "--tune-budget", "3"])
    assert command_line() == "vidpop rec loo --tune-budget 3"


def _capture_loo(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``vidpop rec loo`` with the data, the split and the runs replaced: what reaches the runs."""
    import vidpop.commands.rec as rec_cmd
    import vidpop.experiments.rec_tables as tables
    import vidpop.experiments.rec_tuning as tuning
    import vidpop.training.rec_protocol as protocol

    seen: dict[str, Any] = {}

    def tuned(rows: list[Row], split: Any, cfg: Any, ds: Any, budget: int, *a: Any, **k: Any) -> list[dict[str, Any]]:
        seen.update(path="tuned", rows=rows, budget=budget)
        return []

    def untuned(rows: list[Row], split: Any, cfg: Any, ds: Any, epochs: Any, *a: Any, **k: Any) -> list[dict[str, Any]]:
        seen.update(path="untuned", rows=rows, epochs=epochs)
        return []

    monkeypatch.setattr(rec_cmd, "_load", lambda name: None)
    monkeypatch.setattr(protocol, "loo_split", lambda ds, cfg: SimpleNamespace(info={"candidates": "catalogue"}))
    monkeypatch.setattr(tables, "describe_split", lambda split: "")
    monkeypatch.setattr(tuning, "tune_and_test", tuned)
    monkeypatch.setattr(tables, "run_rows", untuned)
    return seen


def test_loo_set_overrides_reach_every_model_and_are_scored_on_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _capture_loo(monkeypatch)
    args = ["rec", "loo", "--models", "interest_rnn,rec_sasrec", "--set", "use_interest=false", "--set", "train.seed=1"]
    code, text = run_cli(*args)
    assert code == 0, text
    assert seen["path"] == "tuned" and seen["budget"] == 1  # validation scored before the test item
    assert [r.model for r in seen["rows"]] == ["interest_rnn", "rec_sasrec"]
    assert all(r.overrides == {"use_interest": False, "train.seed": 1} for r in seen["rows"])


def test_loo_with_an_epoch_cap_keeps_the_quick_untuned_path(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _capture_loo(monkeypatch)
    code, text = run_cli("rec", "loo", "--models", "rec_pop", "--epochs", "2")
    assert code == 0, text
    assert seen["path"] == "untuned" and seen["epochs"] == 2 and seen["rows"][0].overrides == {}
