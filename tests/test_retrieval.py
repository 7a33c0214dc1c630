"""faiss retrieval against exact search (synthetic clustered vectors, labelled as such)."""

from pathlib import Path

import numpy as np
import pytest

from vidpop.errors import VidpopError
from vidpop.serve.retrieval import IndexConfig, ItemIndex, recall_at_k


def _vectors(n: int = 5000, d: int = 32, seed: int = 0) -> np.ndarray:
    """Synthetic: a mixture of 50 Gaussian clusters, like item embeddings grouped by topic."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(50, d))
    return (centers[rng.integers(0, 50, n)] + 0.3 * rng.normal(size=(n, d))).astype(np.float32)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_index_recalls_exact_top10(kind: str) -> None:
    items = _vectors()
    queries = _vectors(200, seed=1)
    exact = ItemIndex(IndexConfig(kind="exact")).build(items)
    _, truth = exact.search(queries, 10)
    brute = np.argsort(-(queries @ items.T), axis=1)[:, :10]
    assert recall_at_k(truth, brute) > 0.99  # exact index == brute force (ties aside)
    approx = ItemIndex(IndexConfig(kind=kind)).build(items)
    _, got = approx.search(queries, 10)
    assert recall_at_k(got, truth) >= 0.9


def test_excluded_items_never_returned_and_save_load(tmp_path: Path) -> None:
    items = _vectors(2000)
    idx = ItemIndex(IndexConfig(kind="hnsw")).build(items)
    q = items[:3]
    _, top = idx.search(q, 5)
    banned = [top[0, :3].tolist(), [], [int(top[2, 0])]]
    _, filtered = idx.search(q, 5, exclude=banned)
    for row, ban in zip(filtered, banned, strict=True):
        assert not set(row.tolist()) & set(ban)
        assert len(row) == 5 and (row >= 0).all()
    idx.save(tmp_path / "ix")
    again = ItemIndex.load(tmp_path / "ix")
    np.testing.assert_array_equal(again.search(q, 5)[1], top)


def test_search_before_build_is_a_clear_error() -> None:
    with pytest.raises(VidpopError, match="not built"):
        ItemIndex().search(np.zeros((1, 4)), 3)
