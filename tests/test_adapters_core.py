"""Adapters on the REAL staged files (counts checked against each SOURCE.md), the generic adapter on
tiny synthetic files written by the tests, Parquet round-trips and the `vidpop data` CLI."""

from __future__ import annotations

import http.server
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from vidpop.config import dataset_dir
from vidpop.data.adapters import get_adapter
from vidpop.data.adapters.generic import parse_times
from vidpop.data.adapters.youtube_trending import read_trending_csv
from vidpop.data.schema import TABLES, VideoDataset
from vidpop.errors import DataNotFoundError, DownloadUnavailableError, SchemaError, VidpopError

ML = dataset_dir("microlens")
YT = dataset_dir("youtube_trending_v1_2017")
needs_ml = pytest.mark.skipif(not (ML / "MicroLens-50k_pairs.tsv").exists(), reason="MicroLens data not staged")
needs_yt = pytest.mark.skipif(not (YT / "USvideos.csv").exists(), reason="YouTube trending data not staged")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def microlens() -> VideoDataset:
    if not (ML / "MicroLens-50k_pairs.tsv").exists():
        pytest.skip("MicroLens data not staged")
    return get_adapter("microlens").load()


@pytest.fixture(scope="module")
def youtube() -> VideoDataset:
    if not (YT / "USvideos.csv").exists():
        pytest.skip("YouTube trending data not staged")
    return get_adapter("youtube_trending_v1_2017").load()


# ---------------------------------------------------------------------------------------- MicroLens
def test_microlens_row_counts_match_source_md(microlens: VideoDataset) -> None:
    adapter = get_adapter("microlens")
    v, inter = microlens.videos, microlens.interactions
    # SOURCE.md: 19,738 items; 50,000 users; 359,708 interactions over 19,220 distinct items.
    assert len(v) == adapter.expected_rows["videos"] == 19738
    assert len(inter) == adapter.expected_rows["interactions"] == 359708
    assert inter["user_id"].nunique() == 50000
    assert inter["video_id"].nunique() == 19220
    assert set(v["video_id"]) == {str(i) for i in range(1, 19739)}
    # 10 covers and 3 clips are on disk, as absolute paths of existing files.
    assert v["cover_path"].notna().sum() == 10 and v["video_path"].notna().sum() == 3
    for p in v["cover_path"].dropna().tolist() + v["video_path"].dropna().tolist():
        assert Path(p).is_absolute() and Path(p).exists()
    assert set(v.loc[v["video_path"].notna(), "video_id"]) == {"1002", "10034", "10040"}
    assert microlens.check_joins() == {"interactions_unknown_video": 0}


def test_microlens_columns_match_source_md(microlens: VideoDataset) -> None:
    v = microlens.videos.set_index("video_id")
    cats = v["category"].value_counts()
    assert cats["Game"] == 5259 and cats["Film and Television Works"] == 4565 and cats["Anime"] == 4452
    assert v["category"].nunique() == 23
    assert v["comments"].sum() == 719346 and v["comments"].min() == 1 and v["comments"].max() == 640
    # the corrected likes/views release: item 15080 = 10,000 likes, 364,000 views
    assert v.loc["15080", "likes"] == 10000 and v.loc["15080", "views"] == 364000
    assert v["likes_gt_views"].dtype == bool
    assert (v["likes_gt_views"] == (v["likes"] > v["views"])).all()
    # long title (50k file) where present, the short caption otherwise, short caption kept for all
    assert (v["title_source"] == "50k_titles").sum() == 19220
    assert v["title_short"].notna().all() and v["title"].notna().all()
    long = v[v["title_source"] == "50k_titles"]
    # the short caption is (nearly always) a prefix of the long title; a handful carry a "NNN. " prefix
    head = long["title_short"].str.replace(r"^\d+\. ", "", regex=True).str[:10].str.lower()
    starts = [t.lower().startswith(h) for t, h in zip(long["title"], head, strict=True)]
    assert np.mean(starts) > 0.99
    short = v[v["title_source"] != "50k_titles"]
    assert (short["title"] == short["title_short"]).all()
    assert v.loc["1", "title_short"] == "Gu long song gaga bad"
    assert v.loc["1", "tags"] == "comic|Two Yuan|My destiny villain"


