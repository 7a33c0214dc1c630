"""Item-KNN: cosine similarity of items' co-occurrence in training histories, top neighbours kept.

``sim(i, j) = |U_i ∩ U_j| / (sqrt(|U_i| |U_j|) + shrink)``, the ``neighbours`` most similar items kept
per item; a user's score for item j is ``sum_i w_i sim(i, j)`` over the items i of the history, with
``w_i = recency ** (age of i in the history)`` (``recency = 1``: classic item-KNN, every item alike;
below 1 the latest items weigh more, as in sequence-aware KNN, Ludewig & Jannach 2018). The three are
tuned on the validation item. Vectorised as one sparse product per batch.
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
    recency: float = 1.0  # history weight decay per step back in time (1 = none)


@register_model("rec_itemknn")
class ItemKNNRecommender(FittedItems):
    """Item-based collaborative filtering (cosine on co-occurrence)."""

    description = "Item-KNN: cosine similarity of item co-occurrence"
    Config = ItemKNNConfig
    capabilities = frozenset({"recommend"})

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

    def full_sort_scores(self, X: list[UserQuery]) -> np.ndarray:
        self._check_fitted()
        Q = query_matrix(X, self.n_items_)
        if self.config.recency != 1.0:
            Q = weighted_history_matrix(X, self.n_items_, self.config.recency)
        return np.asarray((Q @ self.similarity_).todense(), np.float32)


def weighted_history_matrix(queries: list[UserQuery], n_items: int, recency: float) -> sp.csr_matrix:
    """(n_queries, n_items): ``recency ** age`` for each history item (the latest watch of a repeat)."""
    rows, cols, vals = [], [], []
    for r, q in enumerate(queries):
        h = np.asarray(q.history, np.int64)
        age = np.arange(len(h) - 1, -1, -1, dtype=np.float32)
        rows.append(np.full(len(h), r))
        cols.append(h)
        vals.append(recency**age)
    if not rows:
        return sp.csr_matrix((0, n_items), dtype=np.float32)
    m = sp.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(len(queries), n_items)
    )
    return _max_duplicates(m)


def _max_duplicates(m: sp.coo_matrix) -> sp.csr_matrix:
    """CSR keeping the largest value where an (row, col) repeats (a re-watched item counts once)."""
    order = np.lexsort((-m.data, m.col, m.row))
    r, c, v = m.row[order], m.col[order], m.data[order]
    first = np.ones(len(r), bool)
    first[1:] = (r[1:] != r[:-1]) | (c[1:] != c[:-1])
    return sp.csr_matrix((v[first].astype(np.float32), (r[first], c[first])), shape=m.shape)
