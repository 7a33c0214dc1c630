"""Every metric vidpop reports, in one place. Inputs are array-likes; NaN-free inputs expected."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _xy(y_true: Sequence[float], y_pred: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y_true, dtype="float64").ravel()
    b = np.asarray(y_pred, dtype="float64").ravel()
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    if a.size == 0:
        raise ValueError("empty input")
    return a, b


# ---------------------------------------------------------------- regression
def r2(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    """Coefficient of determination 1 - SS_res / SS_tot (can be negative)."""
    a, b = _xy(y_true, y_pred)
    ss_tot = float(((a - a.mean()) ** 2).sum())
    ss_res = float(((a - b) ** 2).sum())
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


def mae(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    a, b = _xy(y_true, y_pred)
    return float(np.abs(a - b).mean())


def mape(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    """Mean absolute percentage error as a fraction: mean |y - ŷ| / |y|, on the scale the model predicts
    (SMP-Video: its log-scale popularity score 1.22-13.35, the challenge's metric; with ``--split time``
    predicting the training mean scores 0.369 on the latest 800 labelled posts — a test checks it).
    Rows with y = 0 are left out (the ratio is undefined there); NaN when no row is left."""
    a, b = _xy(y_true, y_pred)
    ok = a != 0
    return float(np.mean(np.abs(a[ok] - b[ok]) / np.abs(a[ok]))) if ok.any() else float("nan")


def rmse(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    a, b = _xy(y_true, y_pred)
    return float(np.sqrt(((a - b) ** 2).mean()))


def spearman(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties); NaN when either side is constant."""
    a, b = _xy(y_true, y_pred)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    from scipy import stats  # imported here: scipy.stats costs ~1 s at CLI start-up

    return float(stats.spearmanr(a, b).statistic)


# ---------------------------------------------------------------- classification
def accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    a, b = _xy(y_true, y_pred)
    return float((a == b).mean())


def ordinal_accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """1 for the exact class, 0.5 for an adjacent class, 0 otherwise; averaged."""
    a, b = _xy(y_true, y_pred)
    d = np.abs(a - b)
    return float(np.where(d == 0, 1.0, np.where(d == 1, 0.5, 0.0)).mean())


# ---------------------------------------------------------------- intervals
def interval_coverage(y_true: Sequence[float], lower: Sequence[float], upper: Sequence[float]) -> float:
    """Share of targets inside [lower, upper]."""
    a, lo = _xy(y_true, lower)
    _, hi = _xy(y_true, upper)
    return float(((a >= lo) & (a <= hi)).mean())


def interval_width(lower: Sequence[float], upper: Sequence[float]) -> float:
    """Mean width of the intervals."""
    lo, hi = _xy(lower, upper)
    return float((hi - lo).mean())


# ---------------------------------------------------------------- ranking (one user)
def _topk(ranked: Sequence, k: int) -> list:
    if k <= 0:
        raise ValueError("k must be positive")
    return list(ranked)[:k]


def precision_at_k(ranked: Sequence, relevant: set | Sequence, k: int) -> float:
    """|top-k ∩ relevant| / k."""
    rel = set(relevant)
    return sum(1 for x in _topk(ranked, k) if x in rel) / k


def recall_at_k(ranked: Sequence, relevant: set | Sequence, k: int) -> float:
    """|top-k ∩ relevant| / |relevant| (0 when nothing is relevant)."""
    rel = set(relevant)
    if not rel:
        return 0.0
    return sum(1 for x in _topk(ranked, k) if x in rel) / len(rel)


def f1_at_k(ranked: Sequence, relevant: set | Sequence, k: int) -> float:
    p, r = precision_at_k(ranked, relevant, k), recall_at_k(ranked, relevant, k)
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def hit_rate_at_k(ranked: Sequence, relevant: set | Sequence, k: int) -> float:
    """1 if any relevant item is in the top k."""
    rel = set(relevant)
    return float(any(x in rel for x in _topk(ranked, k)))


def ndcg_at_k(ranked: Sequence, relevant: set | Sequence, k: int) -> float:
    """Binary-relevance NDCG@k: DCG = Σ 1/log2(rank+1) over hits; IDCG for min(|rel|, k) hits."""
    rel = set(relevant)
    if not rel:
        return 0.0
    dcg = sum(1.0 / np.log2(i + 2) for i, x in enumerate(_topk(ranked, k)) if x in rel)
    idcg = sum(1.0 / np.log2(i + 2) for i in range(min(len(rel), k)))
    return float(dcg / idcg)


#: legacy lower-case names (the demo and old tables); the standard names live in :mod:`vidpop.training.evaluation`
REGRESSION_METRICS = {"r2": r2, "mae": mae, "rmse": rmse, "spearman": spearman}
CLASSIFICATION_METRICS = {"accuracy": accuracy, "ordinal_accuracy": ordinal_accuracy}
RANKING_METRICS = {
    "precision": precision_at_k,
    "recall": recall_at_k,
    "f1": f1_at_k,
    "hr": hit_rate_at_k,
    "ndcg": ndcg_at_k,
}


def regression_report(y_true: Sequence[float], y_pred: Sequence[float]) -> dict[str, float]:
    return {name: fn(y_true, y_pred) for name, fn in REGRESSION_METRICS.items()}