def test_microlens_sequences_keep_file_order(microlens: VideoDataset) -> None:
    inter = microlens.interactions
    assert inter["timestamp"].isna().all()
    first = inter[inter["user_id"] == "1"]
    assert first["video_id"].tolist() == ["1958", "6346", "15223", "17700", "1707"]  # line 1 of the file
    assert first["position"].tolist() == [0, 1, 2, 3, 4]
    pos = inter.groupby("user_id")["position"].agg(["min", "max", "size"])
    assert (pos["min"] == 0).all() and (pos["max"] == pos["size"] - 1).all()
    assert any("no timestamps" in n for n in microlens.meta["notes"])


@needs_ml
def test_microlens_timestamped_sample() -> None:
    adapter = get_adapter("microlens_timestamped")
    ds = adapter.load()
    inter = ds.interactions
    assert len(inter) == adapter.expected_rows["interactions"]
    assert inter["user_id"].nunique() == 5986  # SOURCE.md: 5,986 distinct users
    assert inter["timestamp"].notna().all()
    assert inter["timestamp"].min() >= pd.Timestamp("2021-10-23", tz="UTC")
    assert inter["timestamp"].max() < pd.Timestamp("2022-09-13", tz="UTC")
    assert not inter.duplicated(["user_id", "video_id", "timestamp"]).any()
    assert ds.check_joins() == {"interactions_unknown_video": 0}
    # every (item, time) and (next_item, next_time) of the source file is an interaction
    raw = pd.read_csv(ML / "timestamps" / "MicroLens-100k_timestamped_pairs_sample.csv", dtype=str)
    stamp = inter["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")
    keys = set(zip(inter["user_id"], inter["video_id"], stamp, strict=True))
    assert set(zip(raw["user"], raw["item"], raw["datetime"], strict=True)) <= keys
    assert set(zip(raw["user"], raw["next_item"], raw["next_datetime"], strict=True)) <= keys
    # positions follow time within a user
    s = inter.sort_values(["user_id", "position"])
    assert (s.groupby("user_id")["timestamp"].diff().dropna() >= pd.Timedelta(0)).all()


@needs_ml
def test_microlens_covers_dir_option(tmp_path: Path) -> None:
    covers = tmp_path / "my_covers"
    covers.mkdir()
    for name in ("1955.jpg", "7315.jpg"):
        (covers / name).symlink_to(ML / "covers" / name)
    ds = get_adapter("microlens", covers_dir=str(covers)).load()
    have = ds.videos.loc[ds.videos["cover_path"].notna(), ["video_id", "cover_path"]]
    assert sorted(have["video_id"]) == ["1955", "7315"]
    assert all(p.startswith(str(covers.absolute())) for p in have["cover_path"])
    with pytest.raises(DataNotFoundError, match="covers_dir"):
        get_adapter("microlens", covers_dir=str(tmp_path / "nope")).load()


def test_microlens_download_offline_raises_quickly(tmp_path: Path) -> None:
    # Port 9 on the loopback refuses the connection: the test never leaves the machine.
    adapter = get_adapter("microlens", cover_url="http://127.0.0.1:9/covers", timeout=2, limit=3)
    with pytest.raises(DownloadUnavailableError, match="cannot reach the MicroLens server"):
        adapter.download(tmp_path)
    assert not list((tmp_path / "covers").glob("*.jpg"))
    assert not list((tmp_path / "covers").glob("*.part"))


