"""The cover + title paper's label recipe (data/labels.py): its normalisation and fixed thresholds,
beside vidpop's quantile classes. SYNTHETIC counts, small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vidpop.data.labels import PAPER_CUT_POINTS, class_proportions, label_scorer, paper_scorer
from vidpop.errors import VidpopError


def test_paper_score_is_mean_centred_over_range_on_raw_counts() -> None:
    # SYNTHETIC: views only (weight renormalised to 1): score = (x - mean) / (max - min)
    train = pd.DataFrame({"views": [0.0, 10.0, 20.0, 1000.0]})
    sc = paper_scorer({"views": 1.0}).fit(train)
    mean = 1030.0 / 4
    np.testing.assert_allclose(sc.score(train), (train["views"].to_numpy() - mean) / 1000.0)
    assert sc.cuts_.tolist() == list(PAPER_CUT_POINTS)
    # three videos sit below the mean (negative score -> class 0), the outlier is far above 0.02 -> class 4
    assert sc.transform(train).tolist() == [0, 0, 0, 4]


def test_paper_thresholds_put_each_class_where_the_paper_says() -> None:
    # SYNTHETIC: train views 0 and 1000 -> mean 500, range 1000; test scores on each side of every threshold
    sc = paper_scorer({"views": 1.0}).fit(pd.DataFrame({"views": [0.0, 1000.0]}))
    target = np.array([-0.1, 0.0001, 0.001, 0.004, 0.01, 0.03])
    test = pd.DataFrame({"views": 500.0 + 1000.0 * target})
    np.testing.assert_allclose(sc.score(test), target, atol=1e-12)
    assert sc.transform(test).tolist() == [0, 0, 1, 2, 3, 4]


def test_quantile_and_paper_recipes_differ_in_proportions() -> None:
    rng = np.random.default_rng(0)  # SYNTHETIC heavy-tailed counts
    views = rng.lognormal(8, 2, 2000)
    train = pd.DataFrame({"views": views, "likes": views * rng.uniform(0.01, 0.1, 2000)})
    q = label_scorer("quantile").fit(train).transform(train)
    p = label_scorer("paper").fit(train).transform(train)
    assert np.allclose(class_proportions(q, 5), 0.2, atol=0.01)  # quantile classes are equal-sized on train
    props = class_proportions(p, 5)
    assert abs(sum(props) - 1) < 1e-6 and props[0] > 0.5  # heavy tail: most videos sit below the mean
    with pytest.raises(VidpopError, match="label recipe"):
        label_scorer("thresholds")
    with pytest.raises(VidpopError, match="5 classes"):
        label_scorer("paper", n_classes=3)
