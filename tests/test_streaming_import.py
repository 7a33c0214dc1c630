"""Streamed import (``vidpop data import generic PATH --chunk-rows N``) writes the same dataset as the
in-memory import, one Parquet row group per chunk, on real MicroLens rows written as the user's CSVs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from vidpop.data.adapters import get_adapter
from vidpop.data.schema import VideoDataset
from vidpop.data.streaming import stream_import
from vidpop.errors import SchemaError

N_VIDEOS = 1500


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    full = get_adapter("microlens").load()
    videos = full.videos.head(N_VIDEOS)
    keep = set(videos["video_id"])
    folder = tmp_path_factory.mktemp("src") / "mine"
    folder.mkdir()
    # the user's own column names, mapped by options
    videos.rename(columns={"video_id": "vid", "views": "plays"}).to_csv(folder / "videos.csv", index=False)
    inter = full.interactions[full.interactions["video_id"].isin(keep)]
    inter.rename(columns={"user_id": "uid"}).to_csv(folder / "interactions.csv", index=False)
    return folder


OPTIONS = {"id": "vid", "views": "plays", "interactions.user": "uid"}


def _sorted(df: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    return df.sort_values(key, kind="stable").reset_index(drop=True)


def test_streamed_equals_in_memory_import(source: Path, tmp_path: Path) -> None:
    whole = get_adapter("generic", **OPTIONS).load(source)
    whole.save(tmp_path / "whole")
    manifest = stream_import(source, tmp_path / "streamed", OPTIONS, chunk_rows=400, progress=False)
    assert manifest["row_counts"]["videos"] == N_VIDEOS == len(whole.videos)
    assert manifest["row_counts"]["interactions"] == len(whole.interactions) > 1000
    assert manifest["engagement_columns"] == whole.engagement_columns
    # one row group per chunk: the file was written 400 rows at a time, never as one frame
    assert pq.ParquetFile(tmp_path / "streamed" / "videos.parquet").num_row_groups == -(-N_VIDEOS // 400)
    a = VideoDataset.load(tmp_path / "whole")
    b = VideoDataset.load(tmp_path / "streamed")
    pd.testing.assert_frame_equal(
        _sorted(a.videos, ["video_id"]), _sorted(b.videos, ["video_id"]), check_dtype=False, check_like=True
    )
    pd.testing.assert_frame_equal(
        _sorted(a.interactions, ["user_id", "video_id"]),
        _sorted(b.interactions, ["user_id", "video_id"]),
        check_dtype=False,
        check_like=True,
    )
    assert b.check_joins()["interactions_unknown_video"] == 0


def test_duplicate_ids_across_chunks_are_refused(source: Path, tmp_path: Path) -> None:
    videos = pd.read_csv(source / "videos.csv", dtype={"vid": str})
    doubled = tmp_path / "doubled.csv"
    pd.concat([videos.head(300), videos.head(5)]).to_csv(doubled, index=False)
    with pytest.raises(SchemaError, match="unique"):
        stream_import(doubled, tmp_path / "out", {"id": "vid"}, chunk_rows=100, progress=False)


def test_cli_streams_only_the_generic_adapter(source: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "vidpop.cli", "data", "import", "microlens", "--out", str(tmp_path / "x")]
    res = subprocess.run([*cmd, "--chunk-rows", "10"], capture_output=True, text=True)
    assert res.returncode == 2 and "generic" in res.stderr
