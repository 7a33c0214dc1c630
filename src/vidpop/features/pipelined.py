"""Pipelined frame extraction: decode the next videos while the CNN embeds the current frames.

Why: per video, decoding (HEVC 720p, sparse keyframes) and inference use different resources and a
naive loop (decode one frame, embed one frame, repeat) leaves each idle while the other works and
runs the CNN at batch size 1. Here

* ``decode_workers`` threads run :func:`~vidpop.features.video.sample_frames` (PyAV releases the GIL
  while decoding) and turn the kept frames into a normalised float batch — only kept frames are
  converted to RGB, resized by swscale during the conversion;
* at most ``queue_size`` decoded videos wait for the model (a bounded window of futures), so memory
  stays flat however long the item list is;
* the main thread stacks frames of several videos into batches of ``batch_frames`` and runs the
  faster engine (ONNX Runtime or torch, see :mod:`vidpop.features.onnx_engine`; it says which).

The numbers equal the plain path (``embed_images`` on the same frames) to float noise; the frame
sampling options are those of :class:`~vidpop.features.extract.FramesExtractor` (``mode``,
``skip_nonref``; see ``docs/scaling.md`` for their measured cost). :func:`run_pipelined_extraction`
streams a whole item list into a :class:`~vidpop.features.store.FeatureStore` without draining the
pipeline between stored parts (resumable like :func:`~vidpop.features.store.run_extraction`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from vidpop.errors import VidpopError
from vidpop.features.store import ErrorRow, ExtractResult, FeatureStore, RunReport

#: an item: (video id, path of the video file)
Item = tuple[str, Any]


@dataclass
class PipelineConfig:
    """Sampling recipe (same meaning as :class:`FramesExtractor`) plus the pipeline's knobs."""

    n_frames: int = 10
    first_seconds: float | None = None
    mode: str = "sequential"
    skip_nonref: bool = False
    backbone: str = "efficientnet_lite0"
    engine: str = "auto"  # auto | torch | onnx
    decode_workers: int = 1  # videos decoded concurrently (each decoder also uses ffmpeg threads)
    queue_size: int = 3  # decoded videos waiting for the model at most
    batch_frames: int = 32  # frames per inference call


@dataclass
class VideoResult:
    """One video's outcome: (n_frames, dim) embeddings, or the error row explaining why not."""

    video_id: str
    values: np.ndarray | None
    error: ErrorRow | None


