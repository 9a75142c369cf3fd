"""guimo.evaluate.tabular against hand-computed values and scikit-learn."""

import numpy as np
import pytest

from guimo.errors import GuimoError
from guimo.evaluate.tabular import (bayes_threshold, binary_metrics, cost_optimal_threshold, multiclass_metrics,
                                    recall_at_fpr, regression_metrics, summarize_folds)


def test_recall_at_fpr_interpolates_between_roc_points():
    # 4 positives, 100 negatives. One negative outscores all but one positive: ROC points (0, .25), (.01, .25),
    # (.01, .75), (.02, .75), (.02, 1) ... At fpr 1 % the top of the vertical step (0.75) is reachable.
    y = np.array([1, 0, 1, 1, 0, 1] + [0] * 98)
    s = np.array([0.99, 0.98, 0.97, 0.96, 0.95, 0.94] + list(np.linspace(0.9, 0.0, 98)))
    assert recall_at_fpr(y, s, 0.01) == pytest.approx(0.75)
    assert recall_at_fpr(y, s, 0.015) == pytest.approx(0.75)  # flat between (.01, .75) and (.02, .75)
    assert recall_at_fpr(y, s, 0.005) == pytest.approx(0.25)
    # One positive tied with two of three negatives: from (0, 0) straight to (2/3, 1), so at fpr 1 % recall 0.015.
    assert recall_at_fpr([1, 0, 0, 0], [0.5, 0.5, 0.5, 0.1], 0.01) == pytest.approx(0.015)


def test_binary_metrics_match_sklearn_and_perfect_scores():
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.1).astype(int)
    p = np.clip(0.1 + 0.3 * y + rng.normal(0, 0.15, 2000), 0, 1)
    m = binary_metrics(y, p)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p)) and m["pr_auc"] == pytest.approx(average_precision_score(y, p))
    assert 0.7 < m["roc_auc"] < 1.0 and m["positive_rate"] == pytest.approx(y.mean())
    assert m["accuracy"] == pytest.approx(((p >= 0.5) == y).mean())
    perfect = binary_metrics([0, 0, 1, 1], [0.0, 0.0, 1.0, 1.0])
    assert perfect["roc_auc"] == perfect["pr_auc"] == perfect["recall_at_1pct_fpr"] == perfect["accuracy"] == 1.0
    assert perfect["ece"] == 0.0
    with pytest.raises(GuimoError, match="need both classes"):
        binary_metrics([1, 1], [0.2, 0.9])
    with pytest.raises(GuimoError, match="logits"):
        binary_metrics([0, 1], [-2.0, 3.0])


def test_ece_of_calibrated_and_overconfident_scores():
    rng = np.random.default_rng(1)
    p = rng.random(20000)
    y = (rng.random(20000) < p).astype(int)  # calibrated by construction
    assert binary_metrics(y, p)["ece"] < 0.02
    overconfident = np.where(p > 0.5, 0.99, 0.01)  # says 99 % where the truth is 75 % on average
    assert binary_metrics(y, overconfident)["ece"] == pytest.approx(0.24, abs=0.02)


def test_cost_per_row_and_thresholds():
    cost = [[0, 1], [5, 0]]  # German credit: a missed bad customer costs 5, a refused good one 1
    assert bayes_threshold(cost) == pytest.approx(1 / 6)
    y = np.array([0, 0, 0, 1, 1, 0])
    p = np.array([0.1, 0.2, 0.3, 0.25, 0.9, 0.05])
    m = binary_metrics(y, p, cost_matrix=cost)
    # threshold 1/6: predicted positive are 0.2, 0.3, 0.25, 0.9 -> two refused good customers (cost 2), no miss
    assert m["cost_threshold"] == pytest.approx(1 / 6) and m["cost_per_row"] == pytest.approx(2 / 6)
    # best on these rows: predict positive from 0.25 up -> one refused good customer (0.3)
    assert m["cost_per_row_oracle"] == pytest.approx(1 / 6) and m["cost_threshold_oracle"] == pytest.approx(0.25)
    assert m["cost_per_row_constant"] == pytest.approx(4 / 6)  # refuse everyone: 4 good customers turned away
    t, c = cost_optimal_threshold(y, p, cost)
    assert (t, c) == (pytest.approx(0.25), pytest.approx(1 / 6))
    # tied scores cannot be split by a threshold
    t, c = cost_optimal_threshold([1, 0], [0.5, 0.5], [[0, 1], [1, 0]])
    assert c == pytest.approx(0.5)


def test_multiclass_and_regression_metrics():
    proba = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4], [0.6, 0.3, 0.1]])
    m = multiclass_metrics([0, 1, 2, 1], proba)
    assert m["accuracy"] == 0.75 and m["log_loss"] == pytest.approx(-np.mean(np.log([0.8, 0.7, 0.4, 0.3])))
    assert 0 < m["macro_f1"] < 1 and 0.5 < m["roc_auc_ovr"] <= 1
    r = regression_metrics([1.0, 2.0, 3.0, 4.0], [1.5, 2.0, 2.5, 4.0])
    assert r["rmse"] == pytest.approx(np.sqrt(0.125)) and r["mae"] == pytest.approx(0.25)
    assert r["r2"] == pytest.approx(1 - 0.5 / 5.0)
    assert regression_metrics([1, 2, 3], [2, 2, 2])["r2"] == pytest.approx(0.0)


def test_summarize_folds():
    s = summarize_folds([{"roc_auc": 0.8, "note": "x"}, {"roc_auc": 0.9, "note": "y"}, {"roc_auc": 0.85}])
    assert set(s) == {"roc_auc"}
    assert s["roc_auc"]["mean"] == pytest.approx(0.85) and s["roc_auc"]["std"] == pytest.approx(0.05)
    assert s["roc_auc"]["n"] == 3
    with pytest.raises(GuimoError):
        summarize_folds([])
