"""User relevance: users whose watch lists overlap (Jaccard) should have close GRU states.

Positives of a user are the ``top_k`` other users with the highest Jaccard overlap of their watch
sets (overlap > ``min_jaccard``); negatives are users with no common video. A triplet hinge loss with
margin tau_2 acts on the unit-normalised last GRU states.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F


def watch_matrix(sequences: Sequence[np.ndarray], n_items: int) -> sp.csr_matrix:
    """Binary users x items matrix of the watch sets."""
    rows = (
        np.concatenate([np.full(len(s), u, np.int64) for u, s in enumerate(sequences)])
        if sequences
        else np.zeros(0, np.int64)
    )
    cols = np.concatenate([np.asarray(s, np.int64) for s in sequences]) if sequences else np.zeros(0, np.int64)
    m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(sequences), n_items))
    m.data[:] = 1.0  # duplicates (re-watches) count once
    return m


def jaccard_neighbours(
    sequences: Sequence[np.ndarray], n_items: int, top_k: int = 10, min_jaccard: float = 0.0, chunk: int = 4096
) -> list[np.ndarray]:
    """For each user, up to ``top_k`` other users by decreasing Jaccard overlap (> ``min_jaccard``)."""
    m = watch_matrix(sequences, n_items)
    m.sum_duplicates()
    m.data[:] = 1.0
    sizes = np.asarray(m.sum(1)).ravel()
    mt = m.T.tocsr()
    out: list[np.ndarray] = []
    for start in range(0, m.shape[0], chunk):
        inter = (m[start : start + chunk] @ mt).tocsr()
        for r in range(inter.shape[0]):
            u = start + r
            lo, hi = inter.indptr[r], inter.indptr[r + 1]
            cols, common = inter.indices[lo:hi], inter.data[lo:hi]
            jac = common / (sizes[u] + sizes[cols] - common)
            keep = (cols != u) & (jac > min_jaccard)
            cols, jac = cols[keep], jac[keep]
            order = np.argsort(-jac, kind="stable")[:top_k]
            out.append(cols[order].astype(np.int64))
    return out


def sample_triplets(
    neighbours: list[np.ndarray], watch: sp.csr_matrix, rng: np.random.Generator, retries: int = 3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One (positive, negative) pair per user: a random Jaccard neighbour and a random user without any
    common video. Returns ``pos, neg, valid``; users without a neighbour are not valid anchors."""
    n = len(neighbours)
    valid = np.array([len(nb) > 0 for nb in neighbours])
    pos = np.array([nb[rng.integers(len(nb))] if len(nb) else u for u, nb in enumerate(neighbours)], np.int64)
    neg = rng.integers(0, n, size=n)
    for _ in range(retries):  # random users almost never overlap; redraw the few that do
        clash = (np.asarray(watch.multiply(watch[neg]).sum(1)).ravel() > 0) | (neg == np.arange(n))
        if not clash.any():
            break
        neg[clash] = rng.integers(0, n, size=int(clash.sum()))
    return pos, neg.astype(np.int64), valid


def triplet_hinge(anchor: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, margin: float) -> torch.Tensor:
    """``mean([m - cos(a, p) + cos(a, n)]_+)`` on unit-normalised states."""
    a, p, n = (F.normalize(x, dim=-1) for x in (anchor, pos, neg))
    return F.relu(margin - (a * p).sum(-1) + (a * n).sum(-1)).mean()
