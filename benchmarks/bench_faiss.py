"""(e) Retrieval with faiss at 1M items — SYNTHETIC vectors (no real catalogue of that size exists here).

Items and user states are drawn from a 1,000-component Gaussian mixture in 64 dimensions (unit
norm, like normalised item embeddings grouped by topic; components overlap: noise as large as the
centres). Exact inner-product search (``IndexFlatIP``) is the reference; the IVF index of
:class:`~vidpop.serve.retrieval.ItemIndex` is measured at two ``nprobe`` values. Targets:
recall@10 against exact >= 0.95 and < 5 ms per user (one query at a time, the serving case).
HNSW is not built at this scale here: its construction alone exceeds the benchmark budget on 2 cores.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from benchmarks.common import Table, measure, report, verdict
from vidpop.serve.retrieval import IndexConfig, ItemIndex, recall_at_k

N_ITEMS = int(os.environ.get("VIDPOP_BENCH_ITEMS", "1000000"))
DIM, N_COMPONENTS, N_QUERIES, N_SINGLE, K = 64, 1000, 200, 50, 10


def synthetic(n: int, centers: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """SYNTHETIC: mixture samples, unit norm."""
    x = centers[rng.integers(0, len(centers), n)] + rng.standard_normal((n, centers.shape[1]), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _latency(index: ItemIndex, q: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(ms per user batched, ms per user one at a time, batched top-k ids)."""
    t0 = time.perf_counter()
    _, ids = index.search(q, K)
    batched = 1000 * (time.perf_counter() - t0) / len(q)
    t0 = time.perf_counter()
    for i in range(N_SINGLE):
        index.search(q[i : i + 1], K)
    single = 1000 * (time.perf_counter() - t0) / N_SINGLE
    return batched, single, ids


def run() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(N_COMPONENTS, DIM)).astype(np.float32)
    with measure() as m_gen:
        items = synthetic(N_ITEMS, centers, rng)
        queries = synthetic(N_QUERIES, centers, rng)
    table = Table(f"faiss top-{K} over {N_ITEMS:,} SYNTHETIC items ({DIM}-d mixture), {N_QUERIES} users",
                  ["index", "build s", "recall@10 vs exact", "ms/user batched", "ms/user single",
                   "speed-up vs exact (single)", "recall >= 0.95", "< 5 ms/user", "peak RSS MB"])  # fmt: skip
    with measure() as m:
        exact = ItemIndex(IndexConfig(kind="exact")).build(items)
        ex_b, ex_s, truth = _latency(exact, queries)
    table.add("exact (IndexFlatIP)", 0.0, 1.0, ex_b, ex_s, 1.0, "", verdict(ex_s < 5), m.peak_rss_mb)
    out: dict[str, Any] = {"synthetic": True, "n_items": N_ITEMS, "dim": DIM, "generate": m_gen.as_dict(),
                           "exact": {"ms_batched": ex_b, "ms_single": ex_s}, "ivf": []}  # fmt: skip
    with measure() as m_build:
        ivf = ItemIndex(IndexConfig(kind="ivf", nlist=1024, nprobe=8)).build(items)
    for nprobe in (8, 16):
        ivf.index_.nprobe = nprobe
        with measure() as m:
            b, s, got = _latency(ivf, queries)
        rec = recall_at_k(got, truth)
        table.add(f"IVF nlist=1024 nprobe={nprobe}", m_build.seconds, rec, b, s, ex_s / s, verdict(rec >= 0.95),
                  verdict(s < 5), max(m.peak_rss_mb, m_build.peak_rss_mb))  # fmt: skip
        out["ivf"].append({"nprobe": nprobe, "recall_at_10": rec, "ms_batched": b, "ms_single": s,
                           "speedup_vs_exact_single": ex_s / s, "build": m_build.as_dict()})  # fmt: skip
    report("faiss", [table], out)
    return out


if __name__ == "__main__":
    run()
