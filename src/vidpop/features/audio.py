"""Audio features: MFCC statistics of a video's soundtrack, decoded with PyAV.

The track is resampled to mono float at 22,050 Hz, 24 MFCCs are computed with librosa, and the
per-coefficient mean and variance over time form a 48-d vector (``[mean_1..24, var_1..24]``). A
video without an audio track is reported as *missing* (``present=False``), never as zeros that a model
would read as silence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from vidpop.errors import VidpopError
from vidpop.features.video import open_media

SAMPLE_RATE = 22_050
N_MFCC = 24
DIM = 2 * N_MFCC


class AudioDecodeError(VidpopError):
    """The audio track exists but cannot be decoded."""


@dataclass
class AudioFeatures:
    values: np.ndarray  # (48,) float32; zeros when not present
    present: bool  # False = the file has no audio track (or it is silent-empty)
    seconds: float  # decoded audio length


def decode_audio(path: str | Path, sr: int = SAMPLE_RATE, max_seconds: float | None = None) -> np.ndarray | None:
    """Mono float32 samples at ``sr`` Hz, or ``None`` if the file has no audio stream.

    Raises :class:`~vidpop.features.video.VideoDecodeError` if the file is missing/empty/unreadable
    and :class:`AudioDecodeError` if the audio stream fails to decode.
    """
    p = Path(path)
    container = open_media(p, need_video=False)
    try:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
        chunks: list[np.ndarray] = []
        n = 0
        limit = int(max_seconds * sr) if max_seconds else None
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                arr = out.to_ndarray().reshape(-1)
                chunks.append(arr)
                n += len(arr)
            if limit is not None and n >= limit:
                break
        for out in resampler.resample(None):  # flush
            chunks.append(out.to_ndarray().reshape(-1))
        samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
        samples = samples[:limit] if limit is not None else samples
        _check_complete(container, stream, len(samples) / sr, max_seconds, p.name)
        return samples
    except av.FFmpegError as exc:
        raise AudioDecodeError(f"cannot decode the audio of {p.name}: {exc}") from exc
    finally:
        container.close()


def _check_complete(container: Any, stream: Any, got: float, max_seconds: float | None, name: str) -> None:
    """Raise if the track ends well before its declared duration (a truncated file)."""
    if stream.duration and stream.time_base:
        declared = float(stream.duration * stream.time_base)
    elif container.duration:
        declared = container.duration / 1_000_000
    else:
        return
    expected = min(declared, max_seconds) if max_seconds else declared
    if expected - got > 0.5:
        raise AudioDecodeError(f"{name} looks truncated: audio ends at {got:.2f}s of {expected:.2f}s declared")


def mfcc_stats(samples: np.ndarray, sr: int = SAMPLE_RATE, n_mfcc: int = N_MFCC) -> np.ndarray:
    """``[mean, var]`` over time of ``n_mfcc`` MFCCs -> (2 * n_mfcc,) float32."""
    import librosa

    m = librosa.feature.mfcc(y=samples.astype(np.float32), sr=sr, n_mfcc=n_mfcc)
    return np.concatenate([m.mean(axis=1), m.var(axis=1)]).astype(np.float32)


def audio_features(path: str | Path, max_seconds: float | None = None) -> AudioFeatures:
    """MFCC statistics of a video's audio, with ``present=False`` when it has no (non-empty) track."""
    samples = decode_audio(path, max_seconds=max_seconds)
    # fewer than ~0.1 s of samples gives no meaningful MFCC frame statistics: treat as missing
    if samples is None or len(samples) < SAMPLE_RATE // 10:
        return AudioFeatures(np.zeros(DIM, np.float32), False, 0.0 if samples is None else len(samples) / SAMPLE_RATE)
    return AudioFeatures(mfcc_stats(samples), True, len(samples) / SAMPLE_RATE)
