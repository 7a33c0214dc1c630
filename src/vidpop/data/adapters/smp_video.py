"""SMP Challenge 2025, video track (SMP-Video): 6,000 anonymised TikTok posts with user statistics.

Train (4,000 posts, 2022-01 … 2023-08) carries the organisers' ``popularity`` label; test (2,000 posts,
2023-09 … 2023-12) does not (labels withheld by the challenge). Both parts are kept; the ``split`` column
says which is which, so a model trains and evaluates on the labelled ``train`` rows only and can still
score the test posts. The .mp4 files are not public: ``video_path`` is left empty and the archive path is
kept in ``archive_video_path`` so that a user who has the organisers' archive can point at it.

``popularity`` is already on a log scale (organisers' transform of the view count, 1.22 … 13.35); models
use it as is and must not apply log(1 + x) again.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pandas as pd

from vidpop.data.adapters.base import Adapter, register_adapter, source_file
from vidpop.data.schema import VideoDataset

PREFIX = "SMP-Video_anonymized"
PARTS = ("train", "test")

#: source user column -> authors column (the rest keep their source names)
_AUTHOR_RENAME = {
    "uid": "author_id",
    "user_follower_count": "followers",
    "user_following_count": "following",
    "user_video_count": "n_videos",
    "user_likes_count": "total_likes",
}


def _read(path: Path, part: str, table: str) -> pd.DataFrame:
    rel, hint = f"{part}/{PREFIX}_{table}_{part}.jsonl", f"expected the organisers' {part} files"
    f = source_file("smp_video_2025", path, rel, hint)
    return pd.read_json(f, lines=True, dtype={"pid": str, "uid": str, "vid": str})


def _caption(post_content: pd.Series) -> pd.Series:
    """The caption as text: the source replaced spaces by commas, so commas become spaces again."""
    return post_content.fillna("").astype(str).str.replace(",", " ", regex=False).str.split().str.join(" ")


def _tags(post_content: pd.Series) -> pd.Series:
    """The comma-separated tokens, de-duplicated (case-folded) and "|"-joined: captions and hashtags are
    merged in the source, so this is the hashtag-like token list, not hashtags alone."""

    def one(s: str) -> str:
        seen: dict[str, None] = {}
        for tok in str(s).split(","):
            tok = tok.strip().lstrip("#").lower()
            if tok:
                seen.setdefault(tok, None)
        return "|".join(seen)

    return post_content.fillna("").map(one)


@register_adapter
class SMPVideoAdapter(Adapter):
    name = "smp_video_2025"
    staged_name = "smp_video_2025"
    description = (
        "SMP-Video 2025: 6,000 TikTok posts (4,000 labelled, log-scale popularity) + user stats; no video files"
    )
    #: SOURCE.md: 4,000 train + 2,000 test posts; 3,488 train + 1,902 test user rows, which hold 68 exact
    #: duplicate rows and 158 users present in both parts with identical statistics -> 5,164 authors.
    expected_rows: ClassVar[dict[str, int]] = {"videos": 6000, "authors": 5164}

    def read(self, path: Path) -> VideoDataset:
        frames, users = [], []
        for part in PARTS:
            posts = _read(path, part, "posts")
            vids = _read(path, part, "videos").drop(columns=["uid"])
            df = posts.merge(vids, on="pid", how="left", validate="one_to_one")
            if part == "train":
                pop = _read(path, part, "popularity").drop(columns=["uid"])
                df = df.merge(pop, on="pid", how="left", validate="one_to_one")
            else:
                df["popularity"] = float("nan")
            df["split"] = part
            frames.append(df)
            users.append(_read(path, part, "users"))
        raw = pd.concat(frames, ignore_index=True)
        videos = pd.DataFrame(
            {
                "video_id": raw["pid"],
                "title": _caption(raw["post_content"]),
                "tags": _tags(raw["post_content"]),
                "published_at": pd.to_datetime(raw["post_time"], utc=True, errors="coerce"),
                "author_id": raw["uid"],
                "duration": raw["video_duration"].astype("float64"),
                "popularity": raw["popularity"].astype("float64"),
                "split": raw["split"],
                "vid": raw["vid"],
                "suggested_words": raw["post_suggested_words"].map(
                    lambda v: "|".join(map(str, v)) if isinstance(v, list) else ""
                ),
                "location": raw["post_location"],
                "language": raw["post_text_language"],
                "music_title": raw["music_title"],
                "archive_video_path": raw["video_path"],
                "video_height": raw["video_height"],
                "video_width": raw["video_width"],
                # kept for the tabular features (issue 13: every field of the posts/videos/users tables)
                "music_duration": pd.to_numeric(raw["music_duration"], errors="coerce").astype("float64"),
                "video_ratio": raw["video_ratio"],
            }
        )
        n_user_rows = sum(len(u) for u in users)
        authors = pd.concat(users, ignore_index=True).drop_duplicates()
        n_conflicting = int(authors["uid"].duplicated().sum())
        authors = authors.drop_duplicates("uid", keep="first").rename(columns=_AUTHOR_RENAME)
        notes = [
            "popularity is the organisers' log-scale score derived from views (1.22-13.35); the exact transform is "
            "not published. Use it as is (it is already log-scale); there are no raw view/like counts",
            "labels exist for the 4,000 'train' posts only (split column); the 2,000 'test' posts are unlabelled",
            "the official train/test boundary is temporal: train 2022-01..2023-08, test 2023-09..2023-12",
            "no video files: video_path is empty, archive_video_path names the file in the organisers' archive",
            "caption and hashtags are merged in the source (spaces were replaced by commas): title is that text, "
            "tags the de-duplicated tokens",
            "user statistics were collected once (crawl date not published), not at posting time",
            f"{n_user_rows} user rows -> {len(authors)} authors (exact duplicates dropped; "
            f"{n_conflicting} conflicting duplicate(s), first kept)",
        ]
        meta = {
            "notes": notes,
            "popularity_column": "popularity",
            "popularity_scale": "log",
            "split_column": "split",
            # Latest post in the data: the reference for "time since release" (the crawl date is unknown,
            # and is at least this late).
            "reference_time": str(videos["published_at"].max()),
        }
        return VideoDataset(self.name, videos, authors, meta=meta)
