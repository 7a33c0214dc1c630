"""Where vidpop reads data and writes caches. Environment variables override the defaults."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Environment variable naming the folder that holds the staged datasets (``<root>/<name>/``).
DATA_ENV = "VIDPOP_DATA"
#: Environment variable naming the cache folder (imported datasets, feature stores, exports).
CACHE_ENV = "VIDPOP_CACHE"


def _repo_root() -> Path:
    # src/vidpop/config.py -> repo root is three levels up.
    return Path(__file__).resolve().parents[2]


def data_root() -> Path:
    """Root of the real datasets: ``$VIDPOP_DATA`` or ``../shared/data`` beside the checkout."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return (_repo_root().parent / "shared" / "data").resolve()


def dataset_dir(name: str) -> Path:
    """Folder of one staged dataset, e.g. ``dataset_dir("microlens")``."""
    return data_root() / name


def cache_root() -> Path:
    """Root for caches: ``$VIDPOP_CACHE`` or ``~/.cache/vidpop``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return Path.home() / ".cache" / "vidpop"


def parse_key_values(pairs: Sequence[str], option: str = "--set", json_values: bool = True) -> dict[str, Any]:
    """The one ``key=value`` parser of the command lines (``--set``, ``--option``): ``["a=1", "b=x=y"]`` ->
    ``{"a": 1, "b": "x=y"}``. Values are JSON where they parse (``json_values``), else the text; keys are
    stripped; a pair without ``=`` or without a key is a user error naming ``option``."""
    import contextlib
    import json

    from vidpop.errors import VidpopError

    bad = [p for p in pairs if "=" not in p or not p.split("=", 1)[0].strip()]
    if bad:
        raise VidpopError(f"{option} expects key=value, got {', '.join(map(repr, bad))}")
    out: dict[str, Any] = {}
    for pair in pairs:
        key, raw = pair.split("=", 1)
        value: Any = raw
        if json_values:
            with contextlib.suppress(json.JSONDecodeError):  # else plain text
                value = json.loads(raw)
        out[key.strip()] = value
    return out
