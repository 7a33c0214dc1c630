"""Random and Popularity: the floor every recommender must beat."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from vidpop.models.config import ModelConfig
from vidpop.models.rec_baselines.common import FittedItems, interaction_matrix
from vidpop.models.recommender import RecData, UserQuery
from vidpop.models.registry import register_model


@dataclass
class RandomConfig(ModelConfig):
    seed: int = 0


@register_model("rec_random")
class RandomRecommender(FittedItems):
    """Uniform random scores, reproducible per query (seed + hash of the query), so a saved and
    reloaded model gives the same ranking for the same user."""

    description = "Random ranking (floor of every table)"
    Config = RandomConfig
    capabilities = frozenset({"recommend"})
    uses_text = False

    def fit(self, X: RecData, y: Any = None, **kwargs: Any) -> RandomRecommender:
        self._remember(X)
        return self

    def full_sort_scores(self, X: list[UserQuery]) -> np.ndarray:
        out = self._empty_scores(len(X))
        for i, q in enumerate(X):
            key = zlib.crc32(np.asarray(q.history, np.int64).tobytes() + (q.text or "").encode("utf-8"))
            out[i] = np.random.default_rng([self.config.seed, key]).random(self.n_items_, dtype=np.float32)
        return out


@dataclass
class PopConfig(ModelConfig):
    pass


@register_model("rec_pop")
class PopularityRecommender(FittedItems):
    """Items ranked by how many *training* users watched them (the same list for everyone)."""

    description = "Most watched items in the training view"
    Config = PopConfig
    capabilities = frozenset({"recommend"})

    def fit(self, X: RecData, y: Any = None, **kwargs: Any) -> PopularityRecommender:
        self._remember(X)
        self.counts_ = np.asarray(interaction_matrix(X).sum(0)).ravel().astype(np.float32)
        return self

    def full_sort_scores(self, X: list[UserQuery]) -> np.ndarray:
        out = self._empty_scores(len(X))
        out[:] = self.counts_
        return out
