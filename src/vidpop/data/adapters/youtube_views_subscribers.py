"""YouTube headlines with views and channel subscriber counts (2024-11 … 2025-07, mostly Japanese searches).

The closest public stand-in for the "headline + views normalised by page followers, median split" setting
of the explainable attention model: ``views / subscribers`` is the audience-normalised score. The source
has no channel id, so each video gets its own pseudo-author carrying the channel's subscriber count
(``authors.followers``); channel identity (and hence grouping by channel) is not recoverable.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pandas as pd

from vidpop.data.adapters.base import Adapter, register_adapter, source_file
from vidpop.data.schema import VideoDataset

CSV_NAME = "youtube_top_new_complete.csv"

#: source column -> vidpop column (videos table); the rest are kept under their own names.
_RENAME = {
    "video_duration": "duration",
    "keyword": "search_keyword",
    "category_id": "category",
}
_KEEP_EXTRA = (
    "tags_count",
    "description_length",
    "thumbnail_link",
    "object_complexity",
    "element_complexity",
    "brightness",
    "colorfulness",
)


@register_adapter
class YoutubeViewsSubscribersAdapter(Adapter):
    name = "youtube_views_subscribers_2025"
    staged_name = "youtube_views_subscribers_2025"
    description = "YouTube headlines + views + channel subscribers (6,062 videos, 2024-11…2025-07); views÷subscribers"
    expected_rows: ClassVar[dict[str, int]] = {"videos": 6062, "authors": 6062}

    def read(self, path: Path) -> VideoDataset:
        csv = source_file(self.name, path, CSV_NAME, single=True)
        raw = pd.read_csv(csv, dtype={"video_id": str, "category_id": str})
        videos = raw.rename(columns=_RENAME)
        videos["published_at"] = pd.to_datetime(raw["published_at"], utc=True, errors="coerce")
        videos["author_id"] = "ch_" + raw["video_id"].astype(str)
        cols = ["video_id", "title", "author_id", "published_at", "duration", "views", "category", "search_keyword"]
        videos = videos[cols + [c for c in _KEEP_EXTRA if c in videos]]
        authors = pd.DataFrame({"author_id": videos["author_id"], "followers": raw["subscribers"].astype("float64")})
        notes = [
            "no channel id in the source: one pseudo-author per video holds its channel's subscriber count",
            "subscribers were collected in July 2025, not at upload time",
            f"{int((raw['subscribers'] == 0).sum())} video(s) have subscribers = 0 (normalisers clip the divisor at 1)",
            "no likes/comments counts; thumbnails are not included (only their URLs)",
            "titles are mostly Japanese: English word vectors (GloVe) cover only part of the tokens",
        ]
        return VideoDataset(self.name, videos, authors, meta={"notes": notes})
