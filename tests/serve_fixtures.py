"""Shared fixtures of the serving tests (``test_api.py``, ``test_browser.py``).

Small but real models, trained once per test session through the same recipes as ``vidpop train``:
variational PoE on MicroLens titles, the attention explainer on YouTube headlines (+ covers), and two
recommenders on MicroLens watch sequences (popularity for known users and histories, TF-IDF content
for text-only cold start). A module-level cache makes both test files share one training run.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from vidpop.config import data_root

_TRAINED: dict[str, Path] = {}


def microlens_dir() -> Path:
    return data_root() / "microlens"


def real_clip() -> Path:
    """The smallest real MicroLens clip (skip when the shared data is absent)."""
    clips = sorted((microlens_dir() / "videos").glob("*.mp4"), key=lambda p: p.stat().st_size)
    if not clips:
        pytest.skip(f"no MicroLens clips under {microlens_dir() / 'videos'}")
    return clips[0]


def real_cover() -> Path:
    covers = sorted((microlens_dir() / "covers").glob("*.jpg"))
    if not covers:
        pytest.skip(f"no MicroLens covers under {microlens_dir() / 'covers'}")
    return covers[0]


def train_models(root: Path) -> Path:
    """Train the fixture bundle into ``root`` (about half a minute with a warm feature cache)."""
    from vidpop.recipes import train

    poe = {"recipe": {"limit": 600}, "train": {"epochs": 5}, "n_samples": 200}
    train("variational_poe", "microlens", root / "poe", poe)
    train(
        "attention_explain",
        "youtube_views_subscribers_2025",
        root / "explain",
        {"recipe": {"limit": 600, "covers_limit": 400}, "train": {"epochs": 2}},
    )
    train("rec_pop", "microlens", root / "rec_pop", {"recipe": {"max_test_users": 200}})
    train("rec_cb", "microlens", root / "rec_text", {"recipe": {"max_test_users": 200}})
    return root


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One trained bundle per session, shared by every module that imports this fixture."""
    if "root" not in _TRAINED:
        if not (microlens_dir() / "videos").is_dir():
            pytest.skip(f"the shared MicroLens data is missing ({microlens_dir()})")
        _TRAINED["root"] = train_models(tmp_path_factory.mktemp("serve_models"))
    return _TRAINED["root"]


def known_user(models: Path) -> str:
    return str(pd.read_parquet(models / "rec_pop" / "users.parquet")["user_id"].iloc[0])


def covered_item(models: Path) -> tuple[str, str]:
    """(video id, title) of a recommendable video whose cover file exists."""
    items = pd.read_parquet(models / "rec_text" / "items.parquet")
    for vid, title, cover in zip(items["video_id"], items["title"], items["cover_path"], strict=True):
        if isinstance(cover, str) and Path(cover).is_file():
            return str(vid), str(title)
    pytest.skip("no recommendable video has a cover file")
    raise AssertionError  # unreachable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """uvicorn serving an app in a background thread on a free loopback port."""

    def __init__(self, app: object) -> None:
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
