"""Every tunable recommender of the leave-one-out table has a search space, and the space's keys are
real config fields (a typo fails here, not an hour into a tuning run)."""

from __future__ import annotations

import dataclasses
import sys

import pytest

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
