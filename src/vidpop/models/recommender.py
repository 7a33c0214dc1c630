"""What every recommender implements, and the data it is fitted on.

A recommender only implements :meth:`Recommender.fit` and :meth:`Recommender.score` (or overrides
:meth:`Recommender.recommend` for sequential generation). Splitting, candidate masking and metrics
are shared code in :mod:`vidpop.training.rec_protocol`, so every model is evaluated the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vidpop.models.base import VidpopModel


@dataclass
class RecData:
    """Interactions as per-user item-index sequences in time order, plus item side information.

    ``item_ids[j]`` is the vidpop video id of item index ``j``. ``sequences[u]`` are item indices of
    user ``user_ids[u]`` in time order and ``times[u]`` their times (days for timestamps, steps for
    position-only data). ``items`` is the videos table aligned to item indices (titles, tags,
    category ...). ``item_features`` maps a feature name (e.g. "title_minilm", "cover_effnet") to an
    (n_items, d) array; ``item_feature_present`` to a boolean mask of rows that really have it.
    ``user_texts`` is an optional text stream per user (cold start).
    """

    item_ids: np.ndarray
    user_ids: np.ndarray
    sequences: list[np.ndarray]
    times: list[np.ndarray]
    items: pd.DataFrame
    item_features: dict[str, np.ndarray] = field(default_factory=dict)
    item_feature_present: dict[str, np.ndarray] = field(default_factory=dict)
    user_texts: list[str] | None = None
    time_unit: str = "step"  # "day" when real timestamps were used, else "step" (sequence position)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)


@dataclass
class UserQuery:
    """What a recommender sees about one user at prediction time: a history and/or a text."""

    history: np.ndarray  # item indices in time order (may be empty for pure cold start)
    times: np.ndarray | None = None
    text: str | None = None


class Recommender(VidpopModel):
    """Base class: ``fit(RecData)``, ``score(queries) -> (n_queries, n_items)``."""

    task = "recommendation"
    #: True for cold-start models that use ``UserQuery.text`` and ignore the history
    uses_text: bool = False

    def fit(self, X: RecData, y: Any = None, **kwargs: Any) -> Recommender:
        raise NotImplementedError

    def score(self, X: list[UserQuery], y: Any = None) -> np.ndarray:  # type: ignore[override]
        """Relevance score of every item for every query (higher = better)."""
        raise NotImplementedError

    def predict(self, X: list[UserQuery]) -> np.ndarray:
        return self.score(X)

    def recommend(self, queries: list[UserQuery], k: int = 10, exclude_seen: bool = True) -> np.ndarray:
        """Top-k item indices per query (n_queries, k), best first; seen items excluded by default."""
        scores = np.asarray(self.score(queries), dtype="float64").copy()
        if exclude_seen:
            for i, q in enumerate(queries):
                if len(q.history):
                    scores[i, q.history] = -np.inf
        k = min(k, scores.shape[1])
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(scores, top, axis=1).argsort(axis=1)[:, ::-1]
        return np.take_along_axis(top, order, axis=1)
