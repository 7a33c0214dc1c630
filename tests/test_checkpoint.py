"""fit_module checkpoints atomically every N epochs and resumes exactly where a run stopped; models are
seeded before they are built (issue 16 §5). Data are synthetic (labelled as such)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np
import pytest
import torch

from vidpop.errors import VidpopError
from vidpop.training import loop
from vidpop.training.loop import TrainConfig, fit_module


def _data(seed: int = 0) -> dict[str, np.ndarray]:
    """Synthetic regression: 96 rows, 5 features, a noisy linear target."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(96, 5)).astype(np.float32)
    return {"x": x, "y": (x @ rng.normal(size=(5, 1)) + 0.1 * rng.normal(size=(96, 1))).astype(np.float32)}


def _net() -> torch.nn.Module:
    torch.manual_seed(3)
    # dropout: the resumed run must also restore the global torch RNG, not only the batch order
    return torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(16, 1))


def _loss(m: torch.nn.Module, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    return torch.nn.functional.mse_loss(m(b["x"]), b["y"]), {}


def _cfg(tmp: Path | None, **kw: object) -> TrainConfig:
    base = {"epochs": 6, "batch_size": 16, "lr": 0.01, "patience": 0, "progress": False}
    if tmp is not None:
        base |= {"checkpoint_dir": str(tmp), "checkpoint_every": 1}
    return TrainConfig(**(base | kw))  # type: ignore[arg-type]


class KilledError(Exception):
    """Stands for the process dying mid-run."""


def _stop_at(epoch: int) -> Callable[[int], None]:
    def cb(e: int) -> None:
        if e == epoch:
            raise KilledError

    return cb


def test_resumed_run_ends_exactly_like_an_uninterrupted_one(tmp_path: Path) -> None:
    whole = _net()
    h_whole = fit_module(whole, _loss, _data(), _data(1), _cfg(None))

    loop.reset_fit_calls(tmp_path)
    with pytest.raises(KilledError):  # the process "dies" at the start of epoch 3: epochs 0-2 are on disk
        fit_module(_net(), _loss, _data(), _data(1), _cfg(tmp_path), on_epoch_start=_stop_at(3))
    assert (tmp_path / "fit-1.pt").is_file()
    assert not list(tmp_path.glob(".*tmp*"))

    loop.reset_fit_calls(tmp_path)  # a new process
    started: list[int] = []
    resumed = _net()
    h = fit_module(resumed, _loss, _data(), _data(1), _cfg(tmp_path, resume=True), on_epoch_start=started.append)
    assert started == [3, 4, 5]  # only the missing epochs ran
    assert [e["train_loss"] for e in h.epochs] == pytest.approx([e["train_loss"] for e in h_whole.epochs], rel=1e-6)
    assert h.best_epoch == h_whole.best_epoch
    for k, v in whole.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[k], v)

    loop.reset_fit_calls(tmp_path)  # a finished fit is not trained again on resume
    again = _net()
    h2 = fit_module(again, _loss, _data(), _data(1), _cfg(tmp_path, resume=True), on_epoch_start=started.append)
    assert started == [3, 4, 5] and len(h2.epochs) == 6
    for k, v in whole.state_dict().items():
        torch.testing.assert_close(again.state_dict()[k], v)


def test_without_resume_a_run_starts_over(tmp_path: Path) -> None:
    loop.reset_fit_calls(tmp_path)
    fit_module(_net(), _loss, _data(), None, _cfg(tmp_path, epochs=2))
    started: list[int] = []
    loop.reset_fit_calls(tmp_path)
    fit_module(_net(), _loss, _data(), None, _cfg(tmp_path, epochs=2), on_epoch_start=started.append)
    assert started == [0, 1]


def test_checkpoint_every_n_epochs_and_a_failed_write_keeps_the_last_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[int] = []
    real = loop.save_checkpoint

    def spy(path: Path, state: dict) -> None:
        written.append(len(state["history"]["epochs"]))
        real(path, state)

    monkeypatch.setattr(loop, "save_checkpoint", spy)
    loop.reset_fit_calls(tmp_path)
    fit_module(_net(), _loss, _data(), None, _cfg(tmp_path, epochs=7, checkpoint_every=3))
    assert written == [3, 6, 7]  # every 3 epochs, and the last one (marked finished)

    before = (tmp_path / "fit-1.pt").read_bytes()

    def full_disk(obj: object, fh: IO[bytes]) -> None:
        fh.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(loop.torch, "save", full_disk)
    with pytest.raises(OSError, match="No space"):
        real(tmp_path / "fit-1.pt", {"x": 1})
    assert (tmp_path / "fit-1.pt").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit-1.pt"]


def test_a_checkpoint_of_another_model_is_refused(tmp_path: Path) -> None:
    loop.reset_fit_calls(tmp_path)
    fit_module(_net(), _loss, _data(), None, _cfg(tmp_path, epochs=1))
    loop.reset_fit_calls(tmp_path)
    other = torch.nn.Linear(5, 1)
    with pytest.raises(VidpopError, match="different model"):
        fit_module(other, _loss, _data(), None, _cfg(tmp_path, epochs=1, resume=True))


def test_mlp_weights_follow_the_seed_not_the_global_rng() -> None:
    """mlp.py built its network before any seed was set: two fits with the same config differed."""
    from vidpop.models import build_model

    d = _data()
    fits = []
    for global_seed in (11, 22):
        torch.manual_seed(global_seed)
        m = build_model("mlp", hidden=(8,), train={"epochs": 1, "progress": False, "seed": 5})
        fits.append(m.fit(d["x"], d["y"]).predict(d["x"]))
    np.testing.assert_array_equal(fits[0], fits[1])


def test_vidpop_train_killed_then_resumed(tmp_path: Path) -> None:
    """`vidpop train` on real MicroLens titles, kill -9 once a checkpoint is on disk, then
    `--resume OUT.ckpt` continues from it and finishes the model folder (and drops the checkpoint)."""
    out = tmp_path / "poe"
    ckpt = tmp_path / "poe.ckpt"
    base = [sys.executable, "-m", "vidpop.cli", "train", "variational_poe", "--data", "microlens"]
    args = [*base, "--limit", "300", "--epochs", "40", "--set", "train.patience=0", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and first.poll() is None and not (ckpt / "fit-1.pt").exists():
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert (ckpt / "fit-1.pt").exists() and not (out / "config.json").exists()
    done_before = len(torch.load(ckpt / "fit-1.pt", weights_only=False)["history"]["epochs"])
    res = subprocess.run([*args, "--resume", str(ckpt)], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"({done_before} epoch(s) done)" in res.stderr
    report = json.loads((out / "train_report.json").read_text())
    assert len(report["epochs"]) == 40 and [e["epoch"] for e in report["epochs"]] == list(range(40))
    assert not ckpt.exists()
