"""A recommender as the server holds it: its item table, its users' histories and its retrieval index are
read once, when the model loads, and every request only does the model's own arithmetic.

Why: reading ``items.parquet`` (and ``users.parquet`` for a user id) per call cost 1.95 s per warm
request, and a global lock around that made 50 concurrent clients wait 52 s (issue 17). Everything here
is read-only after construction, so requests run in parallel threads without a lock.

Retrieval: a model whose scores are inner products ``q · e_j`` (user vector x item vector) is served from
a faiss :class:`~vidpop.serve.retrieval.ItemIndex` (exact below :data:`HNSW_FROM_ITEMS` items, HNSW above);
the vectors are checked against the model's own ``score`` once at load, and a model whose vectors do not
reproduce its scores (or that has none) is served by ``score`` / ``recommend`` over the whole catalogue.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from vidpop.errors import UnknownItemError, VidpopError
from vidpop.models.recommender import Recommender, UserQuery

#: catalogues at least this large get an approximate (HNSW) index; smaller ones an exact faiss scan
HNSW_FROM_ITEMS = 50_000
QueryFn = Callable[[list[UserQuery]], np.ndarray]
if TYPE_CHECKING:
    from vidpop.serve.retrieval import ItemIndex


def _read_table(path: Path, what: str) -> pd.DataFrame:
    if not path.is_file():
        raise VidpopError(f"model folder {path.parent} is incomplete: missing {path.name} — retrain it")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise VidpopError(f"{what} of {path.parent.name} cannot be read ({type(exc).__name__}) — retrain it") from exc


def vector_space(model: Any) -> tuple[QueryFn, np.ndarray] | None:
    """(query -> user vectors, item vectors) when the model scores by an inner product, else None.

    A model may expose ``query_vectors(queries)`` and ``item_vectors()`` itself; the ALS factor model
    (``fold_in`` + ``item_factors_``) and SASRec (last hidden state x item embeddings) are known here.
    """
    if hasattr(model, "query_vectors") and hasattr(model, "item_vectors"):
        return model.query_vectors, np.asarray(model.item_vectors(), np.float32)
    if hasattr(model, "fold_in") and hasattr(model, "item_factors_"):
        return (lambda qs: np.asarray(model.fold_in(qs), np.float32)), np.asarray(model.item_factors_, np.float32)
    module = getattr(model, "module_", None)
    if getattr(model, "model_name", "") == "rec_sasrec" and hasattr(module, "encode"):
        import torch

        from vidpop.models.rec_baselines.torch_common import query_windows

        def queries_to_vectors(qs: list[UserQuery]) -> np.ndarray:
            with torch.no_grad():
                seq = torch.from_numpy(query_windows(qs, model.config.max_len))
                return module.encode(seq)[:, -1].numpy().astype(np.float32)

        return queries_to_vectors, module.items.weight[1:].detach().numpy().astype(np.float32)
    return None


class ServedRecommender:
    """One recommender with its tables and index in memory; :meth:`recommend` is safe to call from threads."""

    def __init__(self, name: str, path: Path, model: Any) -> None:
        self.name, self.path, self.model = name, path, model
        items = _read_table(path / "items.parquet", "the item table")
        self.video_ids = items["video_id"].astype(str).to_numpy()
        self.index = pd.Index(self.video_ids)
        #: id -> item index: a dict lookup per id is ~50x cheaper than pandas' get_indexer on a short list
        self.codes = {v: j for j, v in enumerate(self.video_ids.tolist())}
        self.titles = items["title"].fillna("").astype(str).to_numpy() if "title" in items else None
        self.texts = items["text"].fillna("").astype(str).to_numpy() if "text" in items else None
        covers = items["cover_path"] if "cover_path" in items else pd.Series([None] * len(items))
        self.covers = {v: c for v, c in zip(self.video_ids, covers, strict=True) if isinstance(c, str) and c}
        self.users = self._read_users(path / "users.parquet")
        self.vectors: tuple[QueryFn, ItemIndex] | None = None
        self._build_index()

    # ------------------------------------------------------------------ load
    def _read_users(self, path: Path) -> dict[str, np.ndarray]:
        """user id -> item indices of the watch history, oldest first (ids the items lack dropped)."""
        if not path.is_file():
            return {}
        users = _read_table(path, "the user histories")
        lengths = users["history"].map(len).to_numpy()
        flat = np.concatenate([np.asarray(h, dtype=str) for h in users["history"]]) if len(users) else np.zeros(0, str)
        codes = self.index.get_indexer(flat).astype(np.int64)  # one lookup for all users, then split
        parts = np.split(codes, np.cumsum(lengths)[:-1]) if len(users) else []
        return {str(u): c[c >= 0] for u, c in zip(users["user_id"], parts, strict=True)}

    def _build_index(self) -> None:
        """A faiss index over the item vectors, kept only when it reproduces the model's own scores."""
        try:
            space = vector_space(self.model)
        except Exception:  # a model version this adapter does not know: served by score()
            return
        if space is None:
            return
        query_fn, items = space
        if items.ndim != 2 or len(items) != len(self.video_ids):
            return
        n = min(3, len(items))
        probe = [UserQuery(history=np.arange(n, dtype=np.int64), times=np.arange(n, dtype="float64"))]
        try:
            want = np.asarray(self.model.full_sort_scores(probe), np.float64)[0]
            got = query_fn(probe)[0].astype(np.float64) @ items.T.astype(np.float64)
        except Exception:
            return
        if not np.allclose(want, got, rtol=1e-3, atol=1e-4 * max(1.0, float(np.abs(want).max()))):
            return
        from vidpop.serve.retrieval import IndexConfig, ItemIndex  # faiss only for models that use it

        kind = "hnsw" if len(items) >= HNSW_FROM_ITEMS else "exact"
        self.vectors = (query_fn, ItemIndex(IndexConfig(kind=kind)).build(items))

    def warm(self) -> None:
        """One query at load, so the first request does not pay for lazy initialisation in the model."""
        # a model that cannot answer this probe answers real queries (or says why) later
        with contextlib.suppress(VidpopError):
            self.top(UserQuery(history=np.zeros(1, np.int64), times=np.zeros(1), text="warm up"), k=1)

    # ------------------------------------------------------------------ serve
    def history_of(self, user: str) -> np.ndarray:
        hist = self.users.get(str(user))
        if hist is None:
            raise UnknownItemError(f"unknown user '{user[:80]}' (the model knows {len(self.users)} users)")
        return hist

    def top(self, query: UserQuery, k: int, exclude: np.ndarray | None = None) -> tuple[list[int], list[float]]:
        """Top-k item indices (best first) and their scores; the query's history and ``exclude`` (what the
        user watched, also for text models that do not read the history) are never recommended."""
        seen = np.unique(np.concatenate([np.asarray(query.history, np.int64), np.asarray(
            exclude if exclude is not None else [], np.int64)]))  # fmt: skip
        if self.vectors is not None:
            query_fn, index = self.vectors
            scores, idx = index.search(query_fn([query]), k, exclude=[seen])
            keep = idx[0] >= 0
            return idx[0][keep].tolist(), scores[0][keep].astype(float).tolist()
        scores = np.asarray(self.model.full_sort_scores([query]), dtype="float64")[0]
        if type(self.model).recommend is not Recommender.recommend:
            # the model's own top-k (greedy generation for the interest RNN)
            banned = set(seen.tolist())
            picks = self.model.recommend([query], k=k + len(banned), exclude_seen=True)[0]
            top = [int(j) for j in picks if int(j) not in banned][:k]
            return top, [float(scores[j]) for j in top]
        # the base ranking (top-k of the scores), from the scores already computed: one scoring per request
        ranked = scores.copy()
        ranked[seen] = -np.inf
        k = min(k, int(np.isfinite(ranked).sum()))
        if k <= 0:
            return [], []
        part = np.argpartition(-ranked, k - 1)[:k]
        order = part[np.argsort(-ranked[part], kind="stable")]
        return order.tolist(), ranked[order].tolist()
