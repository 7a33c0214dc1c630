"""Small pieces shared by the baselines: sparse user-item matrices, histories of queries, the
text topic model of the cold-start baselines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import LatentDirichletAllocation
from sklearn.feature_extraction.text import CountVectorizer

from vidpop.errors import VidpopError
from vidpop.models.recommender import RecData, Recommender, UserQuery


def rows_matrix(histories: Sequence[np.ndarray], n_items: int) -> sp.csr_matrix:
    """Binary (n_rows, n_items) matrix with a 1 for every item of each history (repeats count once)."""
    lengths = np.array([len(h) for h in histories], np.int64)
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = np.concatenate([np.asarray(h, np.int64) for h in histories]) if len(histories) else np.zeros(0, np.int64)
    if len(indices) and (indices.min() < 0 or indices.max() >= n_items):
        raise VidpopError(f"history item index out of range [0, {n_items})")
    m = sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), shape=(len(histories), n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def interaction_matrix(data: RecData) -> sp.csr_matrix:
    """Training users x items, binary."""
    return rows_matrix(data.sequences, data.n_items)


def query_matrix(queries: Sequence[UserQuery], n_items: int) -> sp.csr_matrix:
    return rows_matrix([q.history for q in queries], n_items)


def check_data(data: RecData) -> None:
    if not isinstance(data, RecData):
        raise VidpopError(f"recommenders are fitted on RecData, got {type(data).__name__}")
    if data.n_items == 0 or data.n_users == 0:
        raise VidpopError("RecData has no items or no users to fit on")


class FittedItems(Recommender):
    """Base of the baselines: remembers the vocabulary so scores line up with ``item_ids_``."""

    def _remember(self, data: RecData) -> None:
        check_data(data)
        self.item_ids_ = np.asarray(data.item_ids).astype(str)
        self.n_items_ = int(data.n_items)

    def _empty_scores(self, n: int) -> np.ndarray:
        self._check_fitted()
        return np.zeros((n, self.n_items_), np.float32)


@dataclass
class TopicConfig:
    n_topics: int = 20
    max_features: int = 5000
    max_iter: int = 10
    max_docs: int = 20000
    seed: int = 0


class TextTopics:
    """Bag of words + scikit-learn LDA fitted on *training* users' text streams only."""

    def __init__(self, cfg: TopicConfig) -> None:
        self.cfg = cfg

    def fit(self, docs: Sequence[str]) -> TextTopics:
        docs = [d for d in docs if d and d.strip()]
        if len(docs) < 2:
            raise VidpopError("need at least two non-empty training text streams to fit the topic model")
        if len(docs) > self.cfg.max_docs:
            pick = np.random.default_rng(self.cfg.seed).choice(len(docs), self.cfg.max_docs, replace=False)
            docs = [docs[i] for i in pick]
        self.vectorizer = CountVectorizer(
            max_features=self.cfg.max_features, stop_words="english", min_df=2, token_pattern=r"(?u)\b[^\W\d_]{2,}\b"
        )
        counts = self.vectorizer.fit_transform(docs)
        self.lda = LatentDirichletAllocation(
            n_components=self.cfg.n_topics,
            learning_method="online",
            batch_size=2048,
            max_iter=self.cfg.max_iter,
            random_state=self.cfg.seed,
            n_jobs=1,
        ).fit(counts)
        return self

    def transform(self, docs: Sequence[str]) -> np.ndarray:
        """Topic distribution per document; an empty/out-of-vocabulary text gets the uniform one."""
        counts = self.vectorizer.transform([d or "" for d in docs])
        theta = self.lda.transform(counts).astype(np.float32)
        theta[np.asarray(counts.sum(1)).ravel() == 0] = 1.0 / theta.shape[1]
        return theta


def query_texts(queries: Sequence[UserQuery], model: str) -> list[str]:
    """The text of each query; a cold-start model without any text cannot say anything."""
    texts = [q.text or "" for q in queries]
    if not any(t.strip() for t in texts):
        raise VidpopError(f"{model} is a text (cold-start) model: give the user's text, not only video ids")
    return texts
