"""The one data model of vidpop: four tables written as Parquet plus a JSON manifest.

* ``videos``: one row per video (or series / track); ids are strings.
* ``authors``: uploader statistics, joined on ``author_id``.
* ``interactions``: who watched what, in time order (``timestamp`` and/or ``position``).
* ``user_texts``: texts a user wrote (comments, posts), for cold-start recommendation.

Every adapter returns a :class:`VideoDataset`; every model reads one. Columns beyond the
ones listed here are kept (adapters put source-specific fields there, e.g. ``genre``).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from vidpop.errors import SchemaError

SCHEMA_VERSION = 1

#: Engagement counts a source may have. Models pick the ones that exist.
ENGAGEMENT_COLUMNS: tuple[str, ...] = (
    "views",
    "likes",
    "comments",
    "shares",
    "coins",
    "favorites",
    "danmaku",
    "follows",
)

#: column -> dtype kind ("str", "float", "int", "datetime") for the known columns of each table.
VIDEO_COLUMNS: dict[str, str] = {
    "video_id": "str",
    "title": "str",
    "description": "str",
    "tags": "str",  # "|"-joined
    "category": "str",
    "published_at": "datetime",
    "author_id": "str",
    "cover_path": "str",
    "video_path": "str",
    "duration": "float",
    **{c: "float" for c in ENGAGEMENT_COLUMNS},
}
AUTHOR_COLUMNS: dict[str, str] = {
    "author_id": "str",
    "name": "str",
    "followers": "float",
    "following": "float",
    "n_videos": "float",
    "total_likes": "float",
}
INTERACTION_COLUMNS: dict[str, str] = {
    "user_id": "str",
    "video_id": "str",
    "timestamp": "datetime",
    "position": "int",
}
USER_TEXT_COLUMNS: dict[str, str] = {
    "user_id": "str",
    "timestamp": "datetime",
    "text": "str",
}

TABLES: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    # table -> (known columns, required columns)
    "videos": (VIDEO_COLUMNS, ("video_id", "title")),
    "authors": (AUTHOR_COLUMNS, ("author_id",)),
    "interactions": (INTERACTION_COLUMNS, ("user_id", "video_id")),
    "user_texts": (USER_TEXT_COLUMNS, ("user_id", "text")),
}


def _coerce(df: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    df = df.copy()
    for col, kind in columns.items():
        if col not in df.columns:
            continue
        s = df[col]
        if kind == "str":
            df[col] = s.astype("string")
        elif kind == "float":
            df[col] = pd.to_numeric(s, errors="coerce").astype("float64")
        elif kind == "int":
            df[col] = pd.to_numeric(s, errors="coerce").astype("Int64")
        elif kind == "datetime":
            df[col] = pd.to_datetime(s, errors="coerce", utc=True)
    return df


def write_manifest(
    out: Path, name: str, row_counts: dict[str, int], engagement_columns: list[str], meta: dict[str, Any]
) -> dict[str, Any]:
    """Write ``manifest.json`` (last: a folder with a manifest has all its tables) and return it."""
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "row_counts": row_counts,
        "engagement_columns": engagement_columns,
        "meta": meta,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    return manifest


def empty_table(table: str) -> pd.DataFrame:
    """An empty frame with the required columns of ``table`` (a copy of a cached one: building it costs
    milliseconds, and every one-row dataset of a served prediction needs three)."""
    return _empty_table(table).copy()


@functools.cache
def _empty_table(table: str) -> pd.DataFrame:
    columns, required = TABLES[table]
    return _coerce(pd.DataFrame({c: [] for c in required}), columns)


def normalise_table(table: str, df: pd.DataFrame) -> pd.DataFrame:
    """Check required columns and coerce known columns to their schema dtypes."""
    columns, required = TABLES[table]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise SchemaError(f"table '{table}' lacks required column(s) {missing}; has {list(df.columns)}")
    df = _coerce(df.reset_index(drop=True), columns)
    if table == "videos" and df["video_id"].duplicated().any():
        dup = df.loc[df["video_id"].duplicated(), "video_id"].head(3).tolist()
        raise SchemaError(f"videos.video_id must be unique; duplicates such as {dup}")
    if table == "authors" and df["author_id"].duplicated().any():
        raise SchemaError("authors.author_id must be unique")
    return df


@dataclass
class VideoDataset:
    """A dataset in vidpop's schema. Build one with an adapter or :meth:`load`."""

    name: str
    videos: pd.DataFrame
    authors: pd.DataFrame = field(default_factory=lambda: empty_table("authors"))
    interactions: pd.DataFrame = field(default_factory=lambda: empty_table("interactions"))
    user_texts: pd.DataFrame = field(default_factory=lambda: empty_table("user_texts"))
    #: Free-form provenance: the adapter, the source folder, notes on what the data lacks.
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.videos = normalise_table("videos", self.videos)
        self.authors = normalise_table("authors", self.authors)
        self.interactions = normalise_table("interactions", self.interactions)
        self.user_texts = normalise_table("user_texts", self.user_texts)

    # ------------------------------------------------------------------ views
    @property
    def engagement_columns(self) -> list[str]:
        """Engagement counts present in ``videos`` with at least one value."""
        return [c for c in ENGAGEMENT_COLUMNS if c in self.videos and self.videos[c].notna().any()]

    def row_counts(self) -> dict[str, int]:
        return {t: len(getattr(self, t)) for t in TABLES}

    def videos_with_authors(self) -> pd.DataFrame:
        """``videos`` left-joined with ``authors`` (author columns prefixed ``author_``)."""
        if self.authors.empty or "author_id" not in self.videos:
            return self.videos.copy()
        a = self.authors.rename(columns={c: f"author_{c}" for c in self.authors.columns if c != "author_id"})
        return self.videos.merge(a, on="author_id", how="left")

    def check_joins(self) -> dict[str, int]:
        """Count rows whose foreign keys do not resolve (0 everywhere for a clean dataset)."""
        vids = set(self.videos["video_id"].dropna())
        out = {
            "interactions_unknown_video": int((~self.interactions["video_id"].isin(vids)).sum()),
        }
        if "author_id" in self.videos and not self.authors.empty:
            authors = set(self.authors["author_id"].dropna())
            known = self.videos["author_id"].dropna()
            out["videos_unknown_author"] = int((~known.isin(authors)).sum())
        return out

    def subset(self, video_ids: list[str] | pd.Index | None = None, n: int | None = None) -> VideoDataset:
        """A smaller dataset with the given videos (or the first ``n``) and the rows that reference them."""
        if video_ids is None:
            video_ids = self.videos["video_id"].head(n).tolist()
        keep = set(video_ids)
        videos = self.videos[self.videos["video_id"].isin(keep)]
        authors = self.authors
        if "author_id" in videos and not authors.empty:
            authors = authors[authors["author_id"].isin(set(videos["author_id"].dropna()))]
        inter = self.interactions[self.interactions["video_id"].isin(keep)]
        return VideoDataset(self.name, videos, authors, inter, self.user_texts, dict(self.meta))

    def sample(self, n: int | None, seed: int = 0) -> VideoDataset:
        """A seeded random sample of ``n`` videos (all of them when ``n`` is None or not smaller)."""
        if n is None or n >= len(self.videos):
            return self
        import numpy as np

        keep = np.sort(np.random.default_rng(seed).choice(len(self.videos), int(n), replace=False))
        return self.subset(self.videos["video_id"].to_numpy()[keep])

    # ------------------------------------------------------------------ I/O
    def save(self, out_dir: str | Path) -> Path:
        """Write the four tables as Parquet and ``manifest.json`` into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for table in TABLES:
            df = getattr(self, table)
            tmp = out / f".{table}.parquet.tmp"
            df.to_parquet(tmp, index=False)
            tmp.replace(out / f"{table}.parquet")
        write_manifest(out, self.name, self.row_counts(), self.engagement_columns, self.meta)
        return out

    @classmethod
    def load(cls, in_dir: str | Path) -> VideoDataset:
        """Read a dataset written by :meth:`save` (or by ``vidpop data import``)."""
        src = Path(in_dir)
        manifest_path = src / "manifest.json"
        if not manifest_path.exists():
            raise SchemaError(f"{src} is not a vidpop dataset (no manifest.json); create one with `vidpop data import`")
        manifest = cls.read_manifest(src)
        if manifest.get("schema_version") != SCHEMA_VERSION:
            raise SchemaError(
                f"{src} has schema version {manifest.get('schema_version')}, this vidpop reads {SCHEMA_VERSION}"
            )
        tables = {t: _read_parquet_table(src, t) for t in TABLES}
        try:
            ds = cls(str(manifest["name"]), meta=dict(manifest.get("meta") or {}), **tables)
        except KeyError:
            raise SchemaError(f"{src}/manifest.json has no dataset name; {_REIMPORT}") from None
        ds.meta.setdefault("path", str(src))
        return ds

    @staticmethod
    def read_manifest(in_dir: str | Path) -> dict[str, Any]:
        """The manifest, or a one-line :class:`SchemaError` saying it is damaged and what to do."""
        path = Path(in_dir) / "manifest.json"
        try:
            manifest = json.loads(path.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            raise SchemaError(f"{path.parent} is not a vidpop dataset (no manifest.json); {_REIMPORT}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SchemaError(f"{path} is damaged ({type(exc).__name__}); {_REIMPORT}") from None
        if not isinstance(manifest, dict):
            raise SchemaError(f"{path} is damaged (not a JSON object); {_REIMPORT}")
        return manifest


_REIMPORT = "re-create the folder with `vidpop data import`"


def _read_parquet_table(src: Path, table: str) -> pd.DataFrame:
    """One table of a dataset folder, or a one-line :class:`SchemaError` for a missing or damaged file."""
    path = src / f"{table}.parquet"
    if not path.is_file():
        raise SchemaError(f"{src} lacks {path.name} (an interrupted import?); {_REIMPORT}")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... for a damaged file
        raise SchemaError(f"{path} is damaged ({type(exc).__name__}); {_REIMPORT}") from None
