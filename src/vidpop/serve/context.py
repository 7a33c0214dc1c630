"""What the training videos of a count model looked like, so that an answer can be put in context.

Read once per model at load, from the recipe the model was trained with (the same data, sample and split as
``vidpop train``): the training part's target values (for the percentile of a prediction), the quantiles of
each count's ratio to the first one (so likes and comments stay consistent with views), and the authors'
follower counts when the data has them (the typical range for authors of a similar size). Only labels and
follower counts are read; no feature is computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: ratios of a count to the first one are kept inside these quantiles of the training videos' ratios
RATIO_QUANTILES = (0.01, 0.99)
#: authors within this factor of the given follower count count as "similar"
SIMILAR_FACTOR = 2.0
#: with fewer similar authors' videos than this, the nearest ones by follower count are taken instead
MIN_SIMILAR = 30


@dataclass
class TrainingContext:
    """Training-part labels of one count model (log(1 + count) scale), with its followers where known."""

    data: str
    #: (n_train, n_targets) labels, NaN where a video lacks one
    y: np.ndarray
    target_names: list[str]
    #: log10(1 + followers) per training video, None when the data has no follower counts
    log_followers: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def n_train(self) -> int:
        return len(self.y)

    def _col(self, j: int) -> np.ndarray:
        col = self.y[:, j]
        return np.sort(col[np.isfinite(col)])

    def percentile(self, value: float, j: int = 0) -> float | None:
        """Share of the training videos (0-100) whose target ``j`` is below ``value``."""
        col = self._col(j)
        return float(100.0 * np.searchsorted(col, value) / len(col)) if len(col) else None

    def median(self, j: int = 0) -> float | None:
        col = self._col(j)
        return float(np.median(col)) if len(col) else None

    def ratio_bounds(self, j: int) -> tuple[float, float] | None:
        """(low, high) quantiles of log1p(target j) - log1p(target 0) over training videos with both."""
        both = np.isfinite(self.y[:, 0]) & np.isfinite(self.y[:, j])
        if both.sum() < 20:
            return None
        d = self.y[both, j] - self.y[both, 0]
        lo, hi = np.quantile(d, RATIO_QUANTILES)
        return float(lo), float(hi)

    def similar_authors(self, followers: float, j: int = 0) -> dict[str, Any] | None:
        """Quartiles of target ``j`` among training videos by authors with a similar follower count."""
        if self.log_followers is None:
            return None
        ok = np.isfinite(self.log_followers) & np.isfinite(self.y[:, j])
        if ok.sum() < MIN_SIMILAR:
            return None
        lf, yj = self.log_followers[ok], self.y[ok, j]
        target = np.log10(1.0 + followers)
        near = np.abs(lf - target) <= np.log10(SIMILAR_FACTOR)
        how = f"authors with {1 / SIMILAR_FACTOR:g}x to {SIMILAR_FACTOR:g}x the followers"
        if near.sum() < MIN_SIMILAR:
            near = np.zeros(len(lf), bool)
            near[np.argsort(np.abs(lf - target))[:MIN_SIMILAR]] = True
            how = "the authors with the nearest follower counts"
        q1, q3 = np.quantile(yj[near], [0.25, 0.75])
        return {"lower": float(q1), "upper": float(q3), "n_videos": int(near.sum()), "who": how}


def _followers(ds: Any) -> np.ndarray | None:
    videos, authors = ds.videos, getattr(ds, "authors", None)
    if "followers" in videos:
        f = videos["followers"]
    elif authors is not None and "followers" in authors and "author_id" in videos:
        f = videos["author_id"].map(authors.set_index("author_id")["followers"])
    else:
        return None
    f = np.asarray(f, dtype="float64")
    return np.log10(1.0 + np.clip(f, 0, None)) if np.isfinite(f).any() else None


def load_context(recipe: dict[str, Any]) -> TrainingContext | None:
    """The training part of the recipe's data (labels and followers only); None when it cannot be read
    (the data is not on this machine, or several collections were stacked)."""
    from vidpop.data.splits import split_videos
    from vidpop.models.poe_inputs import poe_targets
    from vidpop.recipes.common import load_data
    from vidpop.recipes.poe import labelled

    data = str(recipe.get("data") or "")
    if not data or "," in data:
        return None
    try:
        ds = labelled(load_data(data, recipe.get("limit"), int(recipe.get("seed", 0))))
        y, names, _ = poe_targets(ds)
        sp = split_videos(ds.videos, str(recipe.get("split_kind") or "random"), int(recipe.get("seed", 0)))
    except Exception:  # data missing or changed since training: the answer says it has no context
        return None
    y = np.asarray(y, np.float64).reshape(len(y), -1)
    lf = _followers(ds)
    return TrainingContext(data, y[sp.train], list(names), None if lf is None else lf[sp.train])
