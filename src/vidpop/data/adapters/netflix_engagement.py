"""Netflix "What We Watched" engagement reports, 2023 H1 – 2025 H1 (five official xlsx files): per title
or season, views and hours viewed in a half-year, with the release date of Netflix-branded titles.

Reading: every sheet of every file with openpyxl (read-only); the header row is the one whose second
cell is ``Title``. 2023 H1 has one mixed sheet with hours only (no ``Views``, no ``Runtime``); later
reports have a TV sheet (``TV``/``Shows``) and a film sheet (``Film``/``Movies``) with ``Views``.

Deduplication across reports (a title is listed in every half-year it was watched): one row per exact
``Title`` string. The kept row is the **earliest report that has Views** (2023 H2 on), i.e. the first
half-year whose views we know; a title listed only in 2023 H1 keeps that row with hours viewed and no
views. ``n_reports`` counts the reports listing the title, ``report`` names the kept one, and
``exposure_days`` is the number of days of the kept window the title was available (window end minus
the later of release date and window start; the full window when the release date is blank) and
``release_age_days`` the days from release to the window end (how old the title is in that report);
``in_release_window`` = 1 when the kept window is the one the title was released in (its first-half-year
views: titles released 2023-07 … 2025-06). The
release date is the first non-blank one across reports. ``category`` is ``tv`` / ``film`` from the sheet
(2023 H1-only rows: ``tv`` when the title names a season / series, else ``unknown``).

What the data lacks: genre and cast (join ``netflix_top10_weekly/tmdb_data.csv`` for those), release
dates for licensed titles, and views for 2023 H1. Counts are rounded to 100,000.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from vidpop.data.adapters.base import Adapter, register_adapter, source_file
from vidpop.data.schema import VideoDataset
from vidpop.errors import DataNotFoundError

#: file -> (report label, window start, window end exclusive)
REPORTS: dict[str, tuple[str, str, str]] = {
    "What_We_Watched_A_Netflix_Engagement_Report_2023Jan-Jun.xlsx": ("2023H1", "2023-01-01", "2023-07-01"),
    "What_We_Watched_A_Netflix_Engagement_Report_2023Jul-Dec.xlsx": ("2023H2", "2023-07-01", "2024-01-01"),
    "What_We_Watched_A_Netflix_Engagement_Report_2024Jan-Jun.xlsx": ("2024H1", "2024-01-01", "2024-07-01"),
    "What_We_Watched_A_Netflix_Engagement_Report_2024Jul-Dec.xlsx": ("2024H2", "2024-07-01", "2025-01-01"),
    "What_We_Watched_A_Netflix_Engagement_Report_2025Jan-Jun.xlsx": ("2025H1", "2025-01-01", "2025-07-01"),
}
_SHEET_KIND = {"tv": "tv", "shows": "tv", "film": "film", "movies": "film", "engagement": "unknown"}
_TV_TITLE = re.compile(r"(?:season|series|limited series|miniseries|volume|part \d|: book)", re.IGNORECASE)


def _runtime_hours(text: object) -> float:
    """``"7:34"`` → 7.57 hours."""
    m = re.match(r"^\s*(\d+):(\d{1,2})", str(text)) if text is not None else None
    return int(m.group(1)) + int(m.group(2)) / 60 if m else np.nan


def read_report(path: Path) -> pd.DataFrame:
    """All rows of one report file: title, kind, release, hours, runtime, views, available_globally."""
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    frames = []
    try:
        for ws in wb.worksheets:
            rows = list(ws.iter_rows(values_only=True))
            head = next((i for i, r in enumerate(rows) if len(r) > 1 and r[1] == "Title"), None)
            if head is None:
                continue
            cols = [str(c) if c is not None else f"_{j}" for j, c in enumerate(rows[head])]
            df = pd.DataFrame([r for r in rows[head + 1 :] if len(r) > 1 and r[1] is not None], columns=cols)
            df["kind"] = _SHEET_KIND.get(ws.title.strip().lower(), "unknown")
            frames.append(df)
    finally:
        wb.close()
    if not frames:
        raise DataNotFoundError(f"{path.name}: no sheet with a 'Title' header row")
    df = pd.concat(frames, ignore_index=True)
    return pd.DataFrame(
        {
            "title": df["Title"].astype(str).str.strip(),
            "kind": df["kind"],
            "available_globally": df["Available Globally?"].astype(str).str.lower().eq("yes").astype(float),
            "release": pd.to_datetime(df["Release Date"], errors="coerce", utc=True),
            "hours_viewed": pd.to_numeric(df["Hours Viewed"], errors="coerce"),
            "runtime_hours": [_runtime_hours(x) for x in df["Runtime"]] if "Runtime" in df else np.nan,
            "views": pd.to_numeric(df["Views"], errors="coerce") if "Views" in df else np.nan,
        }
    )


@register_adapter
class NetflixEngagementAdapter(Adapter):
    name = "netflix_engagement_reports"
    staged_name = "netflix_engagement_reports"
    description = "Netflix 'What We Watched' 2023H1-2025H1: per-title views, hours viewed, release date"
    #: rows per report as SOURCE.md documents them (all sheets of the file)
    source_rows: ClassVar[dict[str, int]] = {
        "2023H1": 18214,
        "2023H2": 15994,
        "2024H1": 16161,
        "2024H2": 15563,
        "2025H1": 16182,
    }
    #: distinct titles after deduplication (derived from the files above; see the module docstring)
    expected_rows: ClassVar[dict[str, int]] = {"videos": 27374}

    def read(self, path: Path) -> VideoDataset:
        parts, row_counts = [], {}
        for fname, (label, start, end) in REPORTS.items():
            f = source_file(self.name, path, fname)
            df = read_report(f)
            row_counts[label] = len(df)
            df["report"], df["window_start"], df["window_end"] = (
                label,
                pd.Timestamp(start, tz="UTC"),
                pd.Timestamp(end, tz="UTC"),
            )
            parts.append(df)
        allrows = pd.concat(parts, ignore_index=True)
        return self._dedupe(allrows, row_counts)

    def _dedupe(self, allrows: pd.DataFrame, row_counts: dict[str, int]) -> VideoDataset:
        g = allrows.groupby("title", sort=False)
        first_release = g["release"].transform("first")  # first non-null in report order
        n_reports = g["report"].transform("nunique")
        kinds = allrows.assign(k=allrows["kind"].where(allrows["kind"] != "unknown")).groupby("title")["k"].first()
        allrows = allrows.assign(release=first_release, n_reports=n_reports)
        # earliest report with views; 2023H1-only titles keep their hours-only row
        allrows["_has_views"] = allrows["views"].notna()
        kept = (
            allrows.sort_values(["_has_views", "report"], ascending=[False, True], kind="stable")
            .drop_duplicates("title", keep="first")
            .sort_values(["release", "title"], kind="stable", na_position="last")
            .reset_index(drop=True)
        )
        kind = kept["title"].map(kinds)
        guess = np.where(kept["title"].str.contains(_TV_TITLE), "tv", "unknown")
        kind = kind.fillna(pd.Series(guess, index=kept.index))
        avail_from = kept[["release", "window_start"]].max(axis=1).where(kept["release"].notna(), kept["window_start"])
        exposure = ((kept["window_end"] - avail_from).dt.days).clip(lower=0)
        videos = pd.DataFrame(
            {
                "video_id": [("nf_" + hashlib.sha1(t.encode("utf-8")).hexdigest()[:12]) for t in kept["title"]],
                "title": kept["title"],
                "category": kind,
                "tags": kind + np.where(kept["available_globally"] > 0, "|global", ""),
                "published_at": kept["release"],
                "views": kept["views"],
                "hours_viewed": kept["hours_viewed"],
                "duration": kept["runtime_hours"] * 3600.0,
                "runtime_hours": kept["runtime_hours"],
                "available_globally": kept["available_globally"],
                "report": kept["report"],
                "n_reports": kept["n_reports"].astype(float),
                "exposure_days": exposure.astype(float),
                "release_age_days": (kept["window_end"] - kept["release"]).dt.days.astype(float),
                "in_release_window": (kept["release"] >= kept["window_start"]).astype(float),
            }
        )
        notes = [
            f"rows per report: {row_counts}; deduplicated to {len(videos)} titles (earliest report with Views kept)",
            f"{int(videos['views'].isna().sum())} titles appear only in 2023H1, which has hours viewed but no views",
            f"{int(videos['published_at'].isna().sum())} titles have no release date (licensed titles); "
            "temporal splits drop them",
            "no genre or cast in these reports; counts are rounded to 100,000",
        ]
        return VideoDataset(self.name, videos, meta={"notes": notes, "source_rows": row_counts})
