"""MicroLens (Ni et al., 2023): micro-videos with titles, category, likes/views, comment counts and
user sequences — the one source here with both popularity counts and user histories.

Two adapters read the same staged folder (see its SOURCE.md):

* ``microlens`` — 19,738 videos; interactions = the MicroLens-50k sequences (50,000 users,
  359,708 rows) in the authors' chronological order, kept as ``position`` (0-based within a user).
  The 50k file has **no timestamps**, so ``timestamp`` is NaT everywhere.
* ``microlens_timestamped`` — the same videos; interactions = the filtered sample of consecutive
  (item, next item) pairs with **real** UTC timestamps (7,585 pairs -> one row per distinct
  (user, item, time)). Use it where a model needs time gaps; it is a sample, not the full log.

Titles: MicroLens-50k_titles.csv has the full caption (hashtags included) for 19,220 items;
MicroLens-100k_title_en.csv has a short cover caption (a prefix of it) for all 19,738. ``title``
takes the long one where present, else the short one; ``title_short`` keeps the short caption for
every item and ``title_source`` says which file ``title`` came from. ``description`` is left empty
because neither file is a description. ``tags`` holds the ``#hashtags`` of the long title, "|"-joined.

Media: only 10 covers and 3 clips are staged. ``covers_dir=`` / ``videos_dir=`` point the adapter at
a local copy (e.g. one made by :meth:`MicroLensAdapter.download`); ``cover_path``/``video_path`` are
absolute paths of files that exist, missing otherwise (never a placeholder image).
"""

from __future__ import annotations

import re
import time
import urllib.error
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from vidpop.data.adapters.base import Adapter, fetch_url, register_adapter, source_file
from vidpop.data.schema import VideoDataset
from vidpop.errors import DataNotFoundError, DownloadUnavailableError

PAIRS = "MicroLens-50k_pairs.tsv"
TITLES_LONG = "MicroLens-50k_titles.csv"
TITLES_SHORT = "MicroLens-100k_title_en.csv"
LIKES_VIEWS = "MicroLens-100k_likes_and_views.txt"
CATEGORIES = "tags_to_summary.csv"
COMMENTS = "MicroLens-100k_comment_counts.csv"
TIMESTAMPED = "timestamps/MicroLens-100k_timestamped_pairs_sample.csv"

#: The authors' server (westlake-repl/MicroLens README, "Download links"); covers are served one
#: file per item as ``<base>/MicroLens-100k_covers/<item>.jpg``.
COVER_BASE_URL = "https://recsys.westlake.edu.cn/MicroLens-100k-Dataset/MicroLens-100k_covers"
N_ITEMS = 19738

_HASHTAG = re.compile(r"#\s*([^#]+?)\s*(?=#|$)")


def _need(path: Path, name: str, adapter: str) -> Path:
    return source_file(adapter, path, name, f"the MicroLens folder must hold {name}")


def _read_short_titles(path: Path) -> pd.Series:
    # "item, caption" without quoting: only the first comma separates the id from the caption.
    ids, titles = [], []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\r\n")
            if not line:
                continue
            item, _, title = line.partition(",")
            ids.append(item.strip())
            titles.append(title.strip())
    return pd.Series(titles, index=pd.Index(ids, name="video_id"), name="title_short")


def _hashtags(title: str) -> str | None:
    tags = [t for t in _HASHTAG.findall(title) if t]
    return "|".join(tags) if tags else None


def _media_paths(ids: pd.Series, folder: Path | None, suffix: str) -> list[str | None]:
    """Absolute path per id for the files that exist in ``folder`` (None elsewhere)."""
    if folder is None or not folder.is_dir():
        return [None] * len(ids)
    # absolute but not resolved: a symlinked media folder keeps the user's paths
    root = folder.expanduser().absolute()
    present = {p.stem: str(p) for p in root.glob(f"*{suffix}") if p.is_file()}
    return [present.get(i) for i in ids]


