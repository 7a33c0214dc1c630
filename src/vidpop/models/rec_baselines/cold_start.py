"""Cold-start baselines: the user is known only by words (``UserQuery.text``), never by video ids.

* **MKNN** — user-KNN on text topics: LDA fitted on the training users' text streams; a new user's
  topic vector finds the most similar training users, whose watched videos are voted for.
* **CB** — content-based: TF-IDF similarity between each video's text and the user's text.
* **SCA** — a learned linear transfer (ridge regression) from the text-topic space to the latent
  space of an implicit MF model (LFM) fitted on the training users; the predicted latent vector
  scores the videos like a known user's would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import Ridge

from vidpop.data.sequences import item_texts
from vidpop.errors import VidpopError
from vidpop.models.config import ModelConfig
from vidpop.models.rec_baselines.common import FittedItems, TextTopics, TopicConfig, interaction_matrix, query_texts
from vidpop.models.rec_baselines.lfm import LFMConfig, LFMRecommender
from vidpop.models.recommender import RecData, UserQuery
from vidpop.models.registry import register_model


def _training_texts(data: RecData, model: str) -> list[str]:
    if data.user_texts is None or len(data.user_texts) != data.n_users:
        raise VidpopError(f"{model} needs RecData.user_texts (one text stream per training user)")
    return list(data.user_texts)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@dataclass
class MKNNConfig(ModelConfig):
    topics: TopicConfig = field(default_factory=TopicConfig)
    neighbours: int = 50


@register_model("rec_mknn")
class MKNNRecommender(FittedItems):
    """User-KNN on LDA topic vectors of text streams (cold start)."""

    description = "MKNN: user-KNN on text-topic similarity (cold start)"
    Config = MKNNConfig
    capabilities = frozenset({"recommend", "from_text"})  # reads UserQuery.text
    uses_text = True

    def fit(self, X: RecData, y: Any = None, **kwargs: Any) -> MKNNRecommender:
        self._remember(X)
        texts = _training_texts(X, "MKNN")
        self.topics_ = TextTopics(self.config.topics).fit(texts)
        self.user_topics_ = _unit_rows(self.topics_.transform(texts))
        self.watched_ = interaction_matrix(X)
        return self

    def full_sort_scores(self, X: list[UserQuery]) -> np.ndarray:
        self._check_fitted()
        q = _unit_rows(self.topics_.transform(query_texts(X, "MKNN")))
        sims = q @ self.user_topics_.T  # (n_q, n_train_users)
        k = min(self.config.neighbours, sims.shape[1])
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        w = np.take_along_axis(sims, top, axis=1)
        rows = np.repeat(np.arange(len(X)), k)
        votes = sp.csr_matrix((w.ravel(), (rows, top.ravel())), shape=sims.shape)
        return np.asarray((votes @ self.watched_).todense(), np.float32)


@dataclass
class CBConfig(ModelConfig):
    max_features: int = 50000
    min_df: int = 1


@register_model("rec_cb")
class CBRecommender(FittedItems):
    """Content-based: cosine of TF-IDF vectors of the video texts and the user's text (cold start).

    The TF-IDF vocabulary is fitted on the texts of the candidate videos (the catalogue), not on users.
    """

    description = "CB: TF-IDF similarity between video text and user text (cold start)"
    Config = CBConfig
    capabilities = frozenset({"recommend", "from_text"})  # reads UserQuery.text
    uses_text = True

    def fit(self, X: RecData, y: Any = None, **kwargs: Any) -> CBRecommender:
        self._remember(X)
        self.vectorizer_ = TfidfVectorizer(
            max_features=self.config.max_features, min_df=self.config.min_df, sublinear_tf=True, stop_words="english"
        )
        self.item_matrix_ = self.vectorizer_.fit_transform(item_texts(X.items)).T.tocsr()  # (vocab, n_items)
        return self

    def full_sort_scores(self, X: list[UserQuery]) -> np.ndarray:
        self._check_fitted()
        q = self.vectorizer_.transform(query_texts(X, "CB"))
        return np.asarray((q @ self.item_matrix_).todense(), np.float32)


@dataclass
class SCAConfig(ModelConfig):
    topics: TopicConfig = field(default_factory=TopicConfig)
    lfm: LFMConfig = field(default_factory=LFMConfig)
    ridge_alpha: float = 1.0


@register_model("rec_sca")
class SCARecommender(FittedItems):
    """Linear transfer from text topics to LFM user factors (cold start)."""

    description = "SCA: ridge transfer from text topics to MF user factors (cold start)"
    Config = SCAConfig
    capabilities = frozenset({"recommend", "from_text"})  # reads UserQuery.text
    uses_text = True

    def fit(self, X: RecData, y: Any = None, **kwargs: Any) -> SCARecommender:
        self._remember(X)
        texts = _training_texts(X, "SCA")
        lfm = LFMRecommender(self.config.lfm).fit(X)
        self.item_factors_ = lfm.item_factors_
        self.topics_ = TextTopics(self.config.topics).fit(texts)
        theta = self.topics_.transform(texts)
        self.transfer_ = Ridge(alpha=self.config.ridge_alpha).fit(theta, lfm.user_factors_)
        return self

    def full_sort_scores(self, X: list[UserQuery]) -> np.ndarray:
        self._check_fitted()
        theta = self.topics_.transform(query_texts(X, "SCA"))
        return (self.transfer_.predict(theta) @ self.item_factors_.T).astype(np.float32)
