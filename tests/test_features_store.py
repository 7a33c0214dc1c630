"""FeatureStore / run_extraction: atomic parts, resume after interruption (in-process and a real
killed subprocess), error isolation. Extractors here are synthetic (deterministic arrays from ids)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import numpy as np
import pytest

from vidpop.errors import MissingBackboneError
from vidpop.features.store import ErrorRow, ExtractResult, FeatureStore, run_extraction


def _vec(vid: str) -> np.ndarray:
    return np.full(4, float(vid), np.float32)


class CountingExtractor:
    """Synthetic: value = id repeated; counts every id it computes; can fail on chosen ids/batches."""

    name = "synthetic"
    version = "1"

    def __init__(self, bad: frozenset[str] = frozenset(), interrupt_on_call: int | None = None) -> None:
        self.seen: list[str] = []
        self.calls = 0
        self.bad = bad
        self.interrupt_on_call = interrupt_on_call

    def extract(self, items: Sequence[str]) -> ExtractResult:
        self.calls += 1
        if self.interrupt_on_call is not None and self.calls == self.interrupt_on_call:
            raise KeyboardInterrupt
        if any(i in self.bad for i in items) and len(items) > 1:
            raise RuntimeError("batch contains a bad item")
        if items and items[0] in self.bad:
            raise ValueError(f"cannot read {items[0]}")
        self.seen.extend(items)
        return ExtractResult(list(items), np.stack([_vec(i) for i in items]), [])


IDS = [str(i) for i in range(10)]


def test_write_read_lookup_roundtrip(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    store.write_part("k", "1", ExtractResult(["a", "b"], np.eye(2, dtype=np.float32), [ErrorRow("c", "decode", "bad")]))
    store.write_part("k", "1", ExtractResult(["d"], np.ones((1, 2), np.float32), [], mask=np.array([True])))
    ids, values, mask = store.read("k", "1")
    assert sorted(ids) == ["a", "b", "d"] and values.shape == (3, 2)
    assert mask is None  # one part lacks a mask, so no mask is claimed for all
    vals, present = store.lookup("k", "1", ["d", "x", "a", "c"])
    assert present.tolist() == [True, False, True, False]
    np.testing.assert_array_equal(vals[2], [1, 0])
    assert not vals[1].any() and not vals[3].any()
    assert store.errors("k", "1") == [ErrorRow("c", "decode", "bad")]
    assert store.done_ids("k", "1") == {"a", "b", "c", "d"}
    assert store.done_ids("k", "1", include_errors=False) == {"a", "b", "d"}
    assert store.feature_sets() == ["k@1"]


def test_lookup_masked_rows_are_not_present(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    store.write_part("a", "1", ExtractResult(["x", "y"], np.ones((2, 3), np.float32), [], mask=np.array([True, False])))
    _, present = store.lookup("a", "1", ["x", "y"])
    assert present.tolist() == [True, False]


def test_half_written_part_is_invisible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FeatureStore(tmp_path)
    store.write_part("k", "1", ExtractResult(["a"], np.ones((1, 2), np.float32), []))

    def crash(fh, **arrays):  # write some bytes, then die like a killed process
        fh.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        store.write_part("k", "1", ExtractResult(["b"], np.ones((1, 2), np.float32), []))
    monkeypatch.undo()
    leftovers = [p.name for p in (tmp_path / "k@1").iterdir()]
    assert not any(n.endswith(".tmp") for n in leftovers)  # the partial temp file is removed (issue 14)
    ids, values, _ = store.read("k", "1")
    assert ids == ["a"] and values.shape == (1, 2)


def test_interrupted_run_resumes_without_recomputing(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    first = CountingExtractor(interrupt_on_call=3)
    with pytest.raises(KeyboardInterrupt):
        run_extraction(store, first, IDS, str, batch_size=3, progress=False)
    done_before = store.done_ids("synthetic", "1")
    assert done_before == set(IDS[:6])  # two full batches were stored before the interrupt

    second = CountingExtractor()
    report = run_extraction(store, second, IDS, str, batch_size=3, progress=False)
    assert set(second.seen) == set(IDS) - done_before  # nothing finished is recomputed
    assert report.skipped == 6 and report.extracted == 4 and report.total == 10
    ids, _, _ = store.read("synthetic", "1")
    assert sorted(ids) == sorted(IDS)  # nothing lost, nothing duplicated
    vals, present = store.lookup("synthetic", "1", IDS)
    assert present.all()
    np.testing.assert_array_equal(vals[:, 0], np.arange(10))


def test_bad_item_costs_one_error_row(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    ext = CountingExtractor(bad=frozenset({"4"}))
    report = run_extraction(store, ext, IDS, str, batch_size=5, progress=False)
    assert report.extracted == 9 and report.errors == 1
    (err,) = store.errors("synthetic", "1")
    assert err.video_id == "4" and err.stage == "extract" and "cannot read 4" in err.reason
    # a rerun skips the error too unless asked to retry it
    again = CountingExtractor()
    assert run_extraction(store, again, IDS, str, progress=False).skipped == 10 and again.seen == []
    retry = run_extraction(store, again, IDS, str, progress=False, retry_errors=True)
    assert retry.extracted == 1 and again.seen == ["4"]


def test_missing_backbone_is_raised_not_stored(tmp_path: Path) -> None:
    class NoWeights(CountingExtractor):
        def extract(self, items: Sequence[str]) -> ExtractResult:
            raise MissingBackboneError("pip install something")

    store = FeatureStore(tmp_path)
    with pytest.raises(MissingBackboneError):
        run_extraction(store, NoWeights(), IDS, str, progress=False)
    assert store.errors("synthetic", "1") == [] and store.done_ids("synthetic", "1") == set()


KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from vidpop.features.store import ExtractResult, FeatureStore, run_extraction

    class Slow:
        name, version = "synthetic", "1"
        def extract(self, items):
            time.sleep(0.3)
            return ExtractResult(list(items), np.stack([np.full(4, float(i), np.float32) for i in items]), [])

    run_extraction(FeatureStore(sys.argv[1]), Slow(), [str(i) for i in range(40)], str, batch_size=2, progress=False)
    """
)


