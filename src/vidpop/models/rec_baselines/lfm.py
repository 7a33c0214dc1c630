"""LFM: latent factor model for implicit feedback, fitted by alternating least squares
(Hu, Koren & Volinsky 2008) in vectorised numpy: conjugate-gradient sweeps for training, exact
solves for folding in users.

A user's factors are not looked up by id but *folded in* from the history (one exact least-squares
solve against the fixed item factors), so test users and brand-new users are scored the same way
as training users. The solves are batched: rows are grouped by history length and padded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from vidpop.models.config import ModelConfig
from vidpop.models.rec_baselines.common import FittedItems, interaction_matrix, query_matrix
from vidpop.models.recommender import RecData, UserQuery
from vidpop.models.registry import register_model


def als_solve(fixed: np.ndarray, rows: sp.csr_matrix, reg: float, alpha: float, chunk: int = 100_000) -> np.ndarray:
    """For every row r of ``rows`` (binary), the factors x minimising
    ``sum_j c_rj (p_rj - x.y_j)^2 + reg |x|^2`` with ``p = 1`` on observed items, ``c = 1 + alpha p``.

    Closed form: ``(Y'Y + Y_r' (alpha I) Y_r + reg I) x = (1 + alpha) Y_r' 1``.
    """
    d = fixed.shape[1]
    gram = fixed.T.astype(np.float64) @ fixed + reg * np.eye(d)
    out = np.zeros((rows.shape[0], d), np.float32)
    lengths = np.diff(rows.indptr)
    buckets = np.ceil(np.log2(np.maximum(lengths, 1))).astype(int)
    for b in np.unique(buckets[lengths > 0]):
        idx_rows = np.flatnonzero((buckets == b) & (lengths > 0))
        width = int(lengths[idx_rows].max())
        step = max(1, chunk // width)
        for s in range(0, len(idx_rows), step):
            part = idx_rows[s : s + step]
            # padded (n, L) column indices: slot l of row r holds its l-th item (mask zeroes the rest)
            offs = np.arange(width)[None, :]
            mask = offs < lengths[part][:, None]
            pad = np.where(mask, rows.indices[np.minimum(rows.indptr[part][:, None] + offs, len(rows.indices) - 1)], 0)
            F = fixed[pad].astype(np.float64) * mask[..., None]  # (n, L, d)
            A = gram + alpha * np.matmul(F.transpose(0, 2, 1), F)
            b_vec = (1.0 + alpha) * F.sum(1)
            out[part] = np.linalg.solve(A, b_vec[..., None])[..., 0]
    return out


def als_cg(
    fixed: np.ndarray, rows: sp.csr_matrix, reg: float, alpha: float, x0: np.ndarray, steps: int = 3
) -> np.ndarray:
    """The same least-squares problems as :func:`als_solve`, approximately, by a few conjugate-gradient
    steps warm-started at ``x0`` (Takács et al. 2011). ``A x`` is never formed per row: it is a dense
    GEMM plus one sparse product, which keeps a training sweep cheap on a small CPU."""
    fixed = np.ascontiguousarray(fixed, np.float32)
    gram = (fixed.T @ fixed + reg * np.eye(fixed.shape[1])).astype(np.float32)
    row_of = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
    f_nnz = fixed[rows.indices]  # (nnz, d): the fixed factor of every observed pair

    def a_mul(x: np.ndarray) -> np.ndarray:
        v = np.einsum("nd,nd->n", f_nnz, x[row_of])
        return x @ gram + alpha * (sp.csr_matrix((v, rows.indices, rows.indptr), shape=rows.shape) @ fixed)

    x = np.array(x0, np.float32, copy=True)
    r = (1.0 + alpha) * (rows @ fixed) - a_mul(x)
    p = r.copy()
    rs = (r * r).sum(1)
    for _ in range(steps):
        ap = a_mul(p)
        step = rs / np.maximum((p * ap).sum(1), 1e-12)
        x += step[:, None] * p
        r -= step[:, None] * ap
        rs_new = (r * r).sum(1)
        p = r + (rs_new / np.maximum(rs, 1e-12))[:, None] * p
        rs = rs_new
    return x


@dataclass
class LFMConfig(ModelConfig):
    factors: int = 64
    reg: float = 0.1
    alpha: float = 40.0
    iterations: int = 10
    cg_steps: int = 3
    seed: int = 0
    progress: bool = True


@register_model("rec_lfm")
class LFMRecommender(FittedItems):
    """Implicit matrix factorisation (ALS with conjugate-gradient sweeps); users folded in exactly
    from their history at prediction time."""

    description = "LFM: implicit-feedback matrix factorisation (ALS), fold-in users"
    Config = LFMConfig
    capabilities = frozenset({"recommend"})

    def fit(self, X: RecData, y: Any = None, **kwargs: Any) -> LFMRecommender:
        self._remember(X)
        cfg = self.config
        R = interaction_matrix(X)
        Rt = R.T.tocsr()
        rng = np.random.default_rng(cfg.seed)
        items = rng.normal(0, 0.01, (X.n_items, cfg.factors)).astype(np.float32)
        users = np.zeros((X.n_users, cfg.factors), np.float32)
        for _ in tqdm(range(cfg.iterations), desc="LFM (ALS)", unit="iter", disable=not cfg.progress):
            users = als_cg(items, R, cfg.reg, cfg.alpha, users, cfg.cg_steps)
            items = als_cg(users, Rt, cfg.reg, cfg.alpha, items, cfg.cg_steps)
        self.item_factors_ = items
        self.user_factors_ = users  # training users, kept for transfer models (SCA)
        self.epochs_run_ = cfg.iterations
        return self

    def fold_in(self, queries: list[UserQuery]) -> np.ndarray:
        """User factors of arbitrary histories, exact solve (empty history -> zero vector)."""
        self._check_fitted()
        return als_solve(self.item_factors_, query_matrix(queries, self.n_items_), self.config.reg, self.config.alpha)

    def full_sort_scores(self, X: list[UserQuery]) -> np.ndarray:
        return self.fold_in(X) @ self.item_factors_.T
