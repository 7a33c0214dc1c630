"""Split-conformal prediction intervals around any point predictor.

Fit a model on the training part; on a held-out calibration part compute absolute residuals r_i; for a
nominal level 1 − α the interval is  ŷ ± q,  q = the ⌈(n + 1)(1 − α)⌉-th smallest r_i. If calibration
and test rows are exchangeable, the interval covers at least 1 − α of test targets (marginally), whatever
the model: the reference against which the variational model's sampled intervals are compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vidpop.errors import VidpopError


def conformal_quantile(residuals: np.ndarray, level: float) -> float:
    """The ⌈(n + 1)·level⌉-th smallest absolute residual (∞ when the calibration set is too small)."""
    if not 0 < level < 1:
        raise VidpopError(f"conformal level must be in (0, 1), got {level}")
    if np.size(residuals) == 0:
        raise VidpopError("split conformal needs at least one calibration residual")
    return _upper_order_stat(np.abs(np.asarray(residuals, np.float64)), level)


@dataclass
class SplitConformal:
    """Symmetric split-conformal intervals from calibration predictions ``fit(pred_cal, y_cal)``."""

    def fit(self, pred_cal: np.ndarray, y_cal: np.ndarray) -> SplitConformal:
        pred_cal, y_cal = np.asarray(pred_cal, np.float64).ravel(), np.asarray(y_cal, np.float64).ravel()
        if pred_cal.shape != y_cal.shape:
            raise VidpopError(f"calibration predictions {pred_cal.shape} and targets {y_cal.shape} differ")
        self.residuals_ = np.abs(y_cal - pred_cal)
        return self

    def interval(self, pred: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
        q = conformal_quantile(self.residuals_, level)
        pred = np.asarray(pred, np.float64)
        return pred - q, pred + q


@dataclass
class ConformalizedQuantile:
    """Conformalised quantile regression (Romano et al., 2019): given calibration lower/upper quantile
    predictions, the score is max(lo − y, y − hi) and the interval [lo − q, hi + q]. Adaptive width,
    finite-sample marginal coverage ≥ level under exchangeability. ``fit`` is for one level."""

    level: float = 0.95

    def fit(self, lo_cal: np.ndarray, hi_cal: np.ndarray, y_cal: np.ndarray) -> ConformalizedQuantile:
        lo, hi, y = (np.asarray(a, np.float64).ravel() for a in (lo_cal, hi_cal, y_cal))
        if not lo.shape == hi.shape == y.shape:
            raise VidpopError("CQR: calibration lower, upper and targets differ in shape")
        scores = np.maximum(lo - y, y - hi)
        # scores may be negative (a too-wide band shrinks): rank the signed scores, not |scores|
        k = math.ceil((scores.size + 1) * self.level)
        self.q_ = float("inf") if k > scores.size else float(np.sort(scores)[k - 1])
        return self

    def interval(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(lo, np.float64) - self.q_, np.asarray(hi, np.float64) + self.q_


@dataclass
class NormalizedConformal:
    """Split conformal with residuals scaled by a per-row spread estimate σ̂ (e.g. a model's predictive
    std): the interval is ŷ ± q·σ̂, q the conformal quantile of |y − ŷ|/σ̂. Width adapts to σ̂."""

    def fit(self, pred_cal: np.ndarray, scale_cal: np.ndarray, y_cal: np.ndarray) -> NormalizedConformal:
        p, s, y = (np.asarray(a, np.float64).ravel() for a in (pred_cal, scale_cal, y_cal))
        if not p.shape == s.shape == y.shape:
            raise VidpopError("normalized conformal: calibration arrays differ in shape")
        self.scores_ = np.abs(y - p) / np.maximum(s, 1e-6)
        return self

    def interval(self, pred: np.ndarray, scale: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
        q = conformal_quantile(self.scores_, level)
        half = q * np.maximum(np.asarray(scale, np.float64), 1e-6)
        pred = np.asarray(pred, np.float64)
        return pred - half, pred + half


def _upper_order_stat(scores: np.ndarray, level: float) -> float:
    """The ⌈(n + 1)·level⌉-th smallest SIGNED score (∞ when the calibration set is too small)."""
    s = np.sort(np.asarray(scores, np.float64).ravel())
    if s.size == 0:
        raise VidpopError("conformal needs at least one calibration score")
    k = math.ceil((s.size + 1) * level)
    return float("inf") if k > s.size else float(s[k - 1])


@dataclass
class AsymmetricConformal:
    """Split conformal on SIGNED residuals r = y − ŷ: the interval is [ŷ + q_lo, ŷ + q_hi] with q_hi the
    conformal upper (1 − α/2) order statistic of r and q_lo that of −r, negated. Each side misses at most
    α/2, so coverage ≥ 1 − α; narrower than ŷ ± q when the residuals are skewed or off-centre (e.g. a
    drift the point model under-predicts), wider by the finite-sample cost of two tails otherwise."""

    def fit(self, pred_cal: np.ndarray, y_cal: np.ndarray) -> AsymmetricConformal:
        p, y = np.asarray(pred_cal, np.float64).ravel(), np.asarray(y_cal, np.float64).ravel()
        if p.shape != y.shape:
            raise VidpopError(f"calibration predictions {p.shape} and targets {y.shape} differ")
        self.residuals_ = y - p
        return self

    def interval(self, pred: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
        if not 0 < level < 1:
            raise VidpopError(f"conformal level must be in (0, 1), got {level}")
        side = 1 - (1 - level) / 2
        q_hi, q_lo = _upper_order_stat(self.residuals_, side), -_upper_order_stat(-self.residuals_, side)
        pred = np.asarray(pred, np.float64)
        return pred + q_lo, pred + q_hi


@dataclass
class MondrianConformal:
    """Group-conditional (Mondrian) split conformal: one quantile of |y − ŷ| per group (e.g. bins of the
    prediction or of the author's followers), so coverage ≥ level holds WITHIN every group. A group with
    fewer calibration rows than the level needs (⌈(n + 1)·level⌉ > n) falls back to the pooled quantile
    (marginal coverage only, for that group)."""

    def fit(self, pred_cal: np.ndarray, y_cal: np.ndarray, groups_cal: np.ndarray) -> MondrianConformal:
        p, y = np.asarray(pred_cal, np.float64).ravel(), np.asarray(y_cal, np.float64).ravel()
        g = np.asarray(groups_cal).ravel()
        if not p.shape == y.shape == g.shape:
            raise VidpopError("Mondrian conformal: calibration arrays differ in shape")
        self.residuals_, self.groups_ = np.abs(y - p), g
        return self

    def interval(self, pred: np.ndarray, groups: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
        pred, groups = np.asarray(pred, np.float64), np.asarray(groups)
        pooled = conformal_quantile(self.residuals_, level)
        half = np.full(pred.shape, pooled)
        for g in np.unique(groups):
            r = self.residuals_[self.groups_ == g]
            q = conformal_quantile(r, level) if r.size else float("inf")
            half[groups == g] = q if np.isfinite(q) else pooled
        return pred - half, pred + half


def clip_to_support(
    lower: np.ndarray, upper: np.ndarray, support: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Intersect intervals with the label's support [lo, hi] (e.g. the training range of a bounded score).
    A target inside the support is covered after clipping iff it was before, so coverage is unchanged
    for every such target and the width only shrinks."""
    lo, hi = support
    # clipping both ends into [lo, hi]: an interval wholly outside the support shrinks to the nearer bound
    return np.clip(np.asarray(lower, np.float64), lo, hi), np.clip(np.asarray(upper, np.float64), lo, hi)


@dataclass
class HPDSplitConformal:
    """HPD-split conformal prediction SETS (Izbicki, Shimizu & Stern, 2022) from a conditional density
    f̂(y | x) estimated on the training part: the conformity score is f̂(y_i | x_i) on the calibration
    rows, t = its ⌊α(n + 1)⌋-th smallest value, and the set of a new row is {y : f̂(y | x) ≥ t}. Coverage
    ≥ level marginally under exchangeability; where the density is bimodal the set is a union of pieces
    whose total LENGTH is smaller than any single interval's. Densities are given on a common grid of
    cells (``cell_widths``); the set length is the summed width of the cells above t."""

    level: float = 0.95

    def fit(self, density_at_y_cal: np.ndarray) -> HPDSplitConformal:
        s = np.sort(np.asarray(density_at_y_cal, np.float64).ravel())
        if s.size == 0:
            raise VidpopError("HPD-split needs at least one calibration density")
        k = math.floor((1 - self.level) * (s.size + 1))
        self.t_ = -math.inf if k < 1 else float(s[k - 1])
        return self

    def covers(self, density_at_y: np.ndarray) -> np.ndarray:
        return np.asarray(density_at_y, np.float64) >= self.t_

    def set_length(self, density_grid: np.ndarray, cell_widths: np.ndarray) -> np.ndarray:
        return (np.asarray(density_grid, np.float64) >= self.t_) @ np.asarray(cell_widths, np.float64)