def read_microlens_videos(path: Path, covers_dir: Path | None, videos_dir: Path | None, adapter: str) -> pd.DataFrame:
    """The 19,738-row videos table shared by both MicroLens adapters."""
    lv = pd.read_csv(
        _need(path, LIKES_VIEWS, adapter),
        sep="\t",
        header=None,
        names=["video_id", "likes", "views"],
        dtype={"video_id": str},
    )
    lv["video_id"] = lv["video_id"].str.strip()
    cats = pd.read_csv(_need(path, CATEGORIES, adapter), header=None, names=["video_id", "category"], dtype=str).apply(
        lambda s: s.str.strip()
    )
    comments = pd.read_csv(_need(path, COMMENTS, adapter), dtype={"video_id": str}, encoding="utf-8-sig")
    comments = comments.rename(columns={"comment_count": "comments"})
    short = _read_short_titles(_need(path, TITLES_SHORT, adapter))
    long = pd.read_csv(_need(path, TITLES_LONG, adapter), dtype={"item": str}).set_index("item")["title"]

    ids = pd.Index(sorted(set(lv["video_id"]) | set(short.index), key=int), name="video_id")
    v = pd.DataFrame(index=ids)
    v["title_short"] = short.reindex(ids)
    long = long.reindex(ids)
    v["title"] = long.fillna(v["title_short"])
    v["title_source"] = np.where(long.notna(), "50k_titles", "100k_title_en")
    v["tags"] = [(_hashtags(t) if isinstance(t, str) else None) for t in long]
    v["category"] = cats.set_index("video_id")["category"].reindex(ids)
    v = v.join(lv.set_index("video_id")).join(comments.set_index("video_id")[["comments"]])
    v["likes_gt_views"] = (v["likes"] > v["views"]).fillna(False).astype(bool)
    v = v.reset_index()
    v["cover_path"] = _media_paths(v["video_id"], covers_dir, ".jpg")
    v["video_path"] = _media_paths(v["video_id"], videos_dir, ".mp4")
    return v


class _MicroLensBase(Adapter):
    staged_name = "microlens"
    download_url = COVER_BASE_URL

    def _dirs(self, path: Path) -> tuple[Path | None, Path | None]:
        covers = self.options.get("covers_dir")
        videos = self.options.get("videos_dir")
        return (
            Path(covers).expanduser() if covers else path / "covers",
            Path(videos).expanduser() if videos else path / "videos",
        )

    def _videos(self, path: Path) -> pd.DataFrame:
        if not path.is_dir():
            raise DataNotFoundError(f"{self.name}: {path} is not a folder (expected the MicroLens folder)")
        covers, videos = self._dirs(path)
        for opt, folder in (("covers_dir", covers), ("videos_dir", videos)):
            if self.options.get(opt) and not (folder and folder.is_dir()):
                raise DataNotFoundError(f"{self.name}: {opt}={folder} is not a folder")
        return read_microlens_videos(path, covers, videos, self.name)

    def _notes(self, videos: pd.DataFrame) -> list[str]:
        n_cov = int(videos["cover_path"].notna().sum())
        n_vid = int(videos["video_path"].notna().sum())
        n_bad = int(videos["likes_gt_views"].sum())
        return [
            f"media on disk: {n_cov} of {len(videos)} covers, {n_vid} video files "
            "(the staged copy has 10 covers and 3 clips; `vidpop data download microlens` fetches all "
            "covers where the network allows, then pass --option covers_dir=...)",
            "no comment texts (MicroLens-100k_comment_en.txt unavailable): user_texts is empty",
            "an interaction is a user comment (the authors' definition); 'comments' = comments per video",
            f"title: the MicroLens-50k caption for {int((videos['title_source'] == '50k_titles').sum())} "
            "items, else the short 100k cover caption (kept for all items in 'title_short')",
            f"{n_bad} video(s) have likes > views (flag 'likes_gt_views'; the authors suggest dropping them)",
            "likes/views are the authors' corrected release of 2025-01-26; no publish time, no author",
        ]

    def download(self, dest: str | Path) -> Path:
        """Fetch all 19,738 covers from the authors' server into ``dest/covers`` (resumable).

        Options: ``cover_url`` (base URL, default :data:`COVER_BASE_URL`), ``timeout`` (seconds per
        request, default 20), ``limit`` (fetch only the first N items, for trying it out).
        Files already present are skipped, so an interrupted run continues where it stopped.
        Offline, the first request fails and this raises :class:`DownloadUnavailableError`.
        """
        return download_covers(
            Path(dest),
            base_url=str(self.options.get("cover_url", COVER_BASE_URL)),
            timeout=float(self.options.get("timeout", 20)),
            limit=int(self.options["limit"]) if self.options.get("limit") else None,
        )


