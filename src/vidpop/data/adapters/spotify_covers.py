"""Spotify "Fresh Finds" tracks (Sept–Oct 2022): cover artwork + track title + Spotify popularity index.

The only public set reachable here that pairs a real cover image with a poster-chosen title and a
popularity label, so it is where the cover + title fusion model is measured. It is **music artwork,
not video covers**, and the label is Spotify's 0–100 ``popularity`` index (computed by Spotify from
recent plays), not a count. The same track appears in several playlists, so rows carry a ``group``
(connected components over track title and cover URL) for leakage-free grouped splits.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from vidpop.data.adapters.base import Adapter, register_adapter, source_file
from vidpop.data.schema import VideoDataset

CSV_NAME = "labels.csv"
IMAGE_DIR = "images"


def title_cover_groups(titles: pd.Series, covers: pd.Series) -> np.ndarray:
    """Group id per row: rows sharing a (case-folded, stripped) title or a cover URL are one group.

    Computed as connected components (union-find) so that a track listed under two playlists, and
    two tracks of one release sharing a cover, never straddle train and test.
    """
    n = len(titles)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for keys in (titles.astype(str).str.strip().str.casefold(), covers.astype(str)):
        first: dict[str, int] = {}
        for i, k in enumerate(keys):
            if k in first:
                a, b = find(i), find(first[k])
                if a != b:
                    parent[a] = b
            else:
                first[k] = i
    roots = np.array([find(i) for i in range(n)])
    # Dense, order-stable ids ("g0", "g1", ...).
    _, dense = np.unique(roots, return_inverse=True)
    return np.array([f"g{g}" for g in dense], dtype=object)


@register_adapter
class SpotifyCoversAdapter(Adapter):
    name = "spotify_fresh_finds_covers_2022"
    staged_name = "spotify_fresh_finds_covers_2022"
    description = "Spotify Fresh Finds: 1,859 covers + track titles + popularity 0-100 (music artwork, not video)"
    expected_rows: ClassVar[dict[str, int]] = {"videos": 1859}

    def read(self, path: Path) -> VideoDataset:
        csv = source_file(self.name, path, CSV_NAME, single=True)
        root = csv.parent
        raw = pd.read_csv(csv, dtype={"playlist_uri": str, "track_name": str})
        covers = [root / IMAGE_DIR / f for f in raw["image_file"].astype(str)]
        videos = pd.DataFrame(
            {
                "video_id": "sp_" + raw["row_id"].astype(int).map("{:04d}".format),
                "title": raw["track_name"],
                "category": raw["playlist_name"],
                # Absolute paths; a file that is not on disk becomes a missing cover (NaN), never a blank image.
                "cover_path": [str(p.resolve()) if p.exists() else None for p in covers],
                "popularity": raw["popularity"].astype("float64"),
                "group": title_cover_groups(raw["track_name"], raw["album_url"]),
                "album_url": raw["album_url"],
                "playlist_uri": raw["playlist_uri"],
            }
        )
        n_missing = int(videos["cover_path"].isna().sum())
        notes = [
            "music artwork, not video covers: titles are song names, covers are album/single artwork",
            "label is Spotify's popularity index (0-100, computed by Spotify from recent plays), not a count; "
            "it is the only popularity signal (no views/likes)",
            "no per-track timestamps and no follower counts",
            f"tracks repeat across playlists ({raw['track_name'].nunique()} distinct titles over {len(raw)} rows): "
            f"split by the 'group' column ({videos['group'].nunique()} groups over title and cover URL)",
            "covers were resized to 256x256 when staged (models read 224 px)",
        ]
        if n_missing:
            notes.append(f"{n_missing} cover file(s) not found on disk: cover_path left empty")
        return VideoDataset(self.name, videos, meta={"notes": notes, "popularity_column": "popularity"})
