"""Item-KNN: cosine similarity of items' co-occurrence in training histories, top neighbours kept.

``sim(i, j) = |U_i ∩ U_j| / (sqrt(|U_i| |U_j|) + shrink)``; a user's score for item j is the sum of
``sim(i, j)`` over the items i of the history. Vectorised as one sparse product per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from vidpop.models.config import ModelConfig
from vidpop.models.rec_baselines.common import FittedItems, interaction_matrix, query_matrix
from vidpop.models.recommender import RecData, UserQuery
from vidpop.models.registry import register_model


def top_k_rows(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of each row of a sparse matrix."""
    m = m.tocsr()
    indptr, indices, data = [0], [], []
    for r in range(m.shape[0]):
        lo, hi = m.indptr[r], m.indptr[r + 1]
        vals, cols = m.data[lo:hi], m.indices[lo:hi]
        if hi - lo > k:
            keep = np.argpartition(-vals, k - 1)[:k]
            vals, cols = vals[keep], cols[keep]
        indices.append(cols)
        data.append(vals)
        indptr.append(indptr[-1] + len(cols))
    return sp.csr_matrix(
        (np.concatenate(data) if data else [], np.concatenate(indices) if indices else [], indptr), shape=m.shape
    )


@dataclass
class ItemKNNConfig(ModelConfig):
    neighbours: int = 100
    shrink: float = 10.0


@register_model("rec_itemknn")
class ItemKNNRecommender(FittedItems):
    """Item-based collaborative filtering (cosine on co-occurrence)."""

    description = "Item-KNN: cosine similarity of item co-occurrence"
    Config = ItemKNNConfig

    def fit(self, X: RecData, y: Any = None, **kwargs: Any) -> ItemKNNRecommender:
        self._remember(X)
        R = interaction_matrix(X).astype(np.float32)
        co = (R.T @ R).tocsr()
        co.setdiag(0)
        co.eliminate_zeros()
        n = np.asarray(R.sum(0)).ravel()
        co = co.tocoo()
        sim = co.data / (np.sqrt(n[co.row] * n[co.col]) + self.config.shrink)
        S = sp.csr_matrix((sim.astype(np.float32), (co.row, co.col)), shape=co.shape)
        self.similarity_ = top_k_rows(S, self.config.neighbours)
        return self

    def score(self, X: list[UserQuery], y: Any = None) -> np.ndarray:
        self._check_fitted()
        return np.asarray((query_matrix(X, self.n_items_) @ self.similarity_).todense(), np.float32)
