"""Bilibili 番剧 (anime series) catalogue: series-level views and follows with release date, genre tags,
voice cast, staff and studio — the main data of the relation network + multi-task regressor.

File choice: the autumn-2022 crawl, ``2022/bilibili.csv`` (counts) joined with ``2022/bilibili_detail.csv``
(tags, release date, cast, staff) on ``media_id`` (3,345 seasons, one row each, every key joins).
Why not the others:

* ``2022/data_cleaned.csv`` is the repository author's merged table of the same crawl, but it drops 641
  seasons (2,704 rows), truncates cast/staff, and its ``production`` column is a subset of what the full
  ``staff`` field names (``动画制作：…``), so it adds nothing we cannot derive;
* ``2021/bilibili_data.csv`` is an older crawl (Feb 2021) of mostly the same seasons, with counts
  accumulated over a different period and no cast/staff; mixing crawls would mix count horizons.
  ``crawl="2021"`` reads it alone (no cast, staff or studio).

Mapping: one season = one "video". ``views`` = total plays, ``follows`` = users following the season,
``likes``, ``coins``, ``danmaku`` (弹幕), ``published_at`` = first air date (``2019年1月`` → 1 Jan 2019;
"敬请期待" (coming soon) → missing), ``category`` = season type (series / film), ``tags`` = genre tags,
``cast`` = voice actors, ``staff`` = people in the key creative roles (original author, director, series
composition / script, character design, music), ``studio`` = the animation studio (``动画制作``, else
``制作``) — all "|"-joined. ``author_id`` = the studio (so the core's author tables give studio stats); a
season without a named studio has no author.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from vidpop.data.adapters.base import Adapter, register_adapter, source_file, stable_id
from vidpop.data.schema import VideoDataset
from vidpop.errors import DataNotFoundError, VidpopError

COUNTS_CSV = "2022/bilibili.csv"
DETAIL_CSV = "2022/bilibili_detail.csv"
CRAWL_2021_CSV = "2021/bilibili_data.csv"

#: staff roles kept in the ``staff`` column (the creative roles; e.g. 原画 key animators are too many)
KEY_ROLES: tuple[str, ...] = (
    "原作",
    "原案",
    "监督",
    "导演",
    "总导演",
    "系列构成",
    "脚本",
    "编剧",
    "剧本",
    "总编剧",
    "人物设定",
    "角色设计",
    "人物设计",
    "人物原案",
    "角色原案",
    "音乐",
)
STUDIO_ROLES: tuple[str, ...] = ("动画制作", "アニメーション制作", "制作公司", "制作")
_ROLE = re.compile(r"^\s*(.+?)\s*(?:：|:| - )\s*(.+?)\s*$")
_NAMES = re.compile(r"\s*(?:、|/|／|;|；)\s*")
_DATE = re.compile(r"(\d{4})\s*[年/-]\s*(\d{1,2})(?:\s*[月/-]\s*(\d{1,2}))?")


def parse_release_date(text: object) -> pd.Timestamp:
    """``2022年10月5日`` / ``2021/2/20`` / ``2019年1月`` (day 1) → UTC date; anything else → NaT."""
    m = _DATE.search(str(text)) if text is not None and not pd.isna(text) else None
    if not m:
        return pd.NaT
    y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3) or 1)
    try:
        return pd.Timestamp(year=y, month=mo, day=d, tz="UTC")
    except ValueError:
        return pd.NaT


def _clean_name(name: str) -> str:
    # Drop episode ranges / notes in brackets ("高松信司（1-105）") and the "…" of truncated fields.
    name = re.sub(r"[（(][^）)]*[）)]?", "", name).replace("…", "")
    return re.sub(r"\s+", " ", name).strip(" ,，.。")


def parse_roles(text: object) -> list[tuple[str, list[str]]]:
    """ "role：name、name,role - name" → [(role, [names])]. Roles may be joined ("系列构成、脚本")."""
    if text is None or pd.isna(text):
        return []
    out = []
    for part in re.split(r"[,，\n]", str(text)):
        m = _ROLE.match(part)
        if not m:
            continue
        names = [n for n in (_clean_name(x) for x in _NAMES.split(m.group(2))) if n]
        if names:
            out.append((m.group(1).strip(), names))
    return out


def _join(items: list[str]) -> str:
    return "|".join(dict.fromkeys(i.replace("|", "/") for i in items if i))


def staff_and_studio(text: object) -> tuple[str, str]:
    """("|"-joined key-role people, "|"-joined studio) from a staff field."""
    people: list[str] = []
    studios: dict[str, list[str]] = {}
    for roles, names in parse_roles(text):
        role_set = {r.strip() for r in re.split(r"[、/]", roles)}
        if role_set & set(KEY_ROLES):
            people.extend(names)
        for r in STUDIO_ROLES:
            if r in role_set:
                studios.setdefault(r, names)
    studio = next((studios[r] for r in STUDIO_ROLES if r in studios), [])
    return _join(people), _join(studio)


def cast_names(text: object) -> str:
    """Voice actors of a "role：actor,role：actor1 / actor2" field, "|"-joined."""
    return _join([n for _, names in parse_roles(text) for n in names])


def genre_tags(text: object) -> str:
    """ "['漫画改', '奇幻']" → "漫画改|奇幻"."""
    if text is None or pd.isna(text):
        return ""
    try:
        tags = ast.literal_eval(str(text))
    except (ValueError, SyntaxError):
        tags = re.findall(r"[\w\u4e00-\u9fff]+", str(text))
    return _join([str(t).strip() for t in tags]) if isinstance(tags, list | tuple) else ""


@register_adapter
class BilibiliBangumiAdapter(Adapter):
    name = "bilibili_bangumi_series"
    staged_name = "bilibili_bangumi_series"
    description = "Bilibili anime series (2022 crawl): views, follows, release date, genre, cast, staff, studio"
    #: SOURCE.md: 3,345 rows in both 2022 files, one per media_id; 2,000 rows in the 2021 crawl.
    expected_rows: ClassVar[dict[str, int]] = {"videos": 3345}
    expected_rows_2021: ClassVar[int] = 2000

    def read(self, path: Path) -> VideoDataset:
        crawl = str(self.options.get("crawl", "2022"))
        if crawl not in {"2022", "2021"}:
            raise VidpopError(f"{self.name}: crawl must be '2022' or '2021', got '{crawl}'")
        return self._read_2022(path) if crawl == "2022" else self._read_2021(path)

    def _csv(self, path: Path, rel: str, encoding: str) -> pd.DataFrame:
        return pd.read_csv(source_file(self.name, path, rel, f"expected {rel} under {path}"), encoding=encoding)

    def _read_2022(self, path: Path) -> VideoDataset:
        counts = self._csv(path, COUNTS_CSV, "utf-8-sig")
        detail = self._csv(path, DETAIL_CSV, "utf-8-sig")
        need = {"media_id", "title", "views", "follows"}
        if need - set(counts.columns) or {"media_id", "staff", "pub_date"} - set(detail.columns):
            raise DataNotFoundError(f"{self.name}: unexpected columns in {COUNTS_CSV} / {DETAIL_CSV}")
        df = counts.merge(detail.drop_duplicates("media_id"), on="media_id", how="left", validate="one_to_one")
        notes = []
        unjoined = int(df["pub_date"].isna().sum())
        if unjoined:
            notes.append(f"{unjoined} seasons have no detail row (no tags, date, cast, staff)")
        staff_studio = [staff_and_studio(s) for s in df["staff"]]
        videos = pd.DataFrame(
            {
                "video_id": [f"md{int(m)}" for m in df["media_id"]],
                "title": df["title"].astype(str),
                "description": df["intro"],
                "tags": [genre_tags(t) for t in df["tags"]],
                "category": df["season_type"].map({1: "series", 2: "film"}).fillna("other"),
                "published_at": [parse_release_date(t) for t in df["pub_date"]],
                "views": df["views"],
                "follows": df["follows"],
                "likes": df["likes"],
                "coins": df["coins"],
                "danmaku": df["danmus"],
                "score": pd.to_numeric(df["score"], errors="coerce"),
                "n_ratings": pd.to_numeric(df["count"], errors="coerce"),
                "episodes": pd.to_numeric(df["episodes"].astype(str).str.extract(r"(\d+)话")[0], errors="coerce"),
                "is_finish": pd.to_numeric(df["is_finish"], errors="coerce"),
                "mark": df["mark"].fillna(""),
                "area": df["area"].fillna(""),
                "cast": [cast_names(c) for c in df["cv"]],
                "staff": [s for s, _ in staff_studio],
                "studio": [st for _, st in staff_studio],
            }
        )
        return self._finish(videos, notes, crawl="2022")

    def _read_2021(self, path: Path) -> VideoDataset:
        df = self._csv(path, CRAWL_2021_CSV, "gb18030").drop_duplicates("media_id")
        videos = pd.DataFrame(
            {
                "video_id": [f"md{int(m)}" for m in df["media_id"]],
                "title": df["title"].astype(str),
                "description": df["intro"],
                "tags": [genre_tags(t) for t in df["tags"]],
                "category": "unknown",
                "published_at": [parse_release_date(t) for t in df["pub_date"]],
                "views": df["views"],
                "follows": df["follows"],
                "likes": df["likes"],
                "coins": df["coins"],
                "danmaku": df["danmus"],
                "comments": df["comments"],
                "score": pd.to_numeric(df["score"].astype(str).str.replace("分", ""), errors="coerce"),
                "cast": "",
                "staff": "",
                "studio": "",
            }
        )
        return self._finish(videos, ["the 2021 crawl has no cast, staff or studio"], crawl="2021")

    def _finish(self, videos: pd.DataFrame, notes: list[str], crawl: str) -> VideoDataset:
        first_studio = videos["studio"].str.split("|").str[0].replace("", np.nan)
        videos["author_id"] = [None if pd.isna(s) else stable_id("studio_", s) for s in first_studio]
        authors = (
            pd.DataFrame({"author_id": videos["author_id"], "name": first_studio})
            .dropna()
            .groupby("author_id", as_index=False)
            .agg(name=("name", "first"), n_videos=("name", "size"))
        )
        n_nodate = int(videos["published_at"].isna().sum())
        notes = [
            *notes,
            f"crawl {crawl}: counts are cumulative at crawl time, so older seasons had longer to accumulate views",
            f"{n_nodate} seasons have no usable release date (e.g. '敬请期待', coming soon); temporal splits drop them",
            f"{int((videos['studio'] == '').sum())} seasons name no studio (no author row)",
            "titles are Chinese (with some Japanese/English); English-only text encoders see them poorly",
        ]
        videos = videos.sort_values(["published_at", "video_id"], kind="stable", na_position="last")
        return VideoDataset(self.name, videos, authors, meta={"notes": notes, "crawl": crawl})