class PipelinedFrameEmbedder:
    """Videos -> per-frame pooled CNN embeddings with decoding and inference overlapped."""

    def __init__(self, config: PipelineConfig | None = None) -> None:
        from vidpop.features.image import load_backbone
        from vidpop.features.video import MODES

        self.config = c = config or PipelineConfig()
        mode = "sequential" if c.mode == "uniform" else c.mode
        if mode not in MODES:
            raise VidpopError(f"unknown frame sampling mode {c.mode!r}; use one of {MODES}")
        if c.decode_workers < 1 or c.queue_size < 1 or c.batch_frames < 1:
            raise VidpopError("decode_workers, queue_size and batch_frames must be >= 1")
        c.mode = mode
        self.backbone = load_backbone(c.backbone)
        size = self.backbone.size
        self._mean = np.asarray(self.backbone.mean, np.float32).reshape(1, 3, 1, 1)
        self._std = np.asarray(self.backbone.std, np.float32).reshape(1, 3, 1, 1)
        self._resize = (size, size)
        self._engine: Any = None
        self.engine_choice: Any = None

    @property
    def engine(self) -> Any:
        """The inference engine, chosen on first use (``auto`` = the faster one here)."""
        if self._engine is None:
            from vidpop.features.onnx_engine import pick_image_engine

            self._engine, self.engine_choice = pick_image_engine(self.backbone, self.config.engine)
        return self._engine

    # ---------------------------------------------------------------- stages
    def normalise(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """RGB uint8 frames already at the input size -> (n, 3, S, S) float32, as ``preprocess`` does."""
        x = np.stack(frames).astype(np.float32).transpose(0, 3, 1, 2) / np.float32(255.0)
        return np.ascontiguousarray((x - self._mean) / self._std)

    def decode(self, item: Item) -> tuple[str, np.ndarray | None, ErrorRow | None]:
        """Decode stage (runs in a worker thread): sampled, resized, normalised frames or an error row."""
        from vidpop.features.video import VideoDecodeError, sample_frames

        vid, path = str(item[0]), item[1]
        c = self.config
        try:
            frames, _ = sample_frames(path, c.n_frames, c.first_seconds, c.mode, c.skip_nonref, resize=self._resize)
            return vid, self.normalise(frames), None
        except VideoDecodeError as exc:
            return vid, None, ErrorRow(vid, "decode", str(exc))
        except Exception as exc:  # one odd file (bad path type, odd pixel format) costs one error row, not the run
            return vid, None, ErrorRow(vid, "decode", f"{type(exc).__name__}: {exc}")

    def _flush(self, slots: list[tuple[str, np.ndarray | None, ErrorRow | None]]) -> Iterator[VideoResult]:
        """Embed the frames of every decoded video in ``slots`` in one engine call; emit in input order."""
        decoded = [frames for _, frames, err in slots if err is None]
        emb = self.engine(np.concatenate(decoded)) if decoded else None
        s = 0
        for vid, frames, err in slots:
            if err is not None or frames is None:
                yield VideoResult(vid, None, err)
                continue
            assert emb is not None
            yield VideoResult(vid, emb[s : s + len(frames)].astype(np.float32), None)
            s += len(frames)
        slots.clear()

    def run(self, items: Iterable[Item]) -> Iterator[VideoResult]:
        """Results in input order; decoding runs up to ``queue_size`` videos ahead of the model."""
        c = self.config
        _ = self.engine  # choose the engine before the decoders start competing for the CPU
        it = iter(items)
        window: deque[Future[tuple[str, np.ndarray | None, ErrorRow | None]]] = deque()
        slots: list[tuple[str, np.ndarray | None, ErrorRow | None]] = []  # since the last engine call
        n_frames = 0
        with ThreadPoolExecutor(c.decode_workers, thread_name_prefix="vidpop-decode") as pool:

            def refill() -> None:
                while len(window) < c.queue_size:
                    nxt = next(it, None)
                    if nxt is None:
                        return
                    window.append(pool.submit(self.decode, nxt))

            refill()
            while window:
                slot = window.popleft().result()
                refill()  # keep the decoders busy while the model runs
                slots.append(slot)
                n_frames += 0 if slot[1] is None else len(slot[1])
                if n_frames >= c.batch_frames or (n_frames == 0 and slot[2] is not None):
                    yield from self._flush(slots)
                    n_frames = 0
            yield from self._flush(slots)

    def extract(self, items: Sequence[Item]) -> ExtractResult:
        """The :class:`~vidpop.features.store.Extractor` contract for one batch of items."""
        ids, rows, errors = [], [], []
        for r in self.run(items):
            if r.error is not None:
                errors.append(r.error)
            else:
                ids.append(r.video_id)
                rows.append(r.values)
        shape = (self.config.n_frames, self.backbone.dim)
        values = np.stack(rows).astype(np.float32) if rows else np.zeros((0, *shape), np.float32)
        return ExtractResult(ids, values, errors)


def run_pipelined_extraction(
    store: FeatureStore,
    extractor: Any,
    items: Iterable[Item],
    part_size: int = 8,
    limit: int | None = None,
    progress: bool = True,
) -> RunReport:
    """Stream ``items`` through ``extractor.embedder`` (a :class:`PipelinedFrameEmbedder`) into
    ``store``: one atomic part per ``part_size`` finished videos, the pipeline never drained between
    parts. Skips ids already stored (values or error rows), so a killed run resumes."""
    todo_all = list(items)[:limit] if limit is not None else list(items)

    def pending() -> list[Item]:
        done = store.done_ids(extractor.name, extractor.version)
        return [it for it in todo_all if str(it[0]) not in done]

    t0 = time.perf_counter()
    todo = pending()
    if not todo:
        return RunReport(extractor.name, len(todo_all), len(todo_all), 0, 0, time.perf_counter() - t0)
    # the feature set's lock (see FeatureStore.extracting): a second extractor waits, then skips our parts
    with store.extracting(extractor.name, extractor.version, progress):
        return _run_locked(store, extractor, todo_all, pending(), part_size, progress, t0)


def _run_locked(
    store: FeatureStore,
    extractor: Any,
    todo_all: list[Item],
    todo: list[Item],
    part_size: int,
    progress: bool,
    t0: float,
) -> RunReport:
    embedder: PipelinedFrameEmbedder = extractor.embedder
    extracted = errors = 0
    ids: list[str] = []
    rows: list[np.ndarray] = []
    errs: list[ErrorRow] = []

    def write() -> None:
        shape = (embedder.config.n_frames, embedder.backbone.dim)
        values = np.stack(rows) if rows else np.zeros((0, *shape), np.float32)
        store.write_part(extractor.name, extractor.version, ExtractResult(list(ids), values, list(errs)))
        ids.clear(), rows.clear(), errs.clear()

    bar = tqdm(total=len(todo), desc=f"{extractor.name} (pipelined)", unit="video", disable=not progress)
    try:
        for r in embedder.run(todo):
            if r.error is not None:
                errs.append(r.error)
                errors += 1
            else:
                ids.append(r.video_id)
                rows.append(r.values)  # type: ignore[arg-type]
                extracted += 1
            bar.update(1)
            if len(ids) + len(errs) >= part_size:
                write()
        if ids or errs:
            write()
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    return RunReport(extractor.name, len(todo_all), len(todo_all) - len(todo), extracted, errors, seconds)
