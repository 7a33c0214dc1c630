"""On-disk feature store, keyed by (video id, extractor, version).

Layout: ``<root>/<extractor>@<version>/part-<n>.npz`` (ids, values[, mask]) and
``part-<n>.errors.json`` (error rows). Every part is written to a temporary name and renamed,
so a killed run leaves only complete parts; rerunning skips every id already stored (values
or error) and continues. One part per batch keeps writes cheap and crash-safe at any scale.

A failed write (full disk, read-only store, Ctrl-C) removes its temporary file. Extraction holds a
file lock per feature set (``<set>/.lock``, released by the kernel if the holder dies): a second
process that needs the same set waits, then skips every part the first one wrote, so two runs never
compute the same rows twice nor interleave their parts.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np
from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from vidpop.atomic import atomic_write
from vidpop.errors import MissingBackboneError


@dataclass(frozen=True)
class ErrorRow:
    """One item that could not be processed: which, where in the pipeline, and why."""

    video_id: str
    stage: str
    reason: str


@dataclass
class ExtractResult:
    """What an extractor returns for one batch: values for the ok ids, error rows for the rest."""

    ids: list[str]
    values: np.ndarray  # (len(ids), *shape) float32
    errors: list[ErrorRow]
    #: optional per-item mask (e.g. audio missing), same leading length as ids
    mask: np.ndarray | None = None


class Extractor(Protocol):
    """Anything that turns a batch of items into feature vectors."""

    name: str
    version: str

    def extract(self, items: Sequence[Any]) -> ExtractResult:
        """``items`` are whatever the caller iterates (e.g. (video_id, path) pairs)."""
        ...


@dataclass
class RunReport:
    extractor: str
    total: int
    skipped: int
    extracted: int
    errors: int
    seconds: float

    @property
    def items_per_second(self) -> float:
        done = self.extracted + self.errors
        return done / self.seconds if self.seconds > 0 else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "items_per_second": round(self.items_per_second, 2)}


class FeatureStore:
    """A folder of feature sets. ``store.write(...)``/``store.read(...)`` per extractor+version."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _dir(self, name: str, version: str) -> Path:
        return self.root / f"{name}@{version}"

    def feature_sets(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and "@" in p.name)

    # ------------------------------------------------------------------ writing
    def write_part(self, name: str, version: str, result: ExtractResult) -> None:
        """Atomically add one batch (values and error rows)."""
        d = self._dir(name, version)
        d.mkdir(parents=True, exist_ok=True)
        stem = f"part-{time.time_ns():020d}-{os.getpid()}"
        if result.ids:
            arrays: dict[str, np.ndarray] = {
                "ids": np.asarray(result.ids, dtype=str),
                "values": np.asarray(result.values, dtype=np.float32),
            }
            if result.mask is not None:
                arrays["mask"] = np.asarray(result.mask, dtype=bool)
            _atomic_write(d / f"{stem}.npz", lambda fh: np.savez(fh, **arrays))
        if result.errors:
            payload = json.dumps([asdict(e) for e in result.errors]).encode()
            _atomic_write(d / f"{stem}.errors.json", lambda fh: fh.write(payload))

    @contextmanager
    def extracting(self, name: str, version: str, progress: bool = True) -> Iterator[None]:
        """Hold the lock of one feature set while extracting into it; waits (saying so) while another
        process holds it. On entry, removes temporary files left by writers that died mid-write."""
        d = self._dir(name, version)
        d.mkdir(parents=True, exist_ok=True)
        lock = FileLock(d / ".lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if progress:
                print(
                    f"{name}@{version}: another process is extracting this feature set; waiting for it "
                    "(its rows will be reused, not recomputed)",
                    file=sys.stderr,
                    flush=True,
                )
            lock.acquire()
        try:
            _remove_stale_tmp(d)
            yield
        finally:
            lock.release()

    # ------------------------------------------------------------------ reading
    def _parts(self, name: str, version: str) -> list[Path]:
        d = self._dir(name, version)
        return sorted(d.glob("part-*.npz")) if d.exists() else []

    def errors(self, name: str, version: str) -> list[ErrorRow]:
        d = self._dir(name, version)
        rows: list[ErrorRow] = []
        for p in sorted(d.glob("part-*.errors.json")) if d.exists() else []:
            rows.extend(ErrorRow(**r) for r in json.loads(p.read_text()))
        return rows

    def done_ids(self, name: str, version: str, include_errors: bool = True) -> set[str]:
        done: set[str] = set()
        for p in self._parts(name, version):
            with np.load(p) as z:
                done.update(z["ids"].tolist())
        if include_errors:
            done.update(e.video_id for e in self.errors(name, version))
        return done

    def read(self, name: str, version: str) -> tuple[list[str], np.ndarray, np.ndarray | None]:
        """All stored ids, values (n, *shape) and mask (or None) of one feature set."""
        ids: list[str] = []
        vals: list[np.ndarray] = []
        masks: list[np.ndarray] = []
        for p in self._parts(name, version):
            with np.load(p) as z:
                ids.extend(z["ids"].tolist())
                vals.append(z["values"])
                if "mask" in z:
                    masks.append(z["mask"])
        if not vals:
            return [], np.zeros((0,), np.float32), None
        mask = np.concatenate(masks) if len(masks) == len(vals) else None
        return ids, np.concatenate(vals), mask

    def lookup(self, name: str, version: str, video_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Values aligned to ``video_ids`` and a boolean ``present`` mask (False = not extracted,
        errored, or masked as missing by the extractor). Absent rows are zeros *and* flagged."""
        ids, values, mask = self.read(name, version)
        if not ids:
            raise KeyError(f"feature set {name}@{version} is empty or missing under {self.root}")
        pos = {v: i for i, v in enumerate(ids)}
        out = np.zeros((len(video_ids), *values.shape[1:]), np.float32)
        present = np.zeros(len(video_ids), bool)
        for i, vid in enumerate(video_ids):
            j = pos.get(str(vid))
            if j is not None and (mask is None or mask[j].all()):
                out[i] = values[j]
                present[i] = True
        return out, present


def run_extraction(
    store: FeatureStore,
    extractor: Extractor,
    items: Iterable[Any],
    item_id: Callable[[Any], str],
    batch_size: int = 32,
    limit: int | None = None,
    progress: bool = True,
    retry_errors: bool = False,
) -> RunReport:
    """Extract features for ``items`` not yet in the store, one atomic part per batch.

    ``item_id`` gives an item's video id. Exceptions raised by ``extractor.extract`` for a whole
    batch are retried item by item, so one bad file costs one error row, never the run.
    """
    todo_all = list(items)
    if limit is not None:
        todo_all = todo_all[:limit]

    def pending() -> list[Any]:
        done = store.done_ids(extractor.name, extractor.version, include_errors=not retry_errors)
        return [it for it in todo_all if item_id(it) not in done]

    t0 = time.perf_counter()
    extracted = errors = 0
    todo = pending()
    if todo:  # the lock only when there is work: a complete (or read-only) store is just read
        with store.extracting(extractor.name, extractor.version, progress):
            todo = pending()  # again: a process we waited for may have stored some of them
            bar = tqdm(total=len(todo), desc=f"{extractor.name}", unit="item", disable=not progress)
            for start in range(0, len(todo), batch_size):
                batch = todo[start : start + batch_size]
                try:
                    result = extractor.extract(batch)
                except MissingBackboneError:  # the environment, not the items: never store it as error rows
                    raise
                except Exception:  # isolate the failing item below
                    result = _extract_one_by_one(extractor, batch, item_id)
                store.write_part(extractor.name, extractor.version, result)
                extracted += len(result.ids)
                errors += len(result.errors)
                bar.update(len(batch))
                bar.set_postfix(errors=errors)
            bar.close()
    seconds = time.perf_counter() - t0
    return RunReport(extractor.name, len(todo_all), len(todo_all) - len(todo), extracted, errors, seconds)


def _atomic_write(final: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """:func:`vidpop.atomic.atomic_write` under the store's temp name (the feature-set lock makes it unique)."""
    atomic_write(final, write, tmp=final.with_name(f".{final.name}.tmp"))


_TMP = re.compile(r"^\.part-\d+-(\d+)\..*\.tmp$")


def _remove_stale_tmp(d: Path) -> None:
    """Delete ``.part-*-<pid>.*.tmp`` files whose writer process no longer exists (killed mid-write)."""
    for p in d.glob(".part-*.tmp"):
        m = _TMP.match(p.name)
        if m is None:
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            p.unlink(missing_ok=True)
        except PermissionError:  # alive, owned by another user
            pass


def _extract_one_by_one(extractor: Extractor, batch: list[Any], item_id: Callable[[Any], str]) -> ExtractResult:
    ids: list[str] = []
    vals: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    errs: list[ErrorRow] = []
    for it in batch:
        try:
            r = extractor.extract([it])
        except MissingBackboneError:
            raise
        except Exception as exc:  # one bad item -> one error row
            errs.append(ErrorRow(item_id(it), "extract", f"{type(exc).__name__}: {exc}"))
            continue
        ids.extend(r.ids)
        errs.extend(r.errors)
        if r.ids:
            vals.append(r.values)
            if r.mask is not None:
                masks.append(r.mask)
    values = np.concatenate(vals) if vals else np.zeros((0,), np.float32)
    mask = np.concatenate(masks) if masks and len(masks) == len(vals) else None
    return ExtractResult(ids, values, errs, mask)
