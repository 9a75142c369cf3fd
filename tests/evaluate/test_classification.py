"""Classification metrics against scikit-learn and hand computations; calibration on constructed cases."""

from __future__ import annotations

import numpy as np
import pytest

from guimo.evaluate import classification as C


def test_accuracy_and_macro_f1_match_sklearn():
    from sklearn.metrics import accuracy_score, f1_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 6, 500)
    pred = np.where(rng.random(500) < 0.6, y, rng.integers(0, 6, 500))
    pred[pred == 5] = 4  # class 5 is never predicted: its F1 is 0 and still counts
    assert C.accuracy(pred, y) == pytest.approx(accuracy_score(y, pred))
    assert C.macro_f1(pred, y, 6) == pytest.approx(f1_score(y, pred, average="macro"))


def test_ece_by_hand():
    # two bins used: 4 rows at confidence 0.9 (3 right), 2 rows at 0.6 (both right)
    probs = np.array([[0.9, 0.1]] * 4 + [[0.4, 0.6]] * 2)
    labels = np.array([0, 0, 0, 1, 1, 1])
    expected = 4 / 6 * abs(0.75 - 0.9) + 2 / 6 * abs(1.0 - 0.6)
    assert C.ece(probs, labels, n_bins=10) == pytest.approx(expected)
    bins = C.reliability_bins(probs, labels, n_bins=10)
    assert [b["count"] for b in bins] == [2, 4]


def test_temperature_recovers_a_known_temperature_and_lowers_ece():
    rng = np.random.default_rng(1)
    n, k, t_true = 4000, 5, 2.5
    true_logits = rng.normal(0, 2.0, (n, k))
    labels = np.array([rng.choice(k, p=p) for p in C.softmax(true_logits)])
    overconfident = true_logits * t_true  # a model whose logits are t_true times too sharp
    t = C.fit_temperature(overconfident, labels)
    assert t == pytest.approx(t_true, rel=0.1)
    before, after = C.ece(C.softmax(overconfident), labels), C.ece(C.softmax(overconfident, t), labels)
    assert after < before / 3
    assert (C.softmax(overconfident, t).argmax(1) == overconfident.argmax(1)).all()  # T never changes the class


def test_oos_threshold_without_oos_rows_keeps_the_target_share():
    conf = np.linspace(0.01, 1.0, 100)
    t, how = C.oos_threshold(conf, np.zeros(100, bool), target_recall=0.9)
    assert np.mean(conf >= t) == pytest.approx(0.9, abs=0.011)
    assert "90%" in how


def test_oos_threshold_with_oos_rows_separates_them():
    conf = np.array([0.95, 0.9, 0.85, 0.8, 0.3, 0.2, 0.4])
    is_oos = np.array([0, 0, 0, 0, 1, 1, 1], bool)
    t, _ = C.oos_threshold(conf, is_oos)
    assert 0.4 < t <= 0.8
    m = C.oos_metrics(conf < t, is_oos, np.ones(7, bool))
    assert m["oos_precision"] == m["oos_recall"] == m["joint_accuracy"] == 1.0


def test_oos_threshold_sits_in_the_middle_of_the_validation_gap():
    # strangers at log-odds 1 and 2, commands at 5-7: every threshold in (2, 5] cuts validation the same way; the middle
    # keeps a new command at 4 (less sure than any validation command) and still rejects a stranger at 3
    t, _ = C.oos_threshold(np.array([5.0, 6.0, 7.0, 1.0, 2.0]), np.array([0, 0, 0, 1, 1], bool))
    assert t == pytest.approx(3.5)
    assert 4.0 >= t > 3.0
    t, best = C.rejection_threshold(np.array([1.0, 2.0, 3.0]), lambda rejected: float(rejected[0]))  # only the first rejected
    assert (t, best) == (1.5, 1.0)


def test_oos_metrics_by_hand():
    rejected = np.array([1, 1, 0, 0, 1, 0], bool)
    is_oos = np.array([1, 0, 1, 0, 0, 0], bool)
    correct = np.array([0, 1, 0, 1, 1, 0], bool)
    m = C.oos_metrics(rejected, is_oos, correct)
    assert m["oos_precision"] == pytest.approx(1 / 3)
    assert m["oos_recall"] == pytest.approx(1 / 2)
    assert m["in_scope_kept"] == pytest.approx(2 / 4)
    assert m["in_scope_accuracy"] == pytest.approx(1 / 4)  # row 3 only: kept and right
    assert m["joint_accuracy"] == pytest.approx(2 / 6)  # row 0 rejected (oos), row 3 kept and right


def test_top_log_odds_match_the_probability_and_keep_ordering_where_it_saturates():
    logits = np.random.default_rng(0).normal(size=(50, 6)) * 3
    p = C.softmax(logits, 0.7).max(1)
    np.testing.assert_allclose(C.top_log_odds(logits, 0.7), np.log(p / (1 - p)), rtol=1e-9)
    # margins of 60 and 80 nats at T=0.5: both probabilities are exactly 1.0, the log-odds still order them
    sharp = np.array([[60.0, 0.0, 0.0], [80.0, 0.0, 0.0]])
    assert (C.softmax(sharp, 0.5).max(1) == 1.0).all()
    lo = C.top_log_odds(sharp, 0.5)
    assert lo[0] == pytest.approx(120 - np.log(2)) and lo[1] == pytest.approx(160 - np.log(2))
    assert C.top_log_odds(np.zeros((1, 1)))[0] == np.inf  # one class: certain


def test_oos_threshold_separates_saturated_confidences_on_log_odds():
    # in-scope commands 40-60 nats ahead, strangers 20-30 at T=0.5: every probability is 1.0, the log-odds tell them apart
    ins = np.array([[m, 0, 0] for m in (40.0, 45.0, 50.0, 60.0)])
    far = np.array([[m, 0, 0] for m in (20.0, 25.0, 30.0)])
    is_oos = np.array([0, 0, 0, 0, 1, 1, 1], bool)
    both = np.concatenate([ins, far])
    assert (C.softmax(both, 0.5).max(1) == 1.0).all()
    t, _ = C.oos_threshold(C.top_log_odds(both, 0.5), is_oos)
    assert 60 < t <= 80
    stored = C.oos_calibration(t)
    assert C.oos_log_odds_of(stored) == t and stored["oos_threshold"] == 1.0  # the probability it stands for rounds to 1
    assert C.oos_log_odds_of(C.oos_calibration(float("-inf"))) == float("-inf")  # nothing rejected survives JSON as null
    assert C.oos_log_odds_of({"oos_threshold": 0.5}) == 0.0  # an older run's probability threshold


def test_nothing_is_rejected_when_rejecting_only_hurts():
    t, _ = C.oos_threshold(np.array([3.0, 2.0, -1.0, 0.5]), np.array([0, 0, 0, 1], bool), correct=np.array([1, 1, 1, 0], bool))
    assert t == float("-inf") or t <= -1.0
