"""Exact TreeSHAP contributions of a LightGBM model (Lundberg et al. 2020), without the shap package.

``Booster.predict(X, pred_contrib=True)`` returns, per row, one contribution per feature plus the expected
value over the training data (the last column); they sum to the raw score (the log-odds for binary, the
prediction for regression). So the baseline of a tree explanation is "the average training row", while the
transformer's Integrated Gradients are relative to one baseline row: compare which features lead and their
signs, not the sizes one to one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class TreeContributions:
    values: np.ndarray  # (N, F), or (N, K, F) for K classes
    expected: np.ndarray  # (N,) or (N, K): the training-data expectation of the raw score
    raw_score: np.ndarray  # (N,) or (N, K): expected + values.sum(-1)
    feature_names: list[str]


def tree_contributions(booster, X) -> TreeContributions:
    """TreeSHAP of ``booster`` (a ``lightgbm.Booster``) on ``X`` (what it was trained on: a frame or an array).

    The raw score is summed from the contributions, so ``raw_score == booster.predict(X, raw_score=True)`` up
    to float rounding: the tests hold LightGBM to that.
    """
    contrib = np.asarray(booster.predict(X, pred_contrib=True), dtype=np.float64)
    names = list(booster.feature_name())
    f = len(names)
    k = contrib.shape[1] // (f + 1)
    if k > 1:  # multiclass: K blocks of (F + 1) columns
        contrib = contrib.reshape(len(contrib), k, f + 1)
    values, expected = contrib[..., :f], contrib[..., f]
    return TreeContributions(values=values, expected=expected, raw_score=expected + values.sum(-1), feature_names=names)
