"""The README's main job end to end on a real slice of MicroLens (first 300 videos)."""

from pathlib import Path

import numpy as np

from vidpop.experiments.demo import TARGETS, run_demo
from vidpop.models import load_model


def test_demo_runs_end_to_end_on_a_real_slice(tmp_path: Path) -> None:
    r = run_demo(tmp_path / "run", store_dir=tmp_path / "store", limit=300, progress=False)
    assert r.rows_imported["videos"] == 300
    by_kind = {e["extractor"]: e for e in r.extraction}
    assert by_kind["title_minilm"]["extracted"] + by_kind["title_minilm"]["errors"] == 300
    assert set(r.metrics) == set(TARGETS)
    for m in r.metrics.values():
        assert np.isfinite([m["r2"], m["mae"], m["spearman"]]).all()
    model = load_model(r.model_dir)
    assert model.feature_versions["title_minilm"].startswith("1-title_minilm")
    # a rerun extracts nothing again (resumable store)
    r2 = run_demo(tmp_path / "run2", store_dir=tmp_path / "store", limit=300, progress=False)
    assert all(e["extracted"] == 0 for e in r2.extraction)
