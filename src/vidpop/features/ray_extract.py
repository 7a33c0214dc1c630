"""Distributed feature extraction on Ray Data: the same extractors, the same feature-store parts.

One box is not enough for millions of videos; Ray Data already schedules work over a cluster, so
vidpop adds no cluster code of its own. :func:`ray_extract` turns the items into a ``ray.data``
dataset (from a list of video paths, a Parquet manifest, or an imported
:class:`~vidpop.data.schema.VideoDataset`), and a pool of actors — each holding one extractor
built by :func:`~vidpop.features.extract.build_extractor`, weights loaded once — extracts batches
and writes them with :meth:`FeatureStore.write_part`. So the parts are atomic, named per process,
identical in content to a single-process run, and a rerun (Ray or not) skips every stored id.

On a cluster the store folder must be on a filesystem every node sees (NFS, a mounted bucket) and
the video paths must resolve on every node::

    import ray
    ray.init(address="ray://head-node:10001")        # or address="auto" on a cluster node
    ray_extract(["/mnt/videos/1.mp4", ...], "frames", "/mnt/features", num_workers=64)
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vidpop.config import parse_key_values
from vidpop.data.schema import VideoDataset
from vidpop.errors import VidpopError
from vidpop.features.extract import DEFAULT_BATCH, build_extractor, dataset_items, resolve_kind
from vidpop.features.store import FeatureStore, RunReport, _extract_one_by_one

#: manifest columns: the id and the extractor's input (``path`` is accepted for any file kind)
ID_COLUMN = "video_id"


class ExtractWorker:
    """A Ray Data actor: builds the extractor once, then extracts and stores one batch per call."""

    def __init__(self, kind: str, options: dict[str, Any], store_root: str, threads: int = 1) -> None:
        import torch

        torch.set_num_threads(threads)  # one Ray CPU per actor: do not oversubscribe the node
        self.ext = build_extractor(kind, **options)
        self.store = FeatureStore(store_root)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items = [
            (str(v), None if x is None or (isinstance(x, float) and np.isnan(x)) else x)
            for v, x in zip(batch[ID_COLUMN], batch["input"], strict=True)
        ]
        n_ok = n_err = 0
        if items:
            try:
                result = self.ext.extract(items)
            except Exception:  # one bad item -> one error row, as in run_extraction
                result = _extract_one_by_one(self.ext, items, lambda it: it[0])
            self.store.write_part(self.ext.name, self.ext.version, result)
            n_ok, n_err = len(result.ids), len(result.errors)
        return {"extracted": np.array([n_ok]), "errors": np.array([n_err])}


def _items_from(source: Any, ext: Any) -> list[tuple[str, Any]]:
    """Items (id, input) from a dataset, a list of paths or a Parquet manifest."""
    if isinstance(source, VideoDataset):
        return dataset_items(source, ext)
    if isinstance(source, str | Path):
        if not str(source).endswith(".parquet"):
            raise VidpopError(f"expected a list of video paths or a .parquet manifest, got {source!r}")
        return manifest_items(Path(source), ext)
    return [(Path(p).stem, str(p)) for p in source]


def manifest_items(path: Path, ext: Any) -> list[tuple[str, Any]]:
    """(id, input) rows of a manifest with ``video_id`` and the extractor's column (or ``path``).

    Read on the driver (two columns; ~100 MB for millions of rows) so the done ids are filtered
    before any work is scheduled — and the read never competes with the actors for CPU slots."""
    import pyarrow.parquet as pq

    if not path.is_file():
        raise VidpopError(f"manifest not found: {path}")
    names = pq.read_schema(path).names
    inp = ext.column if ext.column in names else "path"
    if ID_COLUMN not in names or inp not in names:
        raise VidpopError(
            f"manifest {path.name} needs columns {ID_COLUMN!r} and {ext.column!r} (or 'path'); has {names}"
        )
    df = pd.read_parquet(path, columns=[ID_COLUMN, inp])
    return [(str(v), None if pd.isna(x) else x) for v, x in zip(df[ID_COLUMN], df[inp], strict=True)]


def ray_extract(
    source: VideoDataset | Sequence[str | Path] | str | Path,
    kind: str,
    store: FeatureStore | str | Path,
    options: Mapping[str, Any] | None = None,
    batch_size: int | None = None,
    num_workers: int = 2,
    threads_per_worker: int = 1,
) -> RunReport:
    """Extract ``kind`` for every item of ``source`` not yet in ``store`` with ``num_workers`` Ray actors.

    ``source``: an imported dataset, a list of video (or image) paths — the id is the file stem — or
    a Parquet manifest with ``video_id`` and the input column (``video_path``, ``cover_path``,
    ``title`` or ``path``). Joins the running Ray runtime if there is one (``ray.init(address=...)``
    before calling targets a cluster), else starts a local one with ``num_workers`` CPUs.
    """
    import ray
    import ray.data

    opts = dict(options or {})
    ext = build_extractor(kind, **opts)
    fs = store if isinstance(store, FeatureStore) else FeatureStore(store)
    bs = batch_size or DEFAULT_BATCH[ext.name]
    done = fs.done_ids(ext.name, ext.version)
    items = _items_from(source, ext)
    t0 = time.perf_counter()
    total = len(items)
    items = [it for it in items if it[0] not in done]
    if not items:
        return RunReport(ext.name, total, total, 0, 0, time.perf_counter() - t0)
    if not ray.is_initialized():
        ray.init(num_cpus=num_workers * threads_per_worker, include_dashboard=False, log_to_driver=False)
    data = ray.data.from_items([{ID_COLUMN: v, "input": None if x is None else str(x)} for v, x in items])
    out = data.map_batches(
        ExtractWorker,
        fn_constructor_kwargs={
            "kind": resolve_kind(kind), "options": opts, "store_root": str(fs.root), "threads": threads_per_worker,
        },
        batch_size=bs,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=num_workers),
        num_cpus=threads_per_worker,
    ).to_pandas()  # fmt: skip
    extracted, errors = int(out["extracted"].sum()), int(out["errors"].sum())
    return RunReport(ext.name, total, total - len(items), extracted, errors, time.perf_counter() - t0)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vidpop.features.ray_extract KIND SOURCE --store DIR [--address ray://head:10001]``."""
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m vidpop.features.ray_extract", description=ray_extract.__doc__)
    p.add_argument("kind", help="title, cover, frames or audio (or a full kind name)")
    p.add_argument("source", help="a .parquet manifest, a .txt file of paths (one per line) or an imported dataset dir")
    p.add_argument("--store", required=True, help="feature store folder (shared by every node)")
    p.add_argument("--address", default=None, help="Ray cluster to join, e.g. ray://head:10001 or auto")
    p.add_argument("--workers", type=int, default=2, help="extraction actors (one CPU each)")
    p.add_argument("--batch-size", type=int, default=None, help="items per actor call = per stored part")
    p.add_argument("--set", dest="options", action="append", default=[], help="extractor option key=value")
    a = p.parse_args(argv)
    options = parse_key_values(a.options, "--set")
    src = Path(a.source)
    source: Any = src
    if src.is_dir():
        source = VideoDataset.load(src)
    elif src.suffix == ".txt":
        source = [line.strip() for line in src.read_text().splitlines() if line.strip()]
    if a.address:
        import ray

        ray.init(address=a.address)
    try:
        rep = ray_extract(source, a.kind, a.store, options, a.batch_size, a.workers)
    except VidpopError as exc:
        print(f"error: {exc}")
        return 2
    print(json.dumps(rep.as_dict()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
