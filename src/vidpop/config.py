"""Where vidpop reads data and writes caches. Environment variables override the defaults."""

from __future__ import annotations

import os
from pathlib import Path

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
