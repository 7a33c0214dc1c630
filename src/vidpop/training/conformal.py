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
    r = np.sort(np.abs(np.asarray(residuals, np.float64).ravel()))
    if not 0 < level < 1:
        raise VidpopError(f"conformal level must be in (0, 1), got {level}")
    if r.size == 0:
        raise VidpopError("split conformal needs at least one calibration residual")
    k = math.ceil((r.size + 1) * level)
    return float("inf") if k > r.size else float(r[k - 1])


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
