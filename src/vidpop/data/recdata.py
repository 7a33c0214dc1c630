"""The data every recommender is fitted on and queried with: per-user item-index sequences in time order
(:class:`RecData`) and what a recommender sees about one user at prediction time (:class:`UserQuery`).
They live in ``data/`` so that splitting and sequence code below the models can build them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


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
