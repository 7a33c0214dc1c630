"""One ``key=value`` parser behind ``--set`` (train overrides, Ray extraction options) and ``--option``
(adapter options), issue 16 §6: the same rules everywhere."""

from __future__ import annotations

import pytest

from vidpop.config import parse_key_values
from vidpop.errors import VidpopError


def test_values_keys_and_errors() -> None:
    assert parse_key_values(["a=1", " b =x=y", "c=[1, 2]", "d="]) == {"a": 1, "b": "x=y", "c": [1, 2], "d": ""}
    assert parse_key_values(["a=1", "c=true"], "--option", json_values=False) == {"a": "1", "c": "true"}
    with pytest.raises(VidpopError, match="--option expects key=value, got 'novalue'"):
        parse_key_values(["a=1", "novalue"], "--option")
    with pytest.raises(VidpopError, match="key=value"):
        parse_key_values(["=3"])  # no key


def test_the_three_command_lines_share_it() -> None:
    from vidpop.commands.data import parse_options
    from vidpop.training.ddp_entry import parse_overrides

    assert parse_options(["n=3"]) == {"n": "3"}  # adapter options stay text
    assert parse_overrides(["train.epochs=3", "hidden=[8]"]) == {"train": {"epochs": 3}, "hidden": [8]}
    with pytest.raises(VidpopError, match="--set expects key=value"):
        parse_overrides(["epochs"])
