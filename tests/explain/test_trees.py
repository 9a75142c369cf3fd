"""TreeSHAP of a LightGBM booster: the contributions sum to its raw score, and an irrelevant feature gets ~0."""

from __future__ import annotations

import numpy as np
import pytest

lgb = pytest.importorskip("lightgbm")

from guimo.explain.trees import tree_contributions  # noqa: E402


def _data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (2 * X[:, 0] - X[:, 1] + 0.3 * rng.normal(size=n) > 0).astype(int)  # column 2 plays no part
    return X, y


def test_binary_contributions_sum_to_the_raw_score():
    X, y = _data()
    booster = lgb.train({"objective": "binary", "num_threads": 1, "verbose": -1, "num_leaves": 8}, lgb.Dataset(X, y, feature_name=["a", "b", "noise"]), 40)
    Xt, _ = _data(100, 1)
    c = tree_contributions(booster, Xt)
    assert c.values.shape == (100, 3) and c.feature_names == ["a", "b", "noise"]
    assert np.allclose(c.raw_score, booster.predict(Xt, raw_score=True), atol=1e-9)
    assert np.allclose(c.expected, c.expected[0])  # one expectation over the training data for every row
    mean_abs = np.abs(c.values).mean(axis=0)
    assert mean_abs[2] < 0.1 * mean_abs[1] < 0.1 * mean_abs[0]
    assert np.corrcoef(Xt[:, 0], c.values[:, 0])[0, 1] > 0.8  # larger a -> pushed up


def test_multiclass_and_regression_shapes():
    X, y = _data()
    y3 = np.digitize(X[:, 0], [-0.5, 0.5])
    multi = lgb.train({"objective": "multiclass", "num_class": 3, "num_threads": 1, "verbose": -1}, lgb.Dataset(X, y3), 10)
    c = tree_contributions(multi, X[:7])
    assert c.values.shape == (7, 3, 3) and c.expected.shape == (7, 3)
    assert np.allclose(c.raw_score, multi.predict(X[:7], raw_score=True), atol=1e-9)
    reg = lgb.train({"objective": "regression", "num_threads": 1, "verbose": -1}, lgb.Dataset(X, X[:, 1] * 3.0), 10)
    r = tree_contributions(reg, X[:5])
    assert r.values.shape == (5, 3) and np.allclose(r.raw_score, reg.predict(X[:5]), atol=1e-9)
