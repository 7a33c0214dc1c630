"""Popularity labels: log targets, a weighted engagement score cut into ordinal classes, and a
median popular/unpopular split. Every fitted statistic comes from the training part only.

Two class recipes for the engagement score: quantile classes (equal-sized on train; vidpop's default,
since fixed thresholds belong to the data they were set on) and the cover + title paper's own recipe
(:func:`paper_scorer`): each raw count normalised as (x − μ) / (max − min), weighted, and cut at the
paper's fixed thresholds 0.00025 / 0.0015 / 0.005 / 0.02, so its class proportions follow the data."""

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
#: The same paper's fixed class thresholds on its score (Sec. 2.1.3): 5 classes.
PAPER_CUT_POINTS: tuple[float, ...] = (0.00025, 0.0015, 0.005, 0.02)
#: ``EngagementScorer.normalisation`` values: log1p then min-max to [0, 1] (vidpop), or the paper's
#: (x − μ) / (max − min) on the raw counts (can be negative; not clipped)
NORMALISATIONS = ("log_minmax", "mean_range")
LABEL_RECIPES = ("quantile", "paper")
#: names of the 5 ordinal popularity classes, lowest first (what an answer shows beside "class k of 5")
CLASS_NAMES: tuple[str, ...] = ("very low", "low", "medium", "high", "very high")


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
    tells which). Normalisation (``normalisation``) and class cut points are fitted on the
    training rows. ``cut_points=None`` gives quantile classes (equal-sized on train).
    """

    weights: dict[str, float] = field(default_factory=lambda: dict(PAPER_ENGAGEMENT_WEIGHTS))
    n_classes: int = 5
    cut_points: list[float] | None = None
    normalisation: str = "log_minmax"

    def fit(self, videos: pd.DataFrame) -> EngagementScorer:
        if self.normalisation not in NORMALISATIONS:
            raise VidpopError(f"normalisation must be one of {NORMALISATIONS}, got {self.normalisation!r}")
        avail = {c: w for c, w in self.weights.items() if w > 0 and c in videos and videos[c].notna().any()}
        if not avail:
            raise VidpopError(f"none of the weighted counts {list(self.weights)} is in the data")
        total = sum(avail.values())
        self.used_weights_ = {c: w / total for c, w in avail.items()}
        x = self._counts(videos, list(avail))
        self.min_ = np.nanmin(x, axis=0)
        self.max_ = np.nanmax(x, axis=0)
        self.mean_ = np.nanmean(x, axis=0)
        score = self.score(videos)
        if self.cut_points is not None:
            if len(self.cut_points) != self.n_classes - 1:
                raise VidpopError(f"need {self.n_classes - 1} cut points for {self.n_classes} classes")
            self.cuts_ = np.asarray(sorted(self.cut_points), dtype="float64")
        else:
            qs = np.linspace(0, 1, self.n_classes + 1)[1:-1]
            self.cuts_ = np.nanquantile(score, qs)
        return self

    def _counts(self, videos: pd.DataFrame, cols: list[str]) -> np.ndarray:
        x = videos[cols].to_numpy(dtype="float64")
        return x if self.normalisation == "mean_range" else np.log1p(x)

    def score(self, videos: pd.DataFrame) -> np.ndarray:
        """Weighted, normalised score: in [0, 1] for ``log_minmax`` (values outside the train range are
        clipped); centred on the train mean for the paper's ``mean_range``."""
        cols = list(self.used_weights_)
        x = self._counts(videos, cols)
        span = np.where(self.max_ > self.min_, self.max_ - self.min_, 1.0)
        if self.normalisation == "mean_range":
            norm = (x - getattr(self, "mean_", self.min_)) / span
        else:
            norm = np.clip((x - self.min_) / span, 0.0, 1.0)
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


def paper_scorer(weights: dict[str, float] | None = None) -> EngagementScorer:
    """The cover + title paper's label recipe: (x − μ) / (max − min) per raw count, its weights, its
    fixed thresholds (:data:`PAPER_CUT_POINTS`)."""
    return EngagementScorer(
        weights=dict(weights or PAPER_ENGAGEMENT_WEIGHTS),
        n_classes=len(PAPER_CUT_POINTS) + 1,
        cut_points=list(PAPER_CUT_POINTS),
        normalisation="mean_range",
    )


def label_scorer(recipe: str, weights: dict[str, float] | None = None, n_classes: int = 5) -> EngagementScorer:
    """``quantile`` (equal-sized classes on train) or ``paper`` (:func:`paper_scorer`)."""
    if recipe == "paper":
        if n_classes != len(PAPER_CUT_POINTS) + 1:
            raise VidpopError(f"the paper's label recipe has {len(PAPER_CUT_POINTS) + 1} classes, not {n_classes}")
        return paper_scorer(weights)
    if recipe == "quantile":
        return EngagementScorer(weights=dict(weights or PAPER_ENGAGEMENT_WEIGHTS), n_classes=n_classes)
    raise VidpopError(f"label recipe must be one of {LABEL_RECIPES}, got {recipe!r}")


def class_proportions(classes: np.ndarray, n_classes: int) -> list[float]:
    """Share of each class among the labelled rows (class -1 = unlabelled is left out)."""
    c = np.asarray(classes)
    c = c[c >= 0]
    counts = np.bincount(c, minlength=n_classes)[:n_classes]
    return (counts / max(len(c), 1)).round(4).tolist()


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
