"""Pipelined frame extraction on the real MicroLens clips: same numbers as the plain path, input
order kept across errors and batch boundaries, resumable streaming into the feature store."""

from pathlib import Path

import numpy as np
import pytest
import torch

from vidpop.config import dataset_dir
from vidpop.features.extract import FramesExtractor
from vidpop.features.image import load_backbone
from vidpop.features.pipelined import PipelineConfig, PipelinedFrameEmbedder, run_pipelined_extraction
from vidpop.features.store import FeatureStore
from vidpop.features.video import sample_frames

VIDEOS = sorted((dataset_dir("microlens") / "videos").glob("*.mp4"))
pytestmark = pytest.mark.skipif(len(VIDEOS) < 2, reason="needs the real MicroLens clips in the data folder")

# keyframe sampling keeps the test fast; the pipeline is the same for every mode
CFG = {"n_frames": 3, "mode": "keyframes", "engine": "torch"}


def _reference(path: Path) -> np.ndarray:
    """The plain path: sample, preprocess with the backbone's own code, run torch."""
    bb = load_backbone()
    frames, _ = sample_frames(path, 3, None, "keyframes", resize=(bb.size, bb.size))
    with torch.no_grad():
        return bb(bb.preprocess(frames)).numpy()


def test_pipelined_equals_plain_path_and_keeps_order_across_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    items = [
        (VIDEOS[0].stem, VIDEOS[0]),
        ("missing", tmp_path / "nope.mp4"),
        (VIDEOS[1].stem, VIDEOS[1]),
        ("empty", empty),
    ]
    # batch_frames=4 < 2 videos x 3 frames: the engine is called more than once; two decoders in parallel
    emb = PipelinedFrameEmbedder(PipelineConfig(**CFG, batch_frames=4, decode_workers=2, queue_size=2))
    results = list(emb.run(items))
    assert [r.video_id for r in results] == [i[0] for i in items]
    assert [r.error is None for r in results] == [True, False, True, False]
    assert results[1].error.stage == "decode" and "not found" in results[1].error.reason
    assert "empty" in results[3].error.reason
    for r, path in ((results[0], VIDEOS[0]), (results[2], VIDEOS[1])):
        assert r.values.shape == (3, 1280)
        np.testing.assert_allclose(r.values, _reference(path), atol=1e-5, rtol=1e-5)


def test_frames_extractor_uses_the_pipeline_and_streams_resumably(tmp_path: Path) -> None:
    ext = FramesExtractor(**CFG)
    assert ext.pipelined and ext.embedder.engine_choice is None  # engine chosen lazily, on first use
    store = FeatureStore(tmp_path / "store")
    items = [(p.stem, p) for p in VIDEOS[:2]] + [("gone", tmp_path / "gone.mp4")]
    first = run_pipelined_extraction(store, ext, items, part_size=1, progress=False)
    assert (first.extracted, first.errors, first.skipped) == (2, 1, 0)
    assert ext.embedder.engine_choice.chosen == "torch"  # the run says which engine it used
    assert len(list((tmp_path / "store" / f"{ext.name}@{ext.version}").glob("part-*.npz"))) == 2
    again = run_pipelined_extraction(store, ext, items, progress=False)
    assert (again.extracted, again.errors, again.skipped) == (0, 0, 3)
    values, present = store.lookup(ext.name, ext.version, [i[0] for i in items])
    assert present.tolist() == [True, True, False]
    # the batch contract (what run_extraction calls) gives the same values
    batch = ext.extract(items[:2])
    np.testing.assert_allclose(batch.values, values[:2], atol=1e-6)


def test_bad_pipeline_options_are_clear_errors() -> None:
    from vidpop.errors import VidpopError

    with pytest.raises(VidpopError, match="sampling mode"):
        PipelinedFrameEmbedder(PipelineConfig(mode="everything"))
    with pytest.raises(VidpopError, match=">= 1"):
        PipelinedFrameEmbedder(PipelineConfig(queue_size=0))
