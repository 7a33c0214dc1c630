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

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vidpop.errors import VidpopError

QUANTILES: tuple[float, ...] = (0.1, 0.5, 0.9)
#: quantiles of the neighbours' popularity under the similarity softmax (closer neighbours count more)
WEIGHTED_QUANTILES: tuple[float, ...] = (0.25, 0.5, 0.75)


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
    def _allowed(self, idx: np.ndarray, qids: np.ndarray, qtimes: np.ndarray | None) -> np.ndarray:
        """(n, w) mask of the candidates ``idx`` (n, w; -1 = none) each query may use: not itself, earlier."""
        safe = np.maximum(idx, 0)
        ok = (idx >= 0) & (self.ids_[safe] != qids[:, None])
        if qtimes is not None:
            ok &= self.times_[safe] < qtimes[:, None]
        return ok

    def _query_times(self, times: np.ndarray | None) -> np.ndarray | None:
        if not self.config.time_aware:
            return None
        if times is None:
            raise VidpopError("retrieval: time_aware needs the query videos' times")
        return np.asarray(times, "datetime64[ns]").astype(np.int64)

    def neighbour_matrix(
        self, embedding: np.ndarray, ids: np.ndarray, times: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(n, k) training row indices (-1 = none) and cosine similarities (NaN = none) of each query's
        allowed neighbours, best first. One batched faiss search; the queries whose allowed candidates
        fall short of k (early videos on a time split) are searched again, batched, with a doubled width."""
        cfg = self.config
        self._check()
        qt = self._query_times(times)
        q = _normalise(embedding)
        qids = np.asarray(ids).astype(str)
        n, n_index, k = len(q), self.index_.ntotal, cfg.k
        out_idx = np.full((n, k), -1, np.int64)
        out_sim = np.full((n, k), np.nan, np.float32)
        todo = np.arange(n)
        wide = min(n_index, max(k * cfg.oversample, k + 1))
        while len(todo):
            sims, idx = self.index_.search(q[todo], wide)
            ok = self._allowed(idx, qids[todo], None if qt is None else qt[todo])
            short = (ok.sum(axis=1) < k) & (wide < n_index)
            done = ~short
            # stable sort of "not allowed" keeps the allowed candidates first and in faiss order (best first)
            order = np.argsort(~ok[done], axis=1, kind="stable")[:, :k]
            take_ok = np.take_along_axis(ok[done], order, axis=1)
            rows = todo[done]
            out_idx[rows, : order.shape[1]] = np.where(take_ok, np.take_along_axis(idx[done], order, axis=1), -1)
            out_sim[rows, : order.shape[1]] = np.where(take_ok, np.take_along_axis(sims[done], order, axis=1), np.nan)
            todo, wide = todo[short], min(n_index, wide * 2)
        return out_idx, out_sim

    def neighbours(
        self, embedding: np.ndarray, ids: np.ndarray, times: np.ndarray | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query: (training row indices, cosine similarities) of its ≤ k allowed neighbours, best first."""
        idx, sim = self.neighbour_matrix(embedding, ids, times)
        return [(i[i >= 0], s[i >= 0]) for i, s in zip(idx, sim, strict=True)]

    # ------------------------------------------------------------ features
    def feature_names(self) -> list[str]:
        names = ["nn_wmean", "nn_mean", "nn_std", *(f"nn_q{int(q * 100)}" for q in QUANTILES)]
        names += ["nn_top1_y", "nn_top1_sim", "nn_mean_sim", "nn_count"]
        names += [f"nn_wq{int(q * 100)}" for q in WEIGHTED_QUANTILES]
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
        idx, sim = self.neighbour_matrix(embedding, ids, times)
        has = idx >= 0
        cnt = has.sum(axis=1)
        y = np.where(has, self.y_[np.maximum(idx, 0)], np.nan)
        s = sim.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            # softmax over the similarities; the best neighbour is column 0, so s[:, :1] is the row max
            w = np.where(has, np.exp((s - s[:, :1]) / self.config.temperature), 0.0)
            w /= w.sum(axis=1, keepdims=True)
            wmean = np.nansum(w * np.nan_to_num(y), axis=1)
            mean = np.nansum(np.nan_to_num(y), axis=1) / cnt
            std = np.sqrt(np.nansum(np.nan_to_num(y - mean[:, None]) ** 2, axis=1) / cnt)
            cols = [wmean, mean, std, *_row_quantiles(y, cnt, QUANTILES).T]
            cols += [y[:, 0], s[:, 0], np.nansum(np.nan_to_num(s), axis=1) / cnt, cnt.astype(np.float64)]
            cols += list(_weighted_quantiles(y, w, WEIGHTED_QUANTILES).T)
        rows = np.column_stack(cols)
        rows[cnt == 0, :] = np.nan
        rows[:, 9] = cnt
        if self.author_stats_ is not None:
            st = np.where(has[:, :, None], self.author_stats_[np.maximum(idx, 0)], np.nan)
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows stay NaN
                rows = np.column_stack([rows, np.nanmean(st, axis=1)])
        if self.authors_ is not None:
            rows = np.column_stack([rows, self._author_prior(ids, times, authors)])
        return rows.astype(np.float32)

    def _author_prior(self, ids: np.ndarray, times: np.ndarray | None, authors: np.ndarray | None) -> np.ndarray:
        """Mean log-popularity and count of the same author's allowed training posts (not itself, earlier).

        Vectorised: training rows sorted by (author, time) with running sums of y; a query's allowed rows
        are a prefix of its author's block (strictly earlier), minus itself where it is in there."""
        out = np.full((len(ids), 2), np.nan)
        out[:, 1] = 0.0
        if authors is None:
            return out
        qids, qa = np.asarray(ids).astype(str), np.asarray(authors).astype(str)
        qt = self._query_times(times)
        ta = self.authors_
        tt = np.zeros(len(ta), np.int64) if self.times_ is None else self.times_
        # one int64 key per row, (author code, time rank), so each query's allowed rows are one range
        names = np.unique(ta)
        code_t = np.searchsorted(names, ta)
        code_q = np.searchsorted(names, qa).clip(max=len(names) - 1)
        known = names[code_q] == qa
        ranks = np.unique(np.concatenate([tt, tt if qt is None else qt]))
        width = len(ranks) + 1
        key_t = code_t * width + np.searchsorted(ranks, tt)
        order = np.argsort(key_t, kind="stable")
        key_sorted, y_sorted = key_t[order], self.y_[order]
        csum = np.concatenate([[0.0], np.cumsum(y_sorted)])
        lo = np.searchsorted(key_sorted, code_q * width, "left")
        if qt is None:  # every post of the author
            end = np.searchsorted(key_sorted, (code_q + 1) * width, "left")
        else:  # the author's posts strictly before the query
            end = np.searchsorted(key_sorted, code_q * width + np.searchsorted(ranks, qt), "left")
        end = np.where(known, end, lo)
        count = (end - lo).astype(np.float64)
        total = csum[end] - csum[lo]
        # leave itself out: the query's own training rows (same id) inside its allowed prefix
        pos = pd.DataFrame({"id": self.ids_, "pos": np.arange(len(ta))})
        pairs = pd.DataFrame({"id": qids, "q": np.arange(len(qids))}).merge(pos, on="id")
        if len(pairs):
            q, p = pairs["q"].to_numpy(), pairs["pos"].to_numpy()
            mine = ta[p] == qa[q]
            if qt is not None:
                mine &= tt[p] < qt[q]
            np.add.at(count, q[mine], -1.0)
            np.add.at(total, q[mine], -self.y_[p[mine]])
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, 0] = np.where(count > 0, total / count, np.nan)
        out[:, 1] = count
        return out

    def _check(self) -> None:
        if not hasattr(self, "index_"):
            raise VidpopError("retrieval: call fit on the training part first")


