"""User interest topics: LDA over users' behaviour streams, aggregated with a time decay.

The topic model is fitted on the *training* streams only (one document per training user: the
titles/tags of the videos they watched). A video's topic distribution is the model's inference on
the video's own text; a user's interest at time ``t`` is the decayed average
``sum_i w_i theta_i / sum_i w_i`` with ``w_i = exp(-lambda |t - t_i|)`` over the watched videos
(``t`` in days where timestamps exist, in sequence steps otherwise). A cold-start user's text stream
is inferred directly, with the same vocabulary, so both kinds of users land in the same topic simplex.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.decomposition import LatentDirichletAllocation
from sklearn.feature_extraction.text import CountVectorizer

from vidpop.errors import VidpopError


def decay_weights(times: np.ndarray, t_ref: float, lam: float) -> np.ndarray:
    """``exp(-lam * |t_ref - t_i|)``: the weight of an interaction at ``t_i`` seen from ``t_ref``."""
    return np.exp(-lam * np.abs(float(t_ref) - np.asarray(times, np.float64)))


def decayed_mean(vectors: np.ndarray, times: np.ndarray, lam: float, t_ref: float | None = None) -> np.ndarray:
    """Time-decayed average of row vectors (reference time defaults to the latest interaction)."""
    vectors = np.asarray(vectors, np.float64)
    if not len(vectors):
        raise VidpopError("decayed_mean needs at least one vector")
    t_ref = float(np.max(times)) if t_ref is None else t_ref
    w = decay_weights(times, t_ref, lam)
    return (w[:, None] * vectors).sum(0) / w.sum()


def causal_decay_weights(times: torch.Tensor, lengths: torch.Tensor, lam: float) -> torch.Tensor:
    """Prefix-wise decay weights ``(B, L, L)`` for right-padded ``times (B, L)``.

    Row ``t`` holds ``exp(-lam |t_t - t_i|)`` for ``i <= t`` (normalised to sum 1) and 0 for ``i > t``:
    the interest at step ``t`` is seen from the time of the ``t``-th interaction and reads only the
    interactions up to it, so nothing after step ``t`` can reach the input of step ``t``. Rows at or past
    a sequence's length are zero. One batched product gives every prefix's interest at once.
    """
    steps = torch.arange(times.shape[1], device=times.device)
    valid = steps[None, :] < lengths[:, None]
    causal = torch.ones(len(steps), len(steps), dtype=torch.bool, device=times.device).tril()
    mask = causal[None] & valid[:, None, :] & valid[:, :, None]
    w = torch.exp(-lam * (times[:, :, None] - times[:, None, :]).abs()) * mask
    return w / w.sum(-1, keepdim=True).clamp(min=1e-12)


def prefix_decayed_means(values: torch.Tensor, times: torch.Tensor, lengths: torch.Tensor, lam: float) -> torch.Tensor:
    """Eq. (2) at every step: ``out[b, t]`` is the decayed mean of ``values[b, :t+1]`` seen from
    ``times[b, t]`` (:func:`decayed_mean` of each prefix); zeros past a row's length."""
    return causal_decay_weights(times, lengths, lam) @ values


@dataclass
class TopicConfig:
    n_topics: int = 20
    max_features: int = 5000
    max_iter: int = 10
    max_docs: int = 20000  # training streams used to fit LDA (subsampled beyond this, for speed)
    seed: int = 0


class UserTopicModel:
    """CountVectorizer + scikit-learn LDA; ``transform`` gives rows on the topic simplex."""

    def __init__(self, config: TopicConfig | None = None) -> None:
        self.config = config or TopicConfig()
        self.vectorizer: CountVectorizer | None = None
        self.lda: LatentDirichletAllocation | None = None

    def fit(self, streams: list[str]) -> UserTopicModel:
        """Fit on behaviour streams (one document per training user)."""
        cfg = self.config
        docs = [d for d in streams if d.strip()]
        if len(docs) < 2:
            raise VidpopError("need at least two non-empty training streams to fit the topic model")
        rng = np.random.default_rng(cfg.seed)
        if len(docs) > cfg.max_docs:
            docs = [docs[i] for i in rng.choice(len(docs), cfg.max_docs, replace=False)]
        self.vectorizer = CountVectorizer(
            max_features=cfg.max_features,
            stop_words="english",
            min_df=min(2, len(docs)),
            token_pattern=r"(?u)\b[^\W\d_]{2,}\b",
        )
        counts = self.vectorizer.fit_transform(docs)
        self.lda = LatentDirichletAllocation(
            n_components=cfg.n_topics,
            learning_method="online",
            batch_size=1024,
            max_iter=cfg.max_iter,
            random_state=cfg.seed,
            n_jobs=1,
        ).fit(counts)
        return self

    def transform(self, docs: list[str]) -> np.ndarray:
        """Topic distribution per document; an empty or out-of-vocabulary document gets the uniform one."""
        if self.vectorizer is None or self.lda is None:
            raise VidpopError("the topic model is not fitted")
        counts = self.vectorizer.transform(docs)
        theta = self.lda.transform(counts).astype(np.float32)
        empty = np.asarray(counts.sum(1)).ravel() == 0
        theta[empty] = 1.0 / theta.shape[1]
        return theta

    def top_words(self, n: int = 8) -> list[list[str]]:
        """The ``n`` heaviest words of each topic (to show what the topics mean)."""
        assert self.vectorizer is not None and self.lda is not None
        vocab = self.vectorizer.get_feature_names_out()
        return [[str(vocab[j]) for j in comp.argsort()[::-1][:n]] for comp in self.lda.components_]
