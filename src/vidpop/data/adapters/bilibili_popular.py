"""Bilibili popular videos crawled Nov–Dec 2021, with the five counts of the cover + title paper
(views, likes, coins, favourites, shares) plus danmaku and comments, titles, and uploader followers.

File choice: ``bilibili_data_analysis.csv`` — the ranking-list crawl (top-100 per partition, 25 Nov –
25 Dec 2021; 10,933 rows). ``bilibili_rank100_data.csv`` is a subset of the same crawl and
``bilibili_data_analysis_duration.csv`` a second crawl of mostly the same videos, so neither adds
videos. The weekly must-watch list (``bilibili_week_popular.CSV``) spans 2019–2021, whose counts
accumulated over up to 2.7 years are not comparable with weeks-old ranking videos; it is read only
with ``part="weekly"``.

Deduplication: the source has no video id, so a video is (title, uploader). A video that sits on
several ranking lists or was crawled on several days keeps its **latest** crawl (the most recent
counts; ties: the most views). The first-seen ranking list is kept in ``ranking_list``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pandas as pd

from vidpop.data.adapters.base import Adapter, register_adapter, source_file, stable_id
from vidpop.data.schema import VideoDataset
from vidpop.errors import DataNotFoundError, VidpopError

RANKING_CSV = "bilibili_data_analysis.csv"
WEEKLY_CSV = "bilibili_week_popular.CSV"

_RANKING_COLS = {
    "作者": "author_name",
    "粉丝": "followers",
    "标题": "title",
    "点赞": "likes",
    "硬币": "coins",
    "收藏": "favorites",
    "分享": "shares",
    "弹幕": "danmaku",
    "播放": "views",
    "评论": "comments",
    "上传时间": "published_at",
    "爬取时间": "crawled_at",
    "标签": "category",
    "分区": "ranking_list",
    "时间": "age_days",
}
_WEEKLY_COLS = {
    "标题": "title",
    "up主": "author_name",
    "频道": "tags",
    "标签": "category",
    "播放量": "views",
    "粉丝数": "followers",
    "点赞": "likes",
    "硬币": "coins",
    "收藏": "favorites",
    "分享": "shares",
    "弹幕": "danmaku",
    "评论": "comments",
    "期数": "weekly_issue",
    "发布时间": "published_at",
    "爬取时间": "crawled_at",
}


@register_adapter
class BilibiliPopularAdapter(Adapter):
    name = "bilibili_popular_videos_2021"
    staged_name = "bilibili_popular_videos_2021"
    description = "Bilibili ranking-list videos, Nov-Dec 2021: titles + views/likes/coins/favorites/shares (no covers)"
    #: 10,933 ranking rows (SOURCE.md) -> 8,094 distinct (title, uploader) videos after deduplication.
    expected_rows: ClassVar[dict[str, int]] = {"videos": 8094, "authors": 5223}
    #: rows of the ranking CSV before deduplication, as SOURCE.md documents them
    source_rows: ClassVar[int] = 10933

    def read(self, path: Path) -> VideoDataset:
        part = str(self.options.get("part", "ranking"))
        if part not in {"ranking", "weekly"}:
            raise VidpopError(f"{self.name}: part must be 'ranking' or 'weekly', got '{part}'")
        fname, cols = (RANKING_CSV, _RANKING_COLS) if part == "ranking" else (WEEKLY_CSV, _WEEKLY_COLS)
        csv = source_file(self.name, path, fname, single=True)
        raw = pd.read_csv(csv)
        missing = [c for c in cols if c not in raw.columns]
        if missing:
            raise DataNotFoundError(f"{self.name}: {csv.name} lacks column(s) {missing}")
        df = raw[list(cols)].rename(columns=cols)
        n_raw = len(df)
        if part == "ranking" and n_raw != self.source_rows:
            notes_extra = [f"{csv.name} has {n_raw} rows, SOURCE.md documents {self.source_rows}"]
        else:
            notes_extra = []
        # Source times are Beijing time without a zone.
        for c in ("published_at", "crawled_at"):
            t = pd.to_datetime(df[c], format="%Y/%m/%d %H:%M", errors="coerce")
            df[c] = t.dt.tz_localize("Asia/Shanghai").dt.tz_convert("UTC")
        df["title"] = df["title"].astype(str)
        df["author_name"] = df["author_name"].astype(str)
        df = df.sort_values(["crawled_at", "views"], ascending=[False, False], kind="stable")
        key = ["title", "author_name"]
        first_list = None
        if "ranking_list" in df:
            # The first ranking list (in file order) a video was seen on.
            first_list = df.sort_index().drop_duplicates(key)[[*key, "ranking_list"]]
            df = df.drop(columns="ranking_list")
        df = df.drop_duplicates(key, keep="first")
        if first_list is not None:
            df = df.merge(first_list, on=key, how="left")
        df = df.sort_values(["published_at", "title"], kind="stable").reset_index(drop=True)
        df["author_id"] = [stable_id("up_", a) for a in df["author_name"]]
        df["video_id"] = [stable_id("bl_", t, a) for t, a in zip(df["title"], df["author_name"], strict=True)]
        # Follower counts of one uploader can differ between crawl days: keep the latest.
        authors = (
            df.sort_values("crawled_at", ascending=False, kind="stable")
            .drop_duplicates("author_id")[["author_id", "author_name", "followers"]]
            .rename(columns={"author_name": "name"})
        )
        videos = df.drop(columns=["followers", "author_name"])
        notes = [
            f"file {csv.name} ({part} crawl): {n_raw} rows -> {len(videos)} videos after deduplicating on "
            "(title, uploader), keeping each video's latest crawl",
            "no video id, no cover image or cover URL: title-only models; videos identified by title + uploader",
            "counts are snapshots at crawl time (age at crawl in 'age_days' for the ranking crawl); "
            "followers are the uploader's at crawl time",
            "has all five counts of the cover + title paper (views, likes, coins, favorites, shares)",
            f"{int(videos['published_at'].isna().sum())} video(s) lack a publish time",
            *notes_extra,
        ]
        return VideoDataset(self.name, videos, authors, meta={"notes": notes, "part": part})
