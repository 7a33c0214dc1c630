"""Popularity labels: log targets, a weighted engagement score cut into ordinal classes, and a
median popular/unpopular split. Every threshold is fitted on the training part only."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vidpop.errors import VidpopError

#: The cover + title paper's weights (views 0.75, likes 0.1, coins 0.1, favourites 0.05, shares 0).
PAPER_ENGAGEMENT_WEIGHTS: dict[str, float] = {
    "views": 0.75,
    "likes": 0.10,
    "coins": 0.10,
    "favorites": 0.05,
    "shares": 0.0,
}


def log_targets(videos: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """log(1 + x) of the given count columns, shape (n, len(columns)); NaN stays NaN."""
    missing = [c for c in columns if c not in videos]
    if missing:
        raise VidpopError(f"target column(s) {missing} not in the data")
    x = videos[columns].to_numpy(dtype="float64")
    if np.nanmin(x, initial=0.0) < 0:
        raise VidpopError("counts must be non-negative for log(1+x) targets")
    return np.log1p(x)


@dataclass
class EngagementScorer:
    """Weighted sum of per-count normalised log engagement, cut into ordinal classes.

    ``weights`` are renormalised over the counts the data actually has (``used_weights_``
    tells which). Normalisation ("minmax" on log1p counts) and class cut points are fitted on
    the training rows. ``cut_points=None`` gives quantile classes (equal-sized on train), since a
    paper's fixed thresholds belong to its own data.
    """

    weights: dict[str, float] = field(default_factory=lambda: dict(PAPER_ENGAGEMENT_WEIGHTS))
    n_classes: int = 5
    cut_points: list[float] | None = None

    def fit(self, videos: pd.DataFrame) -> EngagementScorer:
        avail = {c: w for c, w in self.weights.items() if w > 0 and c in videos and videos[c].notna().any()}
        if not avail:
            raise VidpopError(f"none of the weighted counts {list(self.weights)} is in the data")
        total = sum(avail.values())
        self.used_weights_ = {c: w / total for c, w in avail.items()}
        logs = np.log1p(videos[list(avail)].to_numpy(dtype="float64"))
        self.min_ = np.nanmin(logs, axis=0)
        self.max_ = np.nanmax(logs, axis=0)
        score = self.score(videos)
        if self.cut_points is not None:
            if len(self.cut_points) != self.n_classes - 1:
                raise VidpopError(f"need {self.n_classes - 1} cut points for {self.n_classes} classes")
            self.cuts_ = np.asarray(sorted(self.cut_points), dtype="float64")
        else:
            qs = np.linspace(0, 1, self.n_classes + 1)[1:-1]
            self.cuts_ = np.nanquantile(score, qs)
        return self

    def score(self, videos: pd.DataFrame) -> np.ndarray:
        """Weighted, normalised score in [0, 1] (values outside the train range are clipped)."""
        cols = list(self.used_weights_)
        logs = np.log1p(videos[cols].to_numpy(dtype="float64"))
        span = np.where(self.max_ > self.min_, self.max_ - self.min_, 1.0)
        norm = np.clip((logs - self.min_) / span, 0.0, 1.0)
        w = np.array([self.used_weights_[c] for c in cols])
        # Renormalise per row over the counts that row has (a missing count does not pull to 0).
        present = ~np.isnan(norm)
        wsum = (present * w).sum(axis=1)
        return np.where(wsum > 0, np.nansum(norm * w, axis=1) / np.where(wsum > 0, wsum, 1), np.nan)

    def transform(self, videos: pd.DataFrame) -> np.ndarray:
        """Ordinal class 0..n_classes-1 per row (higher = more popular); -1 for a row with no count.

        (``searchsorted`` would put a NaN score in the top class, i.e. label an unmeasured video as
        the most popular one; -1 makes such rows explicit so callers drop them.)
        """
        score = self.score(videos)
        cls = np.searchsorted(self.cuts_, score, side="right").astype(np.int64)
        cls[np.isnan(score)] = -1
        return cls

    def fit_transform(self, videos: pd.DataFrame) -> np.ndarray:
        return self.fit(videos).transform(videos)


@dataclass
class MedianSplitLabeler:
    """Popular (1) vs unpopular (0) around the training median of ``value`` (optionally ÷ followers)."""

    value: str = "views"
    normalise_by: str | None = None

    def normalised(self, videos: pd.DataFrame) -> np.ndarray:
        v = videos[self.value].to_numpy(dtype="float64")
        if self.normalise_by:
            d = videos[self.normalise_by].to_numpy(dtype="float64")
            v = v / np.maximum(d, 1.0)
        return v

    def fit(self, videos: pd.DataFrame) -> MedianSplitLabeler:
        self.threshold_ = float(np.nanmedian(self.normalised(videos)))
        return self

    def transform(self, videos: pd.DataFrame) -> np.ndarray:
        """1 above the training median, 0 at or below it, -1 where the value is missing."""
        v = self.normalised(videos)
        return np.where(np.isnan(v), -1, v > self.threshold_).astype(np.int64)

    def fit_transform(self, videos: pd.DataFrame) -> np.ndarray:
        return self.fit(videos).transform(videos)
