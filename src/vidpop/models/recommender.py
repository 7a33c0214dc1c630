"""What every recommender implements, and the data it is fitted on.

A recommender only implements :meth:`Recommender.fit` and :meth:`Recommender.full_sort_scores` (or
overrides :meth:`Recommender.recommend` for sequential generation). ``score`` keeps its estimator
meaning (a number: HR@10 of queries against their relevant items, RecBole's "full sort" naming for
the matrix). Splitting, candidate masking and metrics
are shared code in :mod:`vidpop.training.rec_protocol`, so every model is evaluated the same way.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from vidpop.data.recdata import RecData, UserQuery
from vidpop.errors import VidpopError
from vidpop.models.base import VidpopModel

__all__ = ["RecData", "Recommender", "UserQuery"]  # the data types are re-exported for old imports


class Recommender(VidpopModel):
    """Base class: ``fit(RecData)``, ``full_sort_scores(queries) -> (n_queries, n_items)``.

    A fitted recommender remembers the catalogue it was fitted on, and :meth:`save` writes it next to
    the weights as ``items.parquet`` (video id, title, text, cover path per item index) and
    ``users.parquet`` (each known user's watched ids, oldest first): what serving needs to turn ids into
    indices and back. This is the only writer of those files (issue 16 §6).
    """

    task = "recommendation"
    capabilities: ClassVar[frozenset[str]] = frozenset({"recommend"})
    consumes: ClassVar[str] = "queries"
    #: True for cold-start models that use ``UserQuery.text`` and ignore the history
    uses_text: bool = False
    #: True for models whose ``fit`` accepts ``validation=RecValidation`` (early stopping on held-out items)
    uses_validation: bool = False
    required_files = ("state.pt", "items.parquet", "users.parquet")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fit = cls.__dict__.get("fit")
        if fit is None or getattr(fit, "_remembers_catalogue", False):
            return

        @functools.wraps(fit)
        def fit_and_remember(self: Recommender, X: Any, *args: Any, **kw: Any) -> Any:
            out = fit(self, X, *args, **kw)
            if isinstance(X, RecData):
                self.remember_catalogue(X)
            return out

        fit_and_remember._remembers_catalogue = True  # type: ignore[attr-defined]
        cls.fit = fit_and_remember  # type: ignore[method-assign]

    # ------------------------------------------------------------ side tables
    def add_known_users(self, users: Sequence[tuple[str, np.ndarray]]) -> None:
        """Users the model is not fitted on but should know at serving time (user id, item-index history
        in time order), e.g. the input part of a split's test users; saved in ``users.parquet``."""
        self._known_users = [(str(u), np.asarray(h, dtype=np.int64)) for u, h in users]
        if getattr(self, "_fit_data", None) is not None:
            self.remember_catalogue(self._fit_data)

    def remember_catalogue(self, data: RecData) -> None:
        """Build the side tables from the fitted ``data`` plus the users of :meth:`add_known_users`
        (called after every ``fit`` on a :class:`RecData`)."""
        from vidpop.data.sequences import item_texts  # function level: data.sequences imports RecData from here

        items = data.items.reset_index(drop=True)
        n = data.n_items
        titles = items["title"].fillna("").astype(str) if "title" in items else pd.Series([""] * n)
        covers = items["cover_path"] if "cover_path" in items else pd.Series([None] * n)
        ids = np.asarray(data.item_ids, dtype=str)
        self._fit_data = data
        self._items_table = pd.DataFrame(
            {
                "video_id": ids,
                "title": titles.to_numpy(),
                "text": item_texts(items) if len(items) == n else [""] * n,
                "cover_path": [str(c) if isinstance(c, str) and c else None for c in covers],
            }
        )
        rows = [(str(u), ids[s].tolist()) for u, s in zip(data.user_ids, data.sequences, strict=True)]
        rows += [(u, ids[h].tolist()) for u, h in getattr(self, "_known_users", [])]
        self._users_table = pd.DataFrame(rows, columns=["user_id", "history"]).drop_duplicates("user_id")

    def write_files(self, out: Path) -> None:
        items, users = getattr(self, "_items_table", None), getattr(self, "_users_table", None)
        if items is None or users is None:
            raise VidpopError(f"{self.model_name}: no catalogue to save; fit it on a RecData first")
        items.to_parquet(out / "items.parquet", index=False)
        users.to_parquet(out / "users.parquet", index=False)

    def read_files(self, src: Path) -> None:
        try:
            self._items_table = pd.read_parquet(src / "items.parquet")
            self._users_table = pd.read_parquet(src / "users.parquet")
        except Exception as exc:
            raise VidpopError(f"model folder {src} is damaged: {exc} — retrain it") from exc

    def fit(self, X: RecData, y: Any = None, **kwargs: Any) -> Recommender:
        raise NotImplementedError

    def full_sort_scores(self, queries: list[UserQuery]) -> np.ndarray:
        """Relevance score of every item for every query (higher = better), shape (n_queries, n_items)."""
        legacy = type(self).score
        if legacy is not Recommender.score:  # a subclass still implements the old matrix ``score``
            return np.asarray(legacy(self, queries))
        raise NotImplementedError(f"{type(self).__name__} implements neither full_sort_scores nor score")

    def score(self, X: list[UserQuery], y: Any = None) -> Any:  # type: ignore[override]
        """Estimator meaning: mean HR@10 of ``recommend(X)`` against the relevant item indices ``y``
        (one array or set per query). Without ``y``: the old matrix scorer, kept as a deprecated alias
        of :meth:`full_sort_scores` for callers not yet renamed."""
        if y is None:
            warnings.warn("Recommender.score(queries) is full_sort_scores(queries)", DeprecationWarning, stacklevel=2)
            return self.full_sort_scores(X)
        if len(y) != len(X):
            raise ValueError(f"{len(X)} queries but {len(y)} relevance sets")
        top = self.recommend(X, k=10)
        hits = [bool(set(r.tolist()) & set(np.asarray(list(t)).tolist())) for r, t in zip(top, y, strict=True)]
        return float(np.mean(hits)) if hits else 0.0

    def predict(self, X: list[UserQuery]) -> np.ndarray:
        return self.full_sort_scores(X)

    def recommend(self, queries: list[UserQuery], k: int = 10, exclude_seen: bool = True) -> np.ndarray:
        """Top-k item indices per query (n_queries, k), best first; seen items excluded by default."""
        scores = np.asarray(self.full_sort_scores(queries), dtype="float32").copy()
        if exclude_seen:
            for i, q in enumerate(queries):
                if len(q.history):
                    scores[i, q.history] = -np.inf
        return top_k(scores, k)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best scores of each row, best first."""
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(scores, top, axis=1).argsort(axis=1, kind="stable")[:, ::-1]
    return np.take_along_axis(top, order, axis=1)
