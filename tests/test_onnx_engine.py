"""ONNX Runtime engines match torch within 1e-4 on real inputs and are exported once, cached."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from vidpop.config import dataset_dir
from vidpop.errors import VidpopError
from vidpop.features import onnx_engine
from vidpop.features.image import load_backbone
from vidpop.features.text import load_text_encoder

COVERS = sorted((dataset_dir("microlens") / "covers").glob("*.jpg"))
TITLES = dataset_dir("microlens") / "MicroLens-50k_titles.csv"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One temporary cache for the module (exports are slow); never the user's cache."""
    return tmp_path_factory.mktemp("vidpop-cache")


@pytest.mark.skipif(not COVERS, reason="needs the real MicroLens covers")
def test_image_engine_matches_torch_and_is_cached(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDPOP_CACHE", str(cache))
    bb = load_backbone()
    x = bb.preprocess([str(p) for p in COVERS[:6]]).numpy()
    eng = onnx_engine.OnnxImageEngine(bb)
    assert eng.path.parent == cache / "onnx" and eng.path.is_file()
    with torch.no_grad():
        ref = bb(torch.from_numpy(x)).numpy()
    got = eng(x)
    assert got.shape == (6, 1280)
    assert np.abs(got - ref).max() < 1e-4
    stamp = eng.path.stat().st_mtime_ns
    again = onnx_engine.OnnxImageEngine(bb, verify=False)
    assert again.path == eng.path and again.path.stat().st_mtime_ns == stamp  # reused, not re-exported
    np.testing.assert_array_equal(again(x), got)


@pytest.mark.skipif(not TITLES.is_file(), reason="needs the real MicroLens titles")
def test_text_engine_matches_torch(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDPOP_CACHE", str(cache))
    titles = pd.read_csv(TITLES)["title"].dropna().astype(str).head(40).tolist()
    base = load_text_encoder("title_minilm")
    onnx = onnx_engine.OnnxTextEncoder(base)
    got = onnx.encode(titles, batch_size=16)  # several batches, sorted by length inside
    ref = base.encode(titles)
    assert got.shape == (40, 384)
    assert np.abs(got - ref).max() < 1e-4
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_engine_choice_is_reported_and_validated(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDPOP_CACHE", str(cache))
    bb = load_backbone()
    eng, choice = onnx_engine.pick_image_engine(bb, "torch")
    assert eng.name == "torch" and choice.chosen == "torch" and "requested" in choice.describe()
    with pytest.raises(VidpopError, match="unknown engine"):
        onnx_engine.pick_image_engine(bb, "tensorrt")