@pytest.fixture()
def local_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server serving 3 synthetic 'covers' (items 1-3); other items answer 404."""
    root = tmp_path / "server"
    root.mkdir()
    for i in (1, 2, 3):
        (root / f"{i}.jpg").write_bytes(f"synthetic cover {i}".encode())

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, directory=str(root), **kw)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", root
    finally:
        srv.shutdown()


def test_microlens_download_resumes_and_lists_missing(local_server: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = local_server
    dest = tmp_path / "dl"
    (dest / "covers").mkdir(parents=True)
    (dest / "covers" / "2.jpg").write_bytes(b"already here")  # a previous, interrupted run
    get_adapter("microlens", cover_url=url, timeout=5, limit=5).download(dest)
    assert (dest / "covers" / "1.jpg").read_bytes() == b"synthetic cover 1"
    assert (dest / "covers" / "2.jpg").read_bytes() == b"already here"  # skipped, not fetched again
    assert (dest / "covers" / "3.jpg").exists()
    assert (dest / "covers" / "missing.txt").read_text().split() == ["4", "5"]
    if (ML / "MicroLens-50k_pairs.tsv").exists():  # the downloaded folder is what covers_dir reads
        ds = get_adapter("microlens", covers_dir=str(dest / "covers")).load()
        assert sorted(ds.videos.loc[ds.videos["cover_path"].notna(), "video_id"]) == ["1", "2", "3"]


# ---------------------------------------------------------------------------------------- YouTube
@needs_yt
def test_youtube_trending_raw_rows_match_source_md() -> None:
    adapter = get_adapter("youtube_trending_v1_2017")
    for country, n in (("US", 7992), ("GB", 7993)):
        raw = read_trending_csv(YT / f"{country}videos.csv")
        assert len(raw) == n == adapter.source_rows[country]


def test_youtube_trending_one_row_per_country_video(youtube: VideoDataset) -> None:
    v = youtube.videos
    assert v["video_id"].is_unique
    counts = v["country"].value_counts()
    assert counts["US"] == 2364 and counts["GB"] == 1736  # SOURCE.md: distinct videos per country
    assert len(v) == get_adapter("youtube_trending_v1_2017").expected_rows["videos"]
    assert (v["video_id"] == v["country"] + ":" + v["source_video_id"]).all()
    assert youtube.meta["raw_rows"] == {"US": 7992, "GB": 7993}
    assert youtube.check_joins() == {"interactions_unknown_video": 0, "videos_unknown_author": 0}
    assert {"Entertainment", "Music", "Gaming"} <= set(v["category"])
    assert "published_at" not in v  # this release has no publish time


@needs_yt
def test_youtube_trending_keeps_latest_snapshot(youtube: VideoDataset) -> None:
    raw = read_trending_csv(YT / "USvideos.csv")
    raw["day"] = pd.to_datetime("2017." + raw["date"], format="%Y.%d.%m")
    raw["views"] = raw["views"].astype(float)
    last = raw.sort_values(["day", "views"]).groupby("video_id").tail(1).set_index("video_id")
    days = raw.groupby("video_id")["day"].nunique()
    v = youtube.videos[youtube.videos["country"] == "US"].set_index("source_video_id")
    assert (v["views"] == last.loc[v.index, "views"]).all()
    assert (v["trending_days"] == days.loc[v.index]).all()
    assert (v["views_first_trending"] <= v["views"]).mean() > 0.95  # views grow while trending


# ---------------------------------------------------------------------------------------- generic
def _tiny_csv(folder: Path) -> Path:
    """SYNTHETIC fixture: 3 videos with the user's own column names, one real cover file."""
    (folder / "img").mkdir(parents=True)
    (folder / "img" / "a.jpg").write_bytes(b"not really a jpeg")
    csv = folder / "mine.csv"
    csv.write_text(
        "vid,headline,n_views,img,when,kw\n"
        "007,Hello,10,img/a.jpg,2024-01-02 10:00,a; b\n"
        "8,World,,img/none.jpg,2024-01-03,\n"
        "9,Web,5,https://example.org/y.jpg,not a date,c\n"
    )
    return csv


MAPPING = {"id": "vid", "title": "headline", "views": "n_views", "cover": "img", "published": "when", "tags": "kw"}


def test_generic_csv_mapping_and_relative_paths(tmp_path: Path) -> None:
    csv = _tiny_csv(tmp_path)
    ds = get_adapter("generic", tags_sep=";", **MAPPING).load(csv)
    v = ds.videos.set_index("video_id")
    assert list(v.index) == ["007", "8", "9"]  # ids stay strings, leading zeros kept
    assert v.loc["007", "title"] == "Hello" and v.loc["007", "views"] == 10 and np.isnan(v.loc["8", "views"])
    assert v.loc["007", "cover_path"] == str((tmp_path / "img" / "a.jpg").resolve())
    assert pd.isna(v.loc["8", "cover_path"])  # file not on disk -> missing, never a placeholder
    assert pd.isna(v.loc["9", "cover_path"]) and v.loc["9", "cover_url"] == "https://example.org/y.jpg"
    assert v.loc["007", "published_at"] == pd.Timestamp("2024-01-02 10:00", tz="UTC")
    assert pd.isna(v.loc["9", "published_at"])
    assert v.loc["007", "tags"] == "a|b"
    assert ds.name == "mine"
    notes = " ".join(ds.meta["notes"])
    assert "1 value(s) could not be parsed" in notes and "1 file(s) not found" in notes


def test_generic_timezone_option(tmp_path: Path) -> None:
    csv = _tiny_csv(tmp_path)
    ds = get_adapter("generic", timezone="Asia/Shanghai", **MAPPING).load(csv)
    assert ds.videos["published_at"].iloc[0] == pd.Timestamp("2024-01-02 02:00", tz="UTC")
    # naive and offset-aware values in one column (pandas refuses them together): per value
    mixed = parse_times(pd.Series(["2024-05-01T10:00:00+02:00", "2024-05-02", "junk"]), "UTC")
    assert mixed.tolist()[:2] == [pd.Timestamp("2024-05-01 08:00", tz="UTC"), pd.Timestamp("2024-05-02", tz="UTC")]
    assert pd.isna(mixed.iloc[2])
    epoch_ms = parse_times(pd.Series([1_700_000_000_000]), unit="ms")
    assert epoch_ms.iloc[0] == pd.Timestamp("2023-11-14 22:13:20", tz="UTC")


