"""Retrieval-augmented popularity features (the idea behind MMRA, SIGIR 2024; issue 13, ask 2).

For each query video, its k nearest TRAINING videos by content embedding (cosine similarity, exact
faiss inner-product search on L2-normalised vectors) become features: the similarity-weighted mean of
their log-popularity, its spread and quantiles, the similarities themselves, and the mean statistics
of the neighbours' authors. The same author's earlier training posts give two more (their mean
log-popularity and how many there are), because on SMP-Video an author's past posts are the closest
thing to a popularity prior.

Leak rules, enforced in :meth:`RetrievalFeaturizer.transform` (and proved by tests):

* a video never retrieves itself (same id), so training rows get leave-one-out features;
* with times (``time_aware``), only training videos published strictly before the query count.

``neighbours`` also returns the (index, similarity) lists, the input of an attention model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vidpop.errors import VidpopError

QUANTILES: tuple[float, ...] = (0.1, 0.5, 0.9)


@dataclass
class RetrievalConfig:
    k: int = 20
    #: temperature of the softmax over similarities that weights the neighbours' popularity
    temperature: float = 0.05
    #: only earlier training videos count (needs times in fit and transform)
    time_aware: bool = True
    #: candidates searched before the leak filters; widened to the whole index where too few survive
    oversample: int = 8


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(np.asarray(x, np.float32))
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class RetrievalFeaturizer:
    """fit(train embeddings, train log-popularity, ids, times, author stats) / transform(queries)."""

    def __init__(self, config: RetrievalConfig | None = None) -> None:
        self.config = config or RetrievalConfig()

    def fit(
        self,
        embedding: np.ndarray,
        y: np.ndarray,
        ids: np.ndarray,
        times: np.ndarray | None = None,
        authors: np.ndarray | None = None,
        author_stats: np.ndarray | None = None,
    ) -> RetrievalFeaturizer:
        import faiss

        emb = _normalise(embedding)
        if len(emb) != len(y) or len(ids) != len(y):
            raise VidpopError("retrieval: embedding, y and ids need one row per training video")
        if self.config.time_aware and times is None:
            raise VidpopError("retrieval: time_aware needs the training videos' times")
        self.index_ = faiss.IndexFlatIP(emb.shape[1])
        self.index_.add(emb)
        self.y_ = np.asarray(y, np.float64)
        self.ids_ = np.asarray(ids).astype(str)
        self.times_ = None if times is None else np.asarray(times, "datetime64[ns]").astype(np.int64)
        self.authors_ = None if authors is None else np.asarray(authors).astype(str)
        self.author_stats_ = None if author_stats is None else np.asarray(author_stats, np.float64)
        return self

    # ------------------------------------------------------------ search
    def _allowed(self, cand: np.ndarray, qid: str, qtime: int | None) -> np.ndarray:
        ok = (cand >= 0) & (self.ids_[np.maximum(cand, 0)] != qid)
        if self.config.time_aware and qtime is not None:
            ok &= self.times_[np.maximum(cand, 0)] < qtime
        return ok

    def neighbours(
        self, embedding: np.ndarray, ids: np.ndarray, times: np.ndarray | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query: (training row indices, cosine similarities) of its ≤ k allowed neighbours, best first."""
        cfg = self.config
        if cfg.time_aware and times is None:
            raise VidpopError("retrieval: time_aware needs the query videos' times")
        q = _normalise(embedding)
        ids = np.asarray(ids).astype(str)
        qt = None if times is None or not cfg.time_aware else np.asarray(times, "datetime64[ns]").astype(np.int64)
        n_index = self.index_.ntotal
        wide = min(n_index, max(cfg.k * cfg.oversample, cfg.k + 1))
        sims, idx = self.index_.search(q, wide)
        out: list[tuple[np.ndarray, np.ndarray]] = []
        for i in range(len(q)):
            t_i = None if qt is None else int(qt[i])
            ok = self._allowed(idx[i], ids[i], t_i)
            if ok.sum() < cfg.k and wide < n_index:  # rare: redo this query against the whole index
                s_all, i_all = self.index_.search(q[i : i + 1], n_index)
                sims_i, idx_i = s_all[0], i_all[0]
                ok = self._allowed(idx_i, ids[i], t_i)
            else:
                sims_i, idx_i = sims[i], idx[i]
            out.append((idx_i[ok][: cfg.k], sims_i[ok][: cfg.k]))
        return out

    # ------------------------------------------------------------ features
    def feature_names(self) -> list[str]:
        names = ["nn_wmean", "nn_mean", "nn_std", *(f"nn_q{int(q * 100)}" for q in QUANTILES)]
        names += ["nn_top1_y", "nn_top1_sim", "nn_mean_sim", "nn_count"]
        if self.author_stats_ is not None:
            names += [f"nn_author_stat{j}" for j in range(self.author_stats_.shape[1])]
        if self.authors_ is not None:
            names += ["author_prior_mean", "author_prior_count"]
        return names

    def transform(
        self,
        embedding: np.ndarray,
        ids: np.ndarray,
        times: np.ndarray | None = None,
        authors: np.ndarray | None = None,
    ) -> np.ndarray:
        """Feature rows (n, len(feature_names())); NaN where a query has no allowed neighbour."""
        self._check()
        nbrs = self.neighbours(embedding, ids, times)
        rows = np.full((len(nbrs), len(self.feature_names())), np.nan)
        for i, (idx, sim) in enumerate(nbrs):
            if not len(idx):
                rows[i, 9] = 0.0
                continue
            y = self.y_[idx]
            w = np.exp((sim - sim.max()) / self.config.temperature)
            w /= w.sum()
            vals = [float(w @ y), y.mean(), y.std(), *np.quantile(y, QUANTILES), y[0], sim[0], sim.mean(), len(idx)]
            rows[i, :10] = vals
            if self.author_stats_ is not None:
                rows[i, 10 : 10 + self.author_stats_.shape[1]] = np.nanmean(self.author_stats_[idx], axis=0)
        if self.authors_ is not None:
            rows[:, -2:] = self._author_prior(ids, times, authors)
        return rows.astype(np.float32)

    def _author_prior(self, ids: np.ndarray, times: np.ndarray | None, authors: np.ndarray | None) -> np.ndarray:
        """Mean log-popularity and count of the same author's allowed training posts (not itself, earlier)."""
        out = np.full((len(ids), 2), np.nan)
        out[:, 1] = 0.0
        if authors is None:
            return out
        ids, authors = np.asarray(ids).astype(str), np.asarray(authors).astype(str)
        qt = (
            None
            if times is None or not self.config.time_aware
            else np.asarray(times, "datetime64[ns]").astype(np.int64)
        )
        by_author: dict[str, np.ndarray] = {}
        for j, a in enumerate(self.authors_):
            by_author.setdefault(a, []).append(j)  # type: ignore[attr-defined]
        for i, a in enumerate(authors):
            rows = np.asarray(by_author.get(a, []), np.int64)
            if not len(rows):
                continue
            ok = self._allowed(rows, ids[i], None if qt is None else int(qt[i]))
            if ok.any():
                out[i] = (self.y_[rows[ok]].mean(), ok.sum())
        return out

    def _check(self) -> None:
        if not hasattr(self, "index_"):
            raise VidpopError("retrieval: call fit on the training part first")
