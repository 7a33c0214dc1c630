"""Top-k retrieval over item embeddings with faiss (HNSW or IVF), exact search as the reference.

A recommender that scores items by an inner product ``q · e_j`` (user state × item embedding)
serves users from an :class:`ItemIndex` instead of scoring the whole corpus per request.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np

from vidpop.errors import VidpopError


@dataclass
class IndexConfig:
    kind: str = "hnsw"  # hnsw | ivf | exact
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 128
    nlist: int | None = None  # IVF lists; default ~ 4*sqrt(n)
    nprobe: int = 32


class ItemIndex:
    """Maximum-inner-product index over item vectors (n_items, d)."""

    def __init__(self, config: IndexConfig | None = None) -> None:
        self.config = config or IndexConfig()
        self.index_: faiss.Index | None = None

    def build(self, vectors: np.ndarray) -> ItemIndex:
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if x.ndim != 2 or len(x) == 0:
            raise VidpopError("ItemIndex.build needs a non-empty (n_items, d) array")
        n, d = x.shape
        c = self.config
        if c.kind == "exact":
            index: faiss.Index = faiss.IndexFlatIP(d)
        elif c.kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, c.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = c.ef_construction
            index.hnsw.efSearch = c.ef_search
        elif c.kind == "ivf":
            nlist = c.nlist or max(1, min(n // 39, int(4 * np.sqrt(n))))
            quantizer = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(0)
            train = x[rng.choice(n, size=min(n, nlist * 64), replace=False)]
            index.train(train)
            index.nprobe = c.nprobe
        else:
            raise VidpopError(f"unknown index kind '{c.kind}' (hnsw, ivf, exact)")
        index.add(x)
        self.index_ = index
        return self

    @property
    def n_items(self) -> int:
        return 0 if self.index_ is None else int(self.index_.ntotal)

    def search(
        self, queries: np.ndarray, k: int, exclude: Sequence[Sequence[int]] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, item indices) per query, best first; ``exclude[i]`` items are skipped
        (e.g. already watched). Rows with fewer than k candidates are padded with -1."""
        if self.index_ is None:
            raise VidpopError("index is not built; call build() or load() first")
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        extra = max((len(e) for e in exclude), default=0) if exclude is not None else 0
        scores, idx = self.index_.search(q, min(k + extra, self.n_items))
        if exclude is None:
            return scores[:, :k], idx[:, :k]
        out_s = np.full((len(q), k), -np.inf, np.float32)
        out_i = np.full((len(q), k), -1, np.int64)
        for r in range(len(q)):
            ban = set(int(v) for v in exclude[r])
            keep = [(s, i) for s, i in zip(scores[r], idx[r], strict=True) if i >= 0 and int(i) not in ban][:k]
            for j, (s, i) in enumerate(keep):
                out_s[r, j], out_i[r, j] = s, i
        return out_s, out_i

    def save(self, path: str | Path) -> Path:
        if self.index_ is None:
            raise VidpopError("nothing to save: index is not built")
        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index_, str(p / "items.faiss"))
        (p / "index.json").write_text(json.dumps(asdict(self.config)))
        return p

    @classmethod
    def load(cls, path: str | Path) -> ItemIndex:
        p = Path(path)
        obj = cls(IndexConfig(**json.loads((p / "index.json").read_text())))
        obj.index_ = faiss.read_index(str(p / "items.faiss"))
        if obj.config.kind == "hnsw":
            obj.index_.hnsw.efSearch = obj.config.ef_search
        elif obj.config.kind == "ivf":
            obj.index_.nprobe = obj.config.nprobe
        return obj


def recall_at_k(approx: np.ndarray, exact: np.ndarray) -> float:
    """Share of the exact top-k found by the approximate search (averaged over queries)."""
    k = exact.shape[1]
    hits = sum(len(set(a.tolist()) & set(e.tolist())) for a, e in zip(approx, exact, strict=True))
    return hits / (len(exact) * k)
