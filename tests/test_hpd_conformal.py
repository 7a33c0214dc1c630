import numpy as np
from scipy.stats import norm

from vidpop.training.conformal import HPDSplitConformal, SplitConformal


def _bimodal(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.choice([-3.0, 3.0], n) + rng.normal(0, 0.5, n)


def _density(y: np.ndarray) -> np.ndarray:
    return 0.5 * norm.pdf(y, -3, 0.5) + 0.5 * norm.pdf(y, 3, 0.5)


def test_hpd_split_covers_nominal_and_is_shorter_than_split_on_bimodal_noise() -> None:
    rng = np.random.default_rng(0)
    y_cal, y_test = _bimodal(2000, rng), _bimodal(20000, rng)
    hpd = HPDSplitConformal(0.95).fit(_density(y_cal))
    cov = hpd.covers(_density(y_test)).mean()
    edges = np.linspace(-8, 8, 1601)
    length = hpd.set_length(_density((edges[:-1] + edges[1:]) / 2)[None, :], np.diff(edges))[0]
    lo, hi = SplitConformal().fit(np.zeros(2000), y_cal).interval(np.zeros(1), 0.95)
    assert 0.93 <= cov <= 0.97
    assert length < 0.7 * float(hi[0] - lo[0])  # two pieces (~2 × 2.2) against one interval (~7.6)
