"""Model folders are atomic and refused with one line when incomplete or damaged (issue 14), and a
recommender's own save writes its side tables (issue 16 §6). Synthetic interactions, labelled as such."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vidpop.errors import VidpopError
from vidpop.models import build_model, load_model
from vidpop.models.folder import MARKER
from vidpop.models.recommender import RecData

SRC = str(Path(__file__).resolve().parents[1] / "src")


def synthetic_rec_data(n_users: int = 50, n_items: int = 40, seed: int = 0) -> RecData:
    """Synthetic: random watch sequences over ``n_items`` titled videos."""
    rng = np.random.default_rng(seed)
    seqs = [rng.choice(n_items, size=int(rng.integers(3, 12)), replace=False) for _ in range(n_users)]
    ids = [f"v{j}" for j in range(n_items)]
    items = pd.DataFrame({"video_id": ids, "title": [f"title {j}" for j in range(n_items)]})
    return RecData(
        item_ids=np.array(ids),
        user_ids=np.array([f"u{i}" for i in range(n_users)]),
        sequences=seqs,
        times=[np.arange(len(s), dtype="float64") for s in seqs],
        items=items,
    )


@pytest.fixture()
def rec_folder(tmp_path: Path) -> Path:
    rec = build_model("rec_pop").fit(synthetic_rec_data())
    rec.add_known_users([("new user", np.array([1, 2, 3]))])
    return rec.save(tmp_path / "pop")


def test_recommender_save_writes_side_tables_and_marker(rec_folder: Path) -> None:
    files = {p.name for p in rec_folder.iterdir()}
    assert {"config.json", "state.pt", "items.parquet", "users.parquet", MARKER} <= files
    assert not [p for p in rec_folder.parent.iterdir() if p.name.startswith(".")]  # no staging folder left
    users = pd.read_parquet(rec_folder / "users.parquet")
    assert "new user" in set(users["user_id"])
    assert list(users.set_index("user_id").loc["new user", "history"]) == ["v1", "v2", "v3"]
    items = pd.read_parquet(rec_folder / "items.parquet")
    assert list(items["video_id"][:2]) == ["v0", "v1"] and items["title"][1] == "title 1"
    again = load_model(rec_folder)
    again.save(rec_folder.parent / "copy")  # a loaded recommender re-saves its side tables
    pd.testing.assert_frame_equal(pd.read_parquet(rec_folder.parent / "copy" / "users.parquet"), users)


@pytest.mark.parametrize("missing", ["items.parquet", "users.parquet", "state.pt"])
def test_missing_file_is_refused_with_one_line(rec_folder: Path, missing: str) -> None:
    (rec_folder / missing).unlink()
    with pytest.raises(VidpopError, match=f"model folder .* is incomplete: missing {missing} — retrain it"):
        load_model(rec_folder)  # old code: loaded, then serving answered 500 (or a FileNotFoundError)


def test_damaged_config_and_truncated_state_are_refused(rec_folder: Path) -> None:
    state = rec_folder / "state.pt"
    state.write_bytes(state.read_bytes()[:50])
    with pytest.raises(VidpopError, match=r"state\.pt has 50 bytes"):
        load_model(rec_folder)
    (rec_folder / MARKER).unlink()
    meta = json.loads((rec_folder / "config.json").read_text())
    meta.pop("format")  # an old-format folder (no marker expected): the truncation is caught by torch.load
    (rec_folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(VidpopError, match=r"state\.pt cannot be read"):
        load_model(rec_folder)
    (rec_folder / "config.json").write_text('{"model": "rec_pop", "config": {')
    with pytest.raises(VidpopError, match=r"config\.json is unreadable"):
        load_model(rec_folder)


def test_old_folders_without_marker_load_when_complete(rec_folder: Path) -> None:
    (rec_folder / MARKER).unlink()
    with pytest.raises(VidpopError, match=f"missing {MARKER}"):
        load_model(rec_folder)  # this format always writes the marker: its absence means a broken copy
    meta = json.loads((rec_folder / "config.json").read_text())
    meta.pop("format")
    (rec_folder / "config.json").write_text(json.dumps(meta))
    assert load_model(rec_folder).model_name == "rec_pop"


_SAVER = """
import sys, numpy as np
sys.path.insert(0, {tests!r})
from test_model_folder import synthetic_rec_data
from vidpop.models import build_model
rec = build_model("rec_pop").fit(synthetic_rec_data(2000, 8000))
out = {out!r}
rec.save(out)
print("ready", flush=True)
while True:
    rec.save(out)
"""


def test_kill_during_save_leaves_a_complete_folder_or_a_refusal(tmp_path: Path) -> None:
    """kill -9 a process that saves a real recommender over and over, at a random moment, three times at
    once: each folder either loads (with all its files) or is refused with a VidpopError."""
    rng = random.Random(0)
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    procs = []
    for i in range(3):
        code = _SAVER.format(tests=str(Path(__file__).parent), out=str(tmp_path / f"m{i}"))
        procs.append(subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env, text=True))
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    outcomes = []
    for i in range(3):
        out = tmp_path / f"m{i}"
        try:
            model = load_model(out)
        except VidpopError as exc:
            outcomes.append(f"refused: {exc}")
            continue
        assert len(pd.read_parquet(out / "items.parquet")) == 8000 and len(model.get_state()) > 0
        outcomes.append("loads")
    assert len(outcomes) == 3 and all(o == "loads" or o.startswith("refused") for o in outcomes)
    # a later save to the same place removes the dead processes' staging folders
    build_model("rec_pop").fit(synthetic_rec_data()).save(tmp_path / "m0")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".m0.")]