def test_killed_subprocess_resumes(tmp_path: Path) -> None:
    """SIGKILL a real extraction after its first parts are on disk; the rerun keeps them."""
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT)
    root = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, str(script), str(root)], env={**os.environ})
    part_dir = root / "synthetic@1"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(part_dir.glob("part-*.npz"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    store = FeatureStore(root)
    done = store.done_ids("synthetic", "1")
    assert 4 <= len(done) < 40  # killed midway, with complete parts only
    ext = CountingExtractor()
    all_ids = [str(i) for i in range(40)]
    report = run_extraction(store, ext, all_ids, str, batch_size=8, progress=False)
    assert set(ext.seen) == set(all_ids) - done and report.skipped == len(done)
    ids, values, _ = store.read("synthetic", "1")
    assert sorted(ids, key=int) == all_ids
    np.testing.assert_array_equal(np.sort(values[:, 0]), np.arange(40))


def test_failed_write_removes_its_temporary_part(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk mid-write: the error reaches the caller and no ``.part-*.tmp`` stays (issue 14)."""
    import errno

    import vidpop.features.store as store_mod

    def full_disk(fh: IO[bytes], **arrays: np.ndarray) -> None:
        fh.write(b"PK\x03\x04 partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_mod.np, "savez", full_disk)
    store = FeatureStore(tmp_path)
    with pytest.raises(OSError, match="No space left"):
        store.write_part("k", "1", ExtractResult(["a"], np.ones((1, 2), np.float32), []))
    assert list((tmp_path / "k@1").iterdir()) == []
    assert store.done_ids("k", "1") == set()


WORKER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from vidpop.features.store import ExtractResult, FeatureStore, run_extraction

    root, log, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])

    class Slow:
        name, version = "synthetic", "1"
        def extract(self, items):
            with open(log, "a") as fh:  # which ids this process computed
                fh.write("".join(f"{i}\\n" for i in items))
            time.sleep(delay)
            return ExtractResult(list(items), np.stack([np.full(4, float(i), np.float32) for i in items]), [])

    run_extraction(FeatureStore(root), Slow(), [str(i) for i in range(40)], str, batch_size=2, progress=True)
    """
)


def _worker(tmp_path: Path, tag: str, delay: float) -> tuple[subprocess.Popen, Path]:
    script = tmp_path / "worker.py"
    script.write_text(WORKER_SCRIPT)
    log = tmp_path / f"{tag}.log"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "store"), str(log), str(delay)],
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, log


def _computed(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def _assert_store_has_each_row_once(root: Path) -> None:
    ids, values, _ = FeatureStore(root).read("synthetic", "1")
    assert sorted(ids, key=int) == [str(i) for i in range(40)]  # none lost, none twice
    np.testing.assert_array_equal(values[:, 0], np.asarray(ids, np.float32))


def test_two_processes_extracting_one_set_compute_each_row_once(tmp_path: Path) -> None:
    """The second extractor waits on the set's lock and then skips the first one's parts (the old
    store had both compute all 40 rows and interleave their parts)."""
    first, log_a = _worker(tmp_path, "a", 0.3)  # 20 batches: about 6 s of work
    part_dir = tmp_path / "store" / "synthetic@1"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(part_dir.glob("part-*.npz")):
        time.sleep(0.02)
    assert first.poll() is None
    second, log_b = _worker(tmp_path, "b", 0.01)
    _, err_b = second.communicate(timeout=120)
    first.wait(timeout=120)
    assert first.returncode == 0 and second.returncode == 0, err_b
    a, b = _computed(log_a), _computed(log_b)
    assert len(a) + len(b) == 40 and set(a) | set(b) == {str(i) for i in range(40)}
    assert b == []  # the first process held the lock until it had stored everything
    assert "another process is extracting" in err_b
    _assert_store_has_each_row_once(tmp_path / "store")


def test_kill_9_of_the_lock_holder_lets_the_waiting_extractor_finish(tmp_path: Path) -> None:
    """kill -9 during extraction, with a second extractor waiting: the kernel drops the dead process's
    lock, the second one resumes after the last complete part, and no row is lost or stored twice.
    A temporary file of a writer that died mid-write is removed."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    part_dir = tmp_path / "store" / "synthetic@1"
    part_dir.mkdir(parents=True)
    stale = part_dir / f".part-{time.time_ns():020d}-{dead.pid}.npz.tmp"
    stale.write_bytes(b"")  # what a writer killed mid-write leaves
    first, log_a = _worker(tmp_path, "a", 0.3)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(part_dir.glob("part-*.npz"))) < 2:
        time.sleep(0.02)
    second, log_b = _worker(tmp_path, "b", 0.01)
    time.sleep(0.5)  # the second one is now waiting on the lock
    assert second.poll() is None
    first.send_signal(signal.SIGKILL)
    first.wait()
    _, err_b = second.communicate(timeout=120)
    assert second.returncode == 0, err_b
    stored_by_a = FeatureStore(tmp_path / "store")
    a, b = set(_computed(log_a)), _computed(log_b)
    assert len(b) == len(set(b))  # the second process computed nothing twice
    assert set(b) | a == {str(i) for i in range(40)}
    assert 4 <= 40 - len(b) < 40  # it reused the killed process's complete parts
    _assert_store_has_each_row_once(stored_by_a.root)
    assert not stale.exists()