def test_generic_missing_columns_are_listed(tmp_path: Path) -> None:
    csv = _tiny_csv(tmp_path)
    with pytest.raises(SchemaError, match=r"missing required column\(s\) \['video_id', 'title'\]") as err:
        get_adapter("generic", views="n_views").load(csv)
    assert "headline" in str(err.value) and "--option video_id=" in str(err.value)
    with pytest.raises(SchemaError, match="title=nope"):
        get_adapter("generic", id="vid", title="nope").load(csv)


def test_generic_folder_with_interactions_parquet(tmp_path: Path) -> None:
    """SYNTHETIC folder: videos.parquet + interactions.csv with its own column names."""
    pd.DataFrame({"video_id": ["a", "b"], "title": ["x", "y"], "views": [1, 2]}).to_parquet(tmp_path / "videos.parquet")
    (tmp_path / "interactions.csv").write_text("uid,video_id,ts\n1,a,1700000000\n1,b,1700000060\n2,zz,1700000100\n")
    ds = get_adapter("generic", **{"interactions.user": "uid", "interactions.time": "ts"}).load(tmp_path)
    inter = ds.interactions
    assert inter["user_id"].tolist() == ["1", "1", "2"]
    assert inter["timestamp"].iloc[1] - inter["timestamp"].iloc[0] == pd.Timedelta(seconds=60)
    assert ds.check_joins() == {"interactions_unknown_video": 1}  # 'zz' is not a video
    with pytest.raises(VidpopError, match="unknown table"):
        get_adapter("generic", **{"clips.user": "uid"}).load(tmp_path)
    with pytest.raises(VidpopError, match="no authors table"):
        get_adapter("generic", **{"authors.author_id": "x"}).load(tmp_path)


# ---------------------------------------------------------------------------------------- save/load
@needs_yt
@needs_ml
def test_save_load_round_trip_preserves_dtypes(tmp_path: Path, youtube: VideoDataset) -> None:
    for ds in (youtube, get_adapter("microlens_timestamped").load()):
        out = ds.save(tmp_path / ds.name)
        back = VideoDataset.load(out)
        for table in TABLES:
            a, b = getattr(ds, table), getattr(back, table)
            assert {c: str(t) for c, t in a.dtypes.items()} == {c: str(t) for c, t in b.dtypes.items()}, table
            pd.testing.assert_frame_equal(a, b)
        assert back.meta["notes"] == ds.meta["notes"]


# ---------------------------------------------------------------------------------------- CLI
@needs_ml
def test_cli_import_and_info(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vidpop.cli import app

    monkeypatch.setenv("VIDPOP_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "ml"
    runner = CliRunner()
    res = runner.invoke(app, ["data", "import", "microlens", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "19,738" in res.output and "359,708" in res.output
    res = runner.invoke(app, ["data", "info", str(out)])
    assert res.exit_code == 0, res.output
    assert "joins:        ok" in res.output and "cover_path" in res.output
    assert VideoDataset.load(out).row_counts()["interactions"] == 359708


def test_cli_bad_adapter_exits_2_with_one_line(tmp_path: Path) -> None:
    exe = REPO / ".venv" / "bin" / "vidpop"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "vidpop.cli"]
    res = subprocess.run([*cmd, "data", "import", "no_such_adapter", "--out", str(tmp_path / "x")],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown adapter 'no_such_adapter'" in lines[0] and "microlens" in lines[0]
    assert "Traceback" not in res.stderr + res.stdout


def test_cli_malformed_option_is_a_user_error(tmp_path: Path) -> None:
    from vidpop.commands.data import parse_options

    assert parse_options(["a=b", "c=d=e"]) == {"a": "b", "c": "d=e"}
    with pytest.raises(VidpopError, match="key=value"):
        parse_options(["novalue"])


@needs_ml
def test_adapter_errors_point_at_the_fix(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataNotFoundError, match=r"MicroLens-100k_likes_and_views\.txt"):
        get_adapter("microlens").load(empty)
    with pytest.raises(VidpopError, match="pass your file or folder"):
        get_adapter("generic").load()
    shutil.rmtree(empty)