def download_covers(
    dest: Path,
    base_url: str = COVER_BASE_URL,
    timeout: float = 20.0,
    limit: int | None = None,
    progress: bool = True,
) -> Path:
    """Download ``<base_url>/<item>.jpg`` for items 1..19,738 into ``dest/covers``.

    Items the server answers 404 for are listed in ``dest/covers/missing.txt`` and skipped. A network
    failure (no route, refused, timeout) raises :class:`DownloadUnavailableError` at once; files fetched
    so far stay, so rerunning resumes.
    """
    out = dest / "covers"
    out.mkdir(parents=True, exist_ok=True)
    items = list(range(1, N_ITEMS + 1))[:limit]
    todo = [i for i in items if not (out / f"{i}.jpg").exists()]
    missing: list[int] = []
    headers = {"User-Agent": "vidpop (+https://github.com/westlake-repl/MicroLens dataset download)"}
    t0 = time.monotonic()
    for item in tqdm(todo, desc="microlens covers", unit="img", disable=not progress):
        url = f"{base_url.rstrip('/')}/{item}.jpg"
        try:
            fetch_url(url, out / f"{item}.jpg", timeout=timeout, headers=headers)
        except DownloadUnavailableError as exc:
            cause = exc.__cause__
            if isinstance(cause, urllib.error.HTTPError) and cause.code == 404:
                missing.append(item)
                continue
            done = sum((out / f"{i}.jpg").exists() for i in items)
            raise DownloadUnavailableError(
                f"microlens: cannot reach the MicroLens server at {base_url} ({cause or exc}) after "
                f"{time.monotonic() - t0:.0f}s; {done} of {len(items)} covers are in {out}. Rerun where the "
                "network allows (it resumes), or pass a local copy with --option covers_dir=FOLDER."
            ) from exc
    if missing:
        (out / "missing.txt").write_text("\n".join(map(str, missing)) + "\n")
    return dest


@register_adapter
class MicroLensAdapter(_MicroLensBase):
    name = "microlens"
    description = "MicroLens: 19,738 micro-videos (title, category, likes/views/comments) + 50k user sequences"
    expected_rows: ClassVar[dict[str, int]] = {"videos": 19738, "interactions": 359708}
    expected_users: ClassVar[int] = 50000

    def read(self, path: Path) -> VideoDataset:
        videos = self._videos(path)
        users: list[str] = []
        items: list[str] = []
        positions: list[int] = []
        with open(_need(path, PAIRS, self.name), encoding="utf-8") as fh:
            for line in fh:
                user, _, seq = line.rstrip("\r\n").partition("\t")
                if not user:
                    continue
                seq_items = seq.split()
                users.extend([user.strip()] * len(seq_items))
                items.extend(seq_items)
                positions.extend(range(len(seq_items)))
        inter = pd.DataFrame({"user_id": users, "video_id": items, "position": positions})
        inter["timestamp"] = pd.Series(pd.NaT, index=inter.index, dtype="datetime64[ns, UTC]")
        n_users = inter["user_id"].nunique()
        notes = [
            *self._notes(videos),
            f"interactions: MicroLens-50k sequences, {n_users} users, {len(inter)} rows, "
            f"{inter['video_id'].nunique()} distinct videos; order kept in 'position', no timestamps "
            "(use adapter microlens_timestamped for a sample with real times)",
        ]
        return VideoDataset(self.name, videos, interactions=inter, meta={"notes": notes})


@register_adapter
class MicroLensTimestampedAdapter(_MicroLensBase):
    name = "microlens_timestamped"
    description = "MicroLens videos + a 14,628-interaction sample of the 100k log with real timestamps"
    expected_rows: ClassVar[dict[str, int]] = {"videos": 19738, "interactions": 14628}
    #: rows (consecutive pairs) in the sample file, per SOURCE.md
    source_rows: ClassVar[int] = 7585

    def read(self, path: Path) -> VideoDataset:
        videos = self._videos(path)
        raw = pd.read_csv(_need(path, TIMESTAMPED, self.name), dtype=str)
        cols = ["user", "item", "datetime", "next_item", "next_datetime"]
        if missing := [c for c in cols if c not in raw.columns]:
            raise DataNotFoundError(f"{self.name}: {TIMESTAMPED} lacks column(s) {missing}")
        # Each row is two interactions (item at datetime, next_item at next_datetime); a middle item
        # of a chain appears in two rows, hence the deduplication on (user, item, time).
        first = raw[["user", "item", "datetime"]]
        second = raw[["user", "next_item", "next_datetime"]].set_axis(first.columns, axis=1)
        both = pd.concat([first, second], ignore_index=True).set_axis(["user_id", "video_id", "timestamp"], axis=1)
        n_both = len(both)
        both["timestamp"] = pd.to_datetime(both["timestamp"], format="%Y-%m-%d %H:%M:%S", utc=True)
        inter = both.drop_duplicates().sort_values(["user_id", "timestamp", "video_id"], kind="stable")
        inter["position"] = inter.groupby("user_id").cumcount()
        inter = inter.reset_index(drop=True)
        notes = [
            *self._notes(videos),
            f"interactions: filtered sample of the MicroLens-100k log (only consecutive pairs 15-300 s apart): "
            f"{len(raw)} pairs -> {n_both} interactions -> {len(inter)} after deduplicating (user, item, time); "
            f"{inter['user_id'].nunique()} users, {inter['timestamp'].min():%Y-%m-%d} .. "
            f"{inter['timestamp'].max():%Y-%m-%d} (UTC); gaps > 300 s are absent by construction",
        ]
        return VideoDataset(self.name, videos, interactions=inter, meta={"notes": notes, "source_pairs": len(raw)})
