"""YouTube trending videos, US + GB, 13 Sep – 22 Oct 2017 (first Kaggle "datasnaek/youtube" release).

The source has one row per (video, trending day); vidpop's ``videos`` table needs one row per video,
so each (country, video) keeps its **latest** trending-day snapshot (the counts closest to the end
of its trending run; same-day duplicate rows: the one with most views). Ids are
``"{country}:{video_id}"`` because a video trending in both countries has two different trajectories.
The trending-day history is summarised in columns: ``trending_days`` (distinct days on the list),
``first_trending`` / ``last_trending`` (UTC midnight of the day) and ``views_first_trending`` (views on
the first day), so views growth and days-on-list labels stay available.

Parsing follows SOURCE.md: ``pandas.read_csv(dtype=str, on_bad_lines="skip", engine="python")`` skips the
8 malformed lines (glued records) of the upstream files, giving 7,992 US and 7,993 GB rows.

The source has **no publish time** and no description (both only exist in the later "youtube-new"
release), so ``published_at`` is absent; authors are channel titles (there is no channel id).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pandas as pd

from vidpop.config import dataset_dir
from vidpop.data.adapters.base import Adapter, register_adapter, source_file
from vidpop.data.schema import VideoDataset
from vidpop.errors import DataNotFoundError, VidpopError

COUNTRIES = ("US", "GB")
COLUMNS = (
    "video_id", "title", "channel_title", "category_id", "tags", "views", "likes", "dislikes",
    "comment_total", "thumbnail_link", "date",
)  # fmt: skip


def read_trending_csv(csv: Path) -> pd.DataFrame:
    """One country file, raw rows (one per video and trending day), as SOURCE.md prescribes."""
    raw = pd.read_csv(csv, dtype=str, on_bad_lines="skip", engine="python", keep_default_na=False)
    if missing := [c for c in COLUMNS if c not in raw.columns]:
        raise DataNotFoundError(f"{csv} lacks column(s) {missing}")
    return raw


def category_names(folder: Path | None = None) -> dict[str, str]:
    """YouTube category id -> name from ``youtube_category_ids/US_category_id.json`` ({} if absent)."""
    f = (folder or dataset_dir("youtube_category_ids")) / "US_category_id.json"
    if not f.exists():
        return {}
    items = json.loads(f.read_text(encoding="utf-8")).get("items", [])
    return {str(it["id"]): str(it["snippet"]["title"]) for it in items}


def latest_snapshots(raw: pd.DataFrame, country: str) -> pd.DataFrame:
    """Collapse (video, day) rows to one row per video: the latest day, plus trending-run summaries."""
    df = raw.copy()
    # "DD.MM" in 2017; at UTC midnight so the column is tz-aware like every vidpop datetime.
    df["trending_date"] = pd.to_datetime("2017." + df["date"], format="%Y.%d.%m", errors="coerce", utc=True)
    for c in ("views", "likes", "dislikes", "comment_total"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    runs = df.groupby("video_id").agg(
        trending_days=("trending_date", "nunique"),
        first_trending=("trending_date", "min"),
        last_trending=("trending_date", "max"),
    )
    first_views = (
        df.sort_values(["trending_date", "views"], kind="stable").drop_duplicates("video_id").set_index("video_id")
    )["views"]
    latest = (
        df.sort_values(["trending_date", "views"], ascending=False, kind="stable")
        .drop_duplicates("video_id")
        .set_index("video_id")
    )
    latest = latest.join(runs)
    latest["views_first_trending"] = first_views.astype("float64")
    latest = latest.reset_index().sort_values(["first_trending", "video_id"], kind="stable")
    latest["country"] = country
    latest["source_video_id"] = latest["video_id"]
    latest["video_id"] = country + ":" + latest["video_id"]
    return latest


@register_adapter
class YoutubeTrending2017Adapter(Adapter):
    name = "youtube_trending_v1_2017"
    staged_name = "youtube_trending_v1_2017"
    description = "YouTube trending US+GB, Sep-Oct 2017: titles, tags, channel, views/likes/comments per video"
    #: one row per (country, video) after keeping the latest trending day (2,364 US + 1,736 GB).
    #: authors: 1,700 distinct channel titles over both countries.
    expected_rows: ClassVar[dict[str, int]] = {"videos": 4100, "authors": 1700}
    #: raw rows per country file as SOURCE.md documents them (malformed lines skipped)
    source_rows: ClassVar[dict[str, int]] = {"US": 7992, "GB": 7993}

    def read(self, path: Path) -> VideoDataset:
        countries = [c.strip().upper() for c in str(self.options.get("countries", ",".join(COUNTRIES))).split(",")]
        if unknown := [c for c in countries if c not in COUNTRIES]:
            raise VidpopError(f"{self.name}: unknown countries {unknown}; the files cover {list(COUNTRIES)}")
        parts, raw_rows, notes_extra = [], {}, []
        for country in countries:
            csv = source_file(self.name, path, f"{country}videos.csv")
            raw = read_trending_csv(csv)
            raw_rows[country] = len(raw)
            if len(raw) != self.source_rows[country]:
                notes_extra.append(
                    f"{csv.name} parsed to {len(raw)} rows, SOURCE.md documents {self.source_rows[country]}"
                )
            parts.append(latest_snapshots(raw, country))
        df = pd.concat(parts, ignore_index=True)
        names = category_names(self.options.get("category_ids") and Path(self.options["category_ids"]))
        df["category_id"] = df["category_id"].astype(str)
        df["category"] = df["category_id"].map(names).fillna(df["category_id"]) if names else df["category_id"]
        df["tags"] = df["tags"].replace({"[none]": None})
        df["author_id"] = df["channel_title"]
        df["dislikes"] = df["dislikes"].astype("float64")
        videos = df.rename(columns={"comment_total": "comments", "thumbnail_link": "thumbnail_url"})[
            [
                "video_id", "title", "tags", "category", "category_id", "author_id", "views", "likes",
                "comments", "dislikes", "country", "source_video_id", "trending_days", "first_trending",
                "last_trending", "views_first_trending", "thumbnail_url",
            ]
        ]  # fmt: skip
        authors = (
            videos.groupby("author_id")
            .agg(n_videos=("video_id", "size"))
            .reset_index()
            .assign(name=lambda a: a["author_id"])
        )
        days = {c: int(p["trending_days"].sum()) for c, p in zip(countries, parts, strict=True)}
        notes = [
            "raw rows (one per video and trending day): "
            + ", ".join(f"{c} {raw_rows[c]}" for c in countries)
            + f" -> {len(videos)} videos, one per (country, video), keeping the latest trending-day snapshot "
            "(ids 'US:<id>' / 'GB:<id>')",
            f"trending-day rows per country after removing same-day duplicates: {days}",
            "no publish time and no description in this release; counts are snapshots on the last trending day",
            "no channel id: author_id is the channel title; covers are remote thumbnail URLs (thumbnail_url), "
            "not local files",
            "category mapped to names with youtube_category_ids/US_category_id.json"
            if names
            else "category ids not mapped to names (youtube_category_ids not found)",
            *notes_extra,
        ]
        meta = {"notes": notes, "raw_rows": raw_rows, "trending_day_rows": days}
        return VideoDataset(self.name, videos, authors, meta=meta)
