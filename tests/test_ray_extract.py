"""Ray Data extraction (local runtime, 2 workers) writes what the single-process path writes."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vidpop.config import dataset_dir
from vidpop.features.extract import build_extractor
from vidpop.features.store import FeatureStore, run_extraction

ray = pytest.importorskip("ray")
VIDEOS = sorted((dataset_dir("microlens") / "videos").glob("*.mp4"))
# keyframe sampling and torch keep the test short; the actors run the very same extractor class
OPTS = {"n_frames": 2, "mode": "keyframes", "engine": "torch"}


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _by_id(store: FeatureStore, name: str, version: str) -> dict[str, np.ndarray]:
    ids, values, _ = store.read(name, version)
    return dict(zip(ids, values, strict=True))


@pytest.mark.skipif(len(VIDEOS) < 3, reason="needs the real MicroLens clips")
def test_ray_extraction_equals_single_process(local_ray: None, tmp_path: Path) -> None:
    from vidpop.features.ray_extract import ray_extract

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00not a video\x00" * 10)
    paths = [*VIDEOS, bad]
    manifest = tmp_path / "manifest.parquet"
    pd.DataFrame({"video_id": [p.stem for p in paths], "video_path": [str(p) for p in paths]}).to_parquet(manifest)

    ext = build_extractor("frames", **OPTS)
    single = FeatureStore(tmp_path / "single")
    run_extraction(single, ext, [(p.stem, p) for p in paths], lambda it: it[0], batch_size=2, progress=False)

    for source, root in ((paths, "ray_list"), (manifest, "ray_manifest")):
        rep = ray_extract(source, "frames", tmp_path / root, options=OPTS, batch_size=1, num_workers=2)
        assert (rep.total, rep.extracted, rep.errors) == (4, 3, 1)
        got, want = _by_id(FeatureStore(tmp_path / root), ext.name, ext.version), _by_id(single, ext.name, ext.version)
        assert sorted(got) == sorted(want) == sorted(p.stem for p in VIDEOS)
        for vid, v in want.items():
            np.testing.assert_allclose(got[vid], v, atol=1e-5)
        errs = FeatureStore(tmp_path / root).errors(ext.name, ext.version)
        assert [(e.video_id, e.stage) for e in errs] == [("broken", "decode")]
        # several workers wrote atomic parts, one per batch; no temporary file is left behind
        parts = list((tmp_path / root / f"{ext.name}@{ext.version}").iterdir())
        assert len([p for p in parts if p.suffix == ".npz"]) == 3 and not [p for p in parts if p.name.endswith(".tmp")]

    again = ray_extract(paths, "frames", tmp_path / "ray_list", options=OPTS, num_workers=2)  # resumable
    assert (again.extracted, again.errors, again.skipped) == (0, 0, 4)
