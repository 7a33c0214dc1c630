"""Frame sampling from video files with PyAV.

``sample_frames(path, n_frames, first_seconds)`` returns ``n_frames`` RGB frames at the centres of
``n_frames`` equal segments of the clip (or of its first ``first_seconds``), and their timestamps.

How the frames are decoded is a speed/accuracy choice (``mode``). Measured on the MicroLens clips
(HEVC 1280x720, one keyframe every 4-8 s, so most frames depend on many others):

* ``"sequential"`` (default): one decoding pass from the start up to the last sampled time, keeping
  only the needed frames; exact timestamps. Cost: decoding every frame up to the last target.
* ``"seek"``: one seek per sampled frame. Each seek lands on the preceding keyframe and re-decodes
  from there, so with sparse keyframes it decodes the same frames many times (slower here; useful
  for long files with frequent keyframes when only a few frames are needed).
* ``"keyframes"``: decode keyframes only (``skip_frame="NONKEY"``) and take the keyframe nearest to
  each target time. Much faster, but a short clip may have a single keyframe, so frames repeat;
  timestamps report the true keyframe times.

``skip_nonref=True`` (sequential only) makes the decoder skip non-reference frames, which roughly
halves a pass; targets then snap to the nearest reference frame.
Only the kept frames are converted to RGB (optionally resized by swscale, cheaper than PIL).
Missing, empty, corrupt or truncated files raise :class:`VideoDecodeError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from vidpop.errors import VidpopError

MODES = ("sequential", "seek", "keyframes")


class VideoDecodeError(VidpopError):
    """A video that cannot be opened or decoded (missing, empty, corrupt, truncated, no video stream)."""


@dataclass
class VideoInfo:
    path: str
    duration: float  # seconds
    fps: float
    width: int
    height: int
    n_frames: int  # as declared by the container (0 = unknown)
    has_audio: bool


def open_media(path: str | Path, need_video: bool = True) -> Any:
    """The one probe of a media file (frames and audio both open files here): a PyAV container, or
    :class:`VideoDecodeError` for a missing, empty or unreadable file (and, with ``need_video``, one
    without a video stream)."""
    p = Path(path)
    if not p.is_file():
        raise VideoDecodeError(f"video file not found: {p}")
    if p.stat().st_size == 0:
        raise VideoDecodeError(f"video file is empty (0 bytes): {p.name}")
    try:
        container = av.open(str(p))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise VideoDecodeError(f"cannot open video {p.name}: {exc}") from exc
    if need_video and not container.streams.video:
        container.close()
        raise VideoDecodeError(f"{p.name} has no video stream")
    return container


def check_decodable(path: str | Path, max_packets: int = 600) -> VideoInfo:
    """Metadata of a clip that has a video stream and at least one frame that really decodes; else
    :class:`VideoDecodeError` ("clip.mp4 has no decodable video frames"). Reads at most ``max_packets``
    packets, so a long clip costs a fraction of a second."""
    name = Path(path).name
    try:
        container = open_media(path)
    except VideoDecodeError as exc:
        if "has no video stream" in str(exc):
            raise
        raise VideoDecodeError(f"{name} has no decodable video frames (not a video container)") from exc
    with container as c:
        if c.format.name.endswith("_pipe") or c.format.name.startswith("image2"):
            raise VideoDecodeError(f"{name} is a still image ({c.format.name}), not a video")
        v = c.streams.video[0]
        try:
            for n, packet in enumerate(c.demux(v)):
                if any(True for _ in packet.decode()):  # the last (empty) packet flushes the decoder
                    break
                if n >= max_packets:
                    raise VideoDecodeError(f"{name} has no decodable video frames")
            else:
                raise VideoDecodeError(f"{name} has no decodable video frames")
        except (av.FFmpegError, ValueError) as exc:
            raise VideoDecodeError(f"{name} has no decodable video frames") from exc
        return _info(path, c)


def _info(path: str | Path, container: Any) -> VideoInfo:
    """The metadata of an open container's first video stream (the one probe and the decode check share)."""
    v = container.streams.video[0]
    fps = float(v.average_rate) if v.average_rate else 0.0
    audio = bool(container.streams.audio)
    return VideoInfo(str(path), _duration(container), fps, v.width, v.height, int(v.frames or 0), audio)


def _duration(container: Any) -> float:
    v = container.streams.video[0]
    if v.duration and v.time_base:
        return float(v.duration * v.time_base)
    if container.duration:
        return container.duration / 1_000_000
    if v.frames and v.average_rate:
        return float(v.frames / v.average_rate)
    return 0.0


def probe(path: str | Path) -> VideoInfo:
    """Container metadata without decoding."""
    with open_media(path) as c:
        return _info(path, c)


def target_times(duration: float, n_frames: int, first_seconds: float | None = None) -> np.ndarray:
    """Centres of ``n_frames`` equal segments of ``[0, min(duration, first_seconds))``."""
    span = duration if first_seconds is None else min(duration, first_seconds)
    if span <= 0:
        raise VideoDecodeError("video has zero duration")
    return (np.arange(n_frames) + 0.5) * span / n_frames


