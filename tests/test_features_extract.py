"""End to end: a tiny VideoDataset around the real MicroLens clips/covers/titles plus broken inputs;
every extractor's shapes, error rows (stage + reason), missing masks, resume, and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from test_features_media import CLIPS, COVERS, ML, write_silent_clip
from vidpop.cli import app
from vidpop.data.schema import VideoDataset
from vidpop.features import extract as ex
from vidpop.features.extract import TitleExtractor, dataset_errors, dataset_features, extract_kinds
from vidpop.features.store import FeatureStore, run_extraction

pytestmark = pytest.mark.skipif(not CLIPS or not COVERS, reason="MicroLens clips/covers not staged")


def _real_titles(ids: list[str]) -> dict[str, str]:
    df = pd.read_csv(ML / "MicroLens-100k_title_en.csv", header=None, sep="\t", names=["line"], dtype=str)
    split = df["line"].str.split(",", n=1, expand=True)
    titles = dict(zip(split[0].str.strip(), split[1].str.strip(), strict=True))
    return {i: titles.get(i, "") for i in ids}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> VideoDataset:
    """3 real clips, 3 real covers, their real titles, and one broken input of each kind."""
    tmp = tmp_path_factory.mktemp("media")
    rng = np.random.default_rng(0)
    (tmp / "random.mp4").write_bytes(rng.integers(0, 256, 40_000, dtype=np.uint8).tobytes())
    (tmp / "empty.mp4").write_bytes(b"")
    data = CLIPS[0].read_bytes()
    (tmp / "trunc.mp4").write_bytes(data[: len(data) // 5])
    write_silent_clip(tmp / "noaudio.mp4")
    (tmp / "notimage.jpg").write_text("<html>not found</html>")
    rows = [{"video_id": c.stem, "video_path": str(c)} for c in CLIPS]
    rows += [{"video_id": c.stem, "cover_path": str(c)} for c in COVERS[:3]]
    rows += [
        {"video_id": "bad_random", "video_path": str(tmp / "random.mp4")},
        {"video_id": "bad_empty", "video_path": str(tmp / "empty.mp4")},
        {"video_id": "bad_trunc", "video_path": str(tmp / "trunc.mp4")},
        {"video_id": "no_audio", "video_path": str(tmp / "noaudio.mp4"), "title": "a silent synthetic clip"},
        {"video_id": "bad_cover", "cover_path": str(tmp / "notimage.jpg"), "title": "cover that is html"},
        {"video_id": "gone_cover", "cover_path": str(tmp / "deleted.jpg"), "title": "cover file deleted"},
        {"video_id": "empty_title", "title": "   "},
    ]
    titles = _real_titles([r["video_id"] for r in rows])
    for r in rows:
        r.setdefault("title", titles[r["video_id"]] or None)
    return VideoDataset("tiny_microlens", pd.DataFrame(rows))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    return FeatureStore(tmp_path_factory.mktemp("store"))


KINDS = ["title", "cover", "frames", "audio"]
#: 10 frames (the default count) within the first 5 s: the documented shape, at a fraction of the decoding
FRAMES = {"first_seconds": 5.0}
OPTS = {"frames": FRAMES}


def _row(ds: VideoDataset, vid: str) -> int:
    return int(np.flatnonzero(ds.videos["video_id"] == vid)[0])


def test_extract_all_kinds_shapes_errors_and_masks(tiny: VideoDataset, store: FeatureStore) -> None:
    reports = {r.extractor: r for r in extract_kinds(tiny, KINDS, store, progress=False, options={"frames": FRAMES})}
    n_clips, n_covers = len(CLIPS), 3
    assert reports["cover_effnet"].extracted == n_covers and reports["cover_effnet"].errors == 2
    assert reports["frames_effnet"].extracted == n_clips + 1 and reports["frames_effnet"].errors == 3
    assert reports["audio_mfcc"].extracted == n_clips + 1 and reports["audio_mfcc"].errors == 3
    errs = {k: {e.video_id: e for e in dataset_errors(tiny, k, store, **OPTS.get(k, {}))} for k in KINDS}
    assert set(errs["frames"]) == set(errs["audio"]) == {"bad_random", "bad_empty", "bad_trunc"}
    assert all(e.stage == "decode" for k in ("cover", "frames", "audio") for e in errs[k].values())
    assert "truncated" in errs["frames"]["bad_trunc"].reason and "empty" in errs["frames"]["bad_empty"].reason
    assert set(errs["cover"]) == {"bad_cover", "gone_cover"}
    assert errs["title"]["empty_title"].stage == "text" and errs["title"]["empty_title"].reason == "empty title"

    title, tp = dataset_features(tiny, "title_minilm", store, progress=False)
    assert title.shape == (len(tiny.videos), 384) and title.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(title[tp], axis=1), 1.0, atol=1e-5)
    assert not tp[_row(tiny, "empty_title")] and not title[_row(tiny, "empty_title")].any()

    cover, cp = dataset_features(tiny, "cover", store, progress=False)
    assert cover.shape == (len(tiny.videos), 1280) and cp.sum() == n_covers
    frames, fp = dataset_features(tiny, "frames", store, progress=False, **FRAMES)
    assert frames.shape == (len(tiny.videos), 10, 1280)
    assert fp.sum() == n_clips + 1 and not fp[_row(tiny, "bad_trunc")]
    clip0 = frames[_row(tiny, CLIPS[0].stem)]
    assert np.linalg.norm(clip0[0] - clip0[-1]) > 1e-3  # frames differ over the clip
    audio, ap = dataset_features(tiny, "audio", store, progress=False)
    assert audio.shape == (len(tiny.videos), 48)
    assert not ap[_row(tiny, "no_audio")] and not audio[_row(tiny, "no_audio")].any()  # missing, not silence
    assert all(ap[_row(tiny, c.stem)] for c in CLIPS)


def test_cached_kinds_are_not_recomputed(tiny: VideoDataset, store: FeatureStore, monkeypatch) -> None:
    dataset_features(tiny, "cover", store, progress=False)  # make sure it is cached
    calls: list[int] = []
    orig = ex.CoverExtractor.extract
    monkeypatch.setattr(ex.CoverExtractor, "extract", lambda self, items: calls.append(len(items)) or orig(self, items))
    (report,) = extract_kinds(tiny, ["cover"], store, progress=False)
    assert calls == [] and report.extracted == 0 and report.skipped == report.total == 5
    # a different recipe is a different feature set, computed anew
    frames, present = dataset_features(
        tiny, "frames", store, progress=False, n_frames=2, first_seconds=1.0, mode="seek"
    )
    assert frames.shape == (len(tiny.videos), 2, 1280) and present.sum() == len(CLIPS) + 2
    assert present[_row(tiny, "bad_trunc")]  # the truncated file still holds its first second


def test_title_extractor_reports_bad_text(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path)
    items = [("1", "A cute cat plays piano"), ("2", b"\xff\xfe broken"), ("3", None), ("4", b"ok bytes"), ("5", "")]
    report = run_extraction(store, TitleExtractor(), items, lambda it: it[0], progress=False)
    assert report.extracted == 2 and report.errors == 3
    errs = {e.video_id: e for e in store.errors("title_minilm", TitleExtractor().version)}
    assert errs["2"].stage == "text" and "UTF-8" in errs["2"].reason
    assert errs["3"].reason == errs["5"].reason == "empty title"


def test_cli_extract_errors_info(tiny: VideoDataset, tmp_path: Path) -> None:
    ds_dir = tiny.save(tmp_path / "ds")
    runner = CliRunner()
    store = tmp_path / "cli_store"
    res = runner.invoke(
        app,
        [
            "features",
            "extract",
            str(ds_dir),
            "--kinds",
            "title,cover",
            "--store",
            str(store),
            "--no-progress",
            "--batch-size",
            "4",
        ],
    )
    assert res.exit_code == 0, res.output
    lines = {ln.split()[0]: ln.split() for ln in res.output.splitlines() if ln.startswith(("title_", "cover_"))}
    assert lines["cover_effnet"][1:5] == ["5", "3", "0", "2"]  # items, extracted, skipped, errors
    res2 = runner.invoke(
        app, ["features", "extract", str(ds_dir), "-k", "cover", "--store", str(store), "--no-progress"]
    )
    assert res2.output.splitlines()[-1].split()[1:5] == ["5", "0", "5", "0"]
    errs = runner.invoke(app, ["features", "errors", str(ds_dir), "--store", str(store)])
    assert "bad_cover\tdecode" in errs.output and "empty_title\ttext\tempty title" in errs.output
    info = runner.invoke(app, ["features", "info", "--store", str(store)])
    assert info.exit_code == 0 and "cover_effnet@" in info.output and "frames_effnet" in info.output
    for sub in ("extract", "errors", "info"):
        assert runner.invoke(app, ["features", sub, "--help"]).exit_code == 0
