"""(a) Frame extraction against this machine's physical limit, on the real MicroLens clips and covers.

* decode-only: PyAV with frame/slice threads (``thread_type="AUTO"``) decoding every frame (frames/s),
  and the decode stage of each sampling mode (sample + resize + normalise, videos/s);
* model-only: the image CNN on a pre-decoded batch of real frames and covers (img/s), engine ``auto``;
* limit (per mode) = the slower of the two, in videos/s (model img/s / frames per video);
* full: :func:`~vidpop.features.pipelined.run_pipelined_extraction` (decode + resize + embed + write
  to a feature store) — target: within 1.5x of the limit;
* naive: decode one frame (seek), convert it at full size, resize with PIL, embed it with torch at
  batch 1, repeat — target: full at least 3x faster.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

from benchmarks.common import Table, measure, report, verdict
from vidpop.config import dataset_dir
from vidpop.features.extract import FramesExtractor
from vidpop.features.image import load_backbone
from vidpop.features.pipelined import run_pipelined_extraction
from vidpop.features.store import FeatureStore
from vidpop.features.video import probe, target_times

N_FRAMES = 10
#: (label, mode, skip_nonref); "seek" is measured for the record but too slow to pipeline here
MODES = [
    ("sequential", "sequential", False),
    ("sequential+skip_nonref", "sequential", True),
    ("seek", "seek", False),
    ("keyframes", "keyframes", False),
]
FULL_MODES = ("sequential", "sequential+skip_nonref", "keyframes")
ROUNDS = 2
#: each real clip is listed this many times (distinct ids) in the decode and full runs: with only 3 clips a
#: pipeline never leaves its fill and drain phases, which is not what extracting a collection looks like
REPEAT = 6


def real_inputs() -> tuple[list[Path], list[Path]]:
    ml = dataset_dir("microlens")
    videos = sorted((ml / "videos").glob("*.mp4"))
    covers = sorted((ml / "covers").glob("*.jpg"))
    covers += sorted((dataset_dir("spotify_fresh_finds_covers_2022") / "images").glob("*.jpg"))[:22]
    if not videos:
        raise SystemExit(f"no videos under {ml / 'videos'}: the extraction benchmark needs the real clips")
    return videos, covers


def decode_all(videos: list[Path]) -> tuple[int, float]:
    """Every frame of every clip, PyAV threaded; returns (frames, seconds)."""
    n = 0
    t0 = time.perf_counter()
    for v in videos:
        with av.open(str(v)) as c:
            s = c.streams.video[0]
            s.thread_type = "AUTO"
            n += sum(1 for _ in c.decode(s))
    return n, time.perf_counter() - t0


def naive_loop(videos: list[Path], bb: Any) -> float:
    """Seconds for: per sampled frame, seek + decode it, full-size RGB, PIL resize, torch batch 1."""
    t0 = time.perf_counter()
    with torch.no_grad():
        for v in videos:
            for t in target_times(probe(v).duration, N_FRAMES):
                with av.open(str(v)) as c:
                    s = c.streams.video[0]
                    s.thread_type = "AUTO"
                    c.seek(int(t / s.time_base), stream=s, backward=True)
                    frame = None
                    for frame in c.decode(s):
                        if frame.time is not None and frame.time >= t:
                            break
                    rgb = frame.to_ndarray(format="rgb24")
                bb(bb.preprocess([rgb]))
    return time.perf_counter() - t0


@dataclass
class Best:
    """Best (fastest) of repeated measurements: on a shared machine the best run is the one least
    disturbed by other processes, i.e. the closest to what the hardware can do."""

    seconds: float = float("inf")
    peak_rss_mb: float = 0.0
    cpu_seconds: float = 0.0

    def update(self, m: Any) -> None:
        if m.seconds < self.seconds:
            self.seconds, self.cpu_seconds = m.seconds, m.cpu_seconds
        self.peak_rss_mb = max(self.peak_rss_mb, m.peak_rss_mb)


def run() -> dict[str, Any]:
    videos, covers = real_inputs()
    bb = load_backbone()
    items = [(f"{v.stem}#{k}", v) for k in range(REPEAT) for v in videos]
    n_v = len(items)
    extractors = {label: FramesExtractor(N_FRAMES, mode=mode, skip_nonref=nr) for label, mode, nr in MODES}
    engine = extractors["sequential"].embedder.engine  # auto: chosen once (cached per backbone)
    choice = extractors["sequential"].embedder.engine_choice
    x = np.concatenate([extractors["sequential"].embedder.decode(it)[1] for it in items[: len(videos)]])
    x = np.concatenate([x, bb.preprocess([str(c) for c in covers]).numpy()])
    engine(x[:8])  # warm-up

    every, model = Best(), Best()
    decode = {label: Best() for label, *_ in MODES}
    full = {label: Best() for label in FULL_MODES}
    n_dec = 0
    # interleaved rounds: decode, model and full runs see the same (changing) machine load
    for r in range(ROUNDS):
        with measure() as m:
            n_dec, _ = decode_all(videos)
        every.update(m)
        for label, *_ in MODES:
            if label == "seek" and r > 0:
                continue  # measured once, for the record: never the fast option here
            with measure() as m:
                for it in items:
                    extractors[label].embedder.decode(it)
            decode[label].update(m)
        with measure() as m:
            for s in range(0, len(x), 32):
                engine(x[s : s + 32])
        model.update(m)
        for label in FULL_MODES:
            ext = extractors[label]
            with tempfile.TemporaryDirectory() as tmp, measure() as m:
                rep = run_pipelined_extraction(FeatureStore(tmp), ext, items, progress=False)
            assert rep.extracted == n_v, rep
            full[label].update(m)

    t_decode = Table(f"Decode only (PyAV threaded, real MicroLens HEVC 720p clips; best of {ROUNDS})",
                     ["what", "videos", "frames", "seconds", "frames/s", "videos/s", "peak RSS MB"])  # fmt: skip
    n_clips = len(videos)
    t_decode.add("decode every frame", n_clips, n_dec, every.seconds, n_dec / every.seconds, n_clips / every.seconds,
                 every.peak_rss_mb)  # fmt: skip
    decode_vps = {k: n_v / b.seconds for k, b in decode.items()}
    for label, b in decode.items():
        n_s = n_v * N_FRAMES
        t_decode.add(f"sample {N_FRAMES}/video: {label}", n_v, n_s, b.seconds, n_s / b.seconds, decode_vps[label],
                     b.peak_rss_mb)  # fmt: skip
    model_ips = len(x) / model.seconds
    t_model = Table(f"Model only (EfficientNet-Lite0 on a pre-decoded batch of real frames + covers; best of {ROUNDS})",
                    ["engine", "images", "batch", "seconds", "img/s", "peak RSS MB"])  # fmt: skip
    t_model.add(f"{choice.chosen} (auto: {choice.reason})", len(x), 32, model.seconds, model_ips, model.peak_rss_mb)

    t_full = Table(f"Full extraction vs the limit ({len(videos)} real clips x {REPEAT} = {n_v} items, "
                   f"{N_FRAMES} frames each, write included)",
                   ["mode", "decode videos/s", "model videos/s", "limit videos/s", "full videos/s",
                    "limit/full (<=1.5)", "target", "peak RSS MB"])  # fmt: skip
    full_vps = {k: n_v / b.seconds for k, b in full.items()}
    for label in FULL_MODES:
        limit = min(decode_vps[label], model_ips / N_FRAMES)
        ratio = limit / full_vps[label]
        t_full.add(label, decode_vps[label], model_ips / N_FRAMES, limit, full_vps[label], ratio, verdict(ratio <= 1.5),
                   full[label].peak_rss_mb)  # fmt: skip

    with measure() as m:
        naive_s = naive_loop(videos, bb)
    naive_vps = len(videos) / naive_s
    t_naive = Table("Pipelined vs naive loop (decode one frame, embed one frame, repeat)",
                    ["path", "videos/s", "speed-up vs naive (>=3)", "target", "peak RSS MB"])  # fmt: skip
    t_naive.add("naive: seek + full-size RGB + PIL resize + torch batch 1", naive_vps, 1.0, "", m.peak_rss_mb)
    for label, vps in full_vps.items():
        t_naive.add(f"pipelined, {label}", vps, vps / naive_vps, verdict(vps / naive_vps >= 3), "")

    default = "sequential"
    extra = {
        "engine": {"chosen": choice.chosen, "ms_per_item": choice.ms_per_item},
        "targets": {
            "full_within_1.5x_of_limit": {
                k: round(min(decode_vps[k], model_ips / N_FRAMES) / v, 3) for k, v in full_vps.items()
            },
            "speedup_vs_naive": {k: round(v / naive_vps, 2) for k, v in full_vps.items()},
            "default_mode": default,
        },
        "inputs": {"videos": [v.name for v in videos], "covers": len(covers), "n_frames": N_FRAMES, "rounds": ROUNDS},
        "decode_seconds_per_video": {k: round(b.seconds / n_v, 3) for k, b in decode.items()},
    }
    report("extraction", [t_decode, t_model, t_full, t_naive], extra)
    return extra


if __name__ == "__main__":
    run()
