"""Every metric against values computed by hand."""

import math

import numpy as np
import pytest

from vidpop.training import metrics as M


def test_r2_mae_rmse_by_hand() -> None:
    y, p = [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 2.0, 5.0]
    # mean 2.5; SS_tot = 2.25+0.25+0.25+2.25 = 5; SS_res = 0+0+1+1 = 2
    assert M.r2(y, p) == pytest.approx(1 - 2 / 5)
    assert M.mae(y, p) == pytest.approx(0.5)
    assert M.rmse(y, p) == pytest.approx(math.sqrt(0.5))
    assert M.r2(y, [2.5] * 4) == pytest.approx(0.0)
    assert M.r2(y, [4.0, 3.0, 2.0, 1.0]) < 0


def test_spearman_by_hand() -> None:
    # ranks x: 1 2 3 4 5, ranks y: 2 1 4 3 5 -> d^2 = 1+1+1+1+0 = 4; rho = 1 - 6*4/(5*24) = 0.8
    assert M.spearman([10, 20, 30, 40, 50], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    assert math.isnan(M.spearman([1, 2, 3], [7, 7, 7]))


def test_accuracy_and_ordinal_accuracy() -> None:
    y, p = [0, 1, 2, 3, 4], [0, 2, 0, 3, 3]
    assert M.accuracy(y, p) == pytest.approx(2 / 5)
    # exact, adjacent, off by 2, exact, adjacent -> (1 + .5 + 0 + 1 + .5) / 5
    assert M.ordinal_accuracy(y, p) == pytest.approx(3 / 5)


def test_interval_coverage_and_width() -> None:
    y = [1.0, 2.0, 3.0, 4.0]
    lo, hi = [0.0, 2.5, 2.0, 4.0], [2.0, 3.0, 3.0, 6.0]
    assert M.interval_coverage(y, lo, hi) == pytest.approx(3 / 4)  # 2.0 is outside [2.5, 3]; bounds inclusive
    assert M.interval_width(lo, hi) == pytest.approx((2 + 0.5 + 1 + 2) / 4)


def test_ranking_metrics_by_hand() -> None:
    ranked, rel = ["a", "b", "c", "d", "e"], {"b", "e", "z"}
    assert M.precision_at_k(ranked, rel, 5) == pytest.approx(2 / 5)
    assert M.recall_at_k(ranked, rel, 5) == pytest.approx(2 / 3)
    assert M.f1_at_k(ranked, rel, 5) == pytest.approx(2 * (0.4 * 2 / 3) / (0.4 + 2 / 3))
    assert M.hit_rate_at_k(ranked, rel, 1) == 0.0
    assert M.hit_rate_at_k(ranked, rel, 2) == 1.0
    dcg = 1 / math.log2(3) + 1 / math.log2(6)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert M.ndcg_at_k(ranked, rel, 5) == pytest.approx(dcg / idcg)
    assert M.ndcg_at_k(["b"], {"b"}, 10) == pytest.approx(1.0)
    assert M.recall_at_k(ranked, set(), 5) == 0.0


def test_metric_input_checks() -> None:
    with pytest.raises(ValueError):
        M.mae([1, 2], [1])
    with pytest.raises(ValueError):
        M.r2([], [])
    with pytest.raises(ValueError):
        M.precision_at_k([1], {1}, 0)
    assert M.regression_report(np.arange(5.0), np.arange(5.0))["r2"] == pytest.approx(1.0)


def test_mape_by_hand() -> None:
    # |2-1|/2 + |4-5|/4 = 0.5 + 0.25 -> mean 0.375; a zero target is left out (undefined ratio)
    assert M.mape([2.0, 4.0], [1.0, 5.0]) == pytest.approx(0.375)
    assert M.mape([2.0, 0.0], [1.0, 3.0]) == pytest.approx(0.5)
    assert math.isnan(M.mape([0.0], [1.0]))


def test_standard_evaluators_use_the_standard_names() -> None:
    from vidpop.training import evaluation as E

    y = np.array([[1.0, 2.0], [2.0, np.nan], [3.0, 4.0], [4.0, 8.0]])
    p = np.array([[1.0, 2.0], [2.0, 9.0], [2.0, 4.0], [5.0, 6.0]])
    rows = E.regression(y, p, ["a", "b"], lower=p - 1, upper=p + 1)
    assert list(rows["a"]) == ["MAPE", "MAE", "R2", "Spearman", "coverage95", "width95", "n_test"]
    assert rows["a"]["MAE"] == pytest.approx(0.5) and rows["a"]["MAPE"] == pytest.approx((1 / 3 + 1 / 4) / 4)
    assert rows["b"]["n_test"] == 3  # the missing target is left out of b only
    assert rows["b"]["MAE"] == pytest.approx(2 / 3) and rows["a"]["coverage95"] == pytest.approx(1.0)
    assert list(E.regression(y[:, :1], p[:, :1])["target 0"]) == ["MAPE", "MAE", "R2", "Spearman", "n_test"]
    c = E.classification([0, 1, 1, 0], [0, 1, 0, 0], score=[0.1, 0.9, 0.4, 0.2])
    assert c["accuracy"] == pytest.approx(0.75)
    assert c["Spearman"] == pytest.approx(M.spearman([0, 1, 1, 0], [0.1, 0.9, 0.4, 0.2]))
    o = E.ordinal([0, 1, 2, 3, 4], [0, 2, 0, 3, 3])
    assert (o["accuracy"], o["ordinal_accuracy"]) == (pytest.approx(0.4), pytest.approx(0.6))
    assert E.evaluate("ordinal", [1], [1])["accuracy"] == 1.0


def test_recommendation_names_and_the_papers_f() -> None:
    from vidpop.training import evaluation as E

    out = E.standard_recommendation_names({"P@5": 0.2, "R@5": 0.6, "F1@5": 0.25, "HR@10": 0.5, "NDCG@10": 0.3})
    assert list(out)[:5] == ["P@5", "R@5", "F@5", "HR@10", "NDCG@10"]
    assert out["F@5"] == pytest.approx(2 * 0.2 * 0.6 / 0.8)  # from the averaged P and R, as the paper computes it
    assert out["F1@5 (per-user mean)"] == 0.25