def _to_rgb(frame: Any, resize: tuple[int, int] | None) -> np.ndarray:
    if resize is None:
        return frame.to_ndarray(format="rgb24")
    return frame.reformat(width=resize[0], height=resize[1], format="rgb24").to_ndarray()


def _frame_time(frame: Any) -> float:
    if frame.time is not None:
        return float(frame.time)
    return float(frame.pts * frame.time_base) if frame.pts is not None else math.nan


def _pick_nearest(times: np.ndarray, targets: np.ndarray) -> list[int]:
    return [int(np.argmin(np.abs(times - t))) for t in targets]


def sample_frames(
    path: str | Path,
    n_frames: int = 10,
    first_seconds: float | None = None,
    mode: str = "sequential",
    skip_nonref: bool = False,
    resize: tuple[int, int] | None = None,
) -> tuple[list[np.ndarray], list[float]]:
    """``n_frames`` RGB uint8 frames (H, W, 3) uniformly over the clip (or its first ``first_seconds``)
    and their timestamps in seconds. ``mode`` is one of :data:`MODES` (``"uniform"`` = ``"sequential"``);
    ``resize=(w, h)`` scales the kept frames while converting them."""
    if mode == "uniform":
        mode = "sequential"
    if mode not in MODES:
        raise VidpopError(f"unknown frame sampling mode {mode!r}; use one of {MODES}")
    if n_frames < 1:
        raise VidpopError("n_frames must be >= 1")
    name = Path(path).name
    container = open_media(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        # times are relative to the stream's first timestamp (usually 0; not always)
        start = float(stream.start_time * stream.time_base) if stream.start_time and stream.time_base else 0.0
        targets = start + target_times(_duration(container), n_frames, first_seconds)
        if mode == "seek":
            picked = _seek_frames(container, stream, targets)
        else:
            picked = _pass_frames(container, stream, targets, mode, skip_nonref)
        frames = [_to_rgb(f, resize) for f in picked]
        return frames, [_frame_time(f) - start for f in picked]
    except av.FFmpegError as exc:
        raise VideoDecodeError(f"cannot decode video {name}: {exc}") from exc
    finally:
        container.close()


def _pass_frames(container: Any, stream: Any, targets: np.ndarray, mode: str, skip_nonref: bool) -> list[Any]:
    """One decoding pass; keep per target the first frame at/after it (keyframes: the nearest one)."""
    if mode == "keyframes":
        stream.codec_context.skip_frame = "NONKEY"
    elif skip_nonref:
        stream.codec_context.skip_frame = "NONREF"
    name = Path(container.name).name
    picked: list[Any] = []
    last: Any = None
    if mode == "keyframes":
        frames = list(container.decode(stream))
        if not frames:
            raise VideoDecodeError(f"no decodable keyframe in {name}")
        times = np.array([_frame_time(f) for f in frames])
        return [frames[i] for i in _pick_nearest(times, targets)]
    for frame in container.decode(stream):
        t = _frame_time(frame)
        while len(picked) < len(targets) and t >= targets[len(picked)]:
            # the previous frame may be nearer to the target than this one
            target = targets[len(picked)]
            near_prev = last is not None and abs(_frame_time(last) - target) < abs(t - target)
            picked.append(last if near_prev else frame)
        if len(picked) == len(targets):
            return picked
        last = frame
    return _finish_short(picked, last, targets, name)


def _finish_short(picked: list[Any], last: Any, targets: np.ndarray, name: str) -> list[Any]:
    """The stream ended before the last target: fine within one frame of the end, else truncated."""
    if last is None:
        raise VideoDecodeError(f"no frame could be decoded from {name}")
    end = _frame_time(last)
    missing = targets[len(picked) :]
    if missing[-1] - end > 0.5:  # more than half a second of declared video never arrived
        raise VideoDecodeError(
            f"{name} looks truncated: decoding stopped at {end:.2f}s but frames were expected up to {missing[-1]:.2f}s"
        )
    return picked + [last] * len(missing)


def _seek_frames(container: Any, stream: Any, targets: np.ndarray) -> list[Any]:
    name = Path(container.name).name
    picked: list[Any] = []
    for t in targets:
        container.seek(int(t / stream.time_base), stream=stream, backward=True, any_frame=False)
        chosen = None
        for frame in container.decode(stream):
            chosen = frame
            if _frame_time(frame) >= t:
                break
        if chosen is None:
            raise VideoDecodeError(f"no frame decoded after seeking to {t:.2f}s in {name}")
        if t - _frame_time(chosen) > 0.5:
            raise VideoDecodeError(f"{name} looks truncated: no frame near {t:.2f}s (last {_frame_time(chosen):.2f}s)")
        picked.append(chosen)
    return picked