def _row_quantiles(y: np.ndarray, cnt: np.ndarray, qs: tuple[float, ...]) -> np.ndarray:
    """Per-row quantiles of the first ``cnt`` non-NaN values (numpy's 'linear' method); NaN if none."""
    v = np.sort(y, axis=1)  # NaN sorts last
    out = np.full((len(y), len(qs)), np.nan)
    ok = cnt > 0
    for j, q in enumerate(qs):
        pos = q * (cnt[ok] - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, cnt[ok] - 1)
        a = np.take_along_axis(v[ok], lo[:, None], 1)[:, 0]
        b = np.take_along_axis(v[ok], hi[:, None], 1)[:, 0]
        out[ok, j] = a + (pos - lo) * (b - a)
    return out


def _weighted_quantiles(y: np.ndarray, w: np.ndarray, qs: tuple[float, ...]) -> np.ndarray:
    """Per-row quantiles of y under weights w (rows sum to 1; NaN y has weight 0): the smallest value
    whose cumulative weight reaches q."""
    order = np.argsort(np.where(np.isnan(y), np.inf, y), axis=1)
    v = np.take_along_axis(y, order, 1)
    cw = np.cumsum(np.take_along_axis(np.nan_to_num(w), order, 1), axis=1)
    out = np.full((len(y), len(qs)), np.nan)
    for j, q in enumerate(qs):
        at = np.minimum((cw < q - 1e-12).sum(axis=1), y.shape[1] - 1)
        out[:, j] = np.take_along_axis(v, at[:, None], 1)[:, 0]
    return out
