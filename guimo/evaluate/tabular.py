"""Metrics of the tabular scenarios (fraud, credit, health), shared by the transformer and the
baselines so that every model in a report is scored by the same code.

- ``binary_metrics``: ROC-AUC, PR-AUC (average precision: the area that matters when positives are
  rare), recall at 1 % false-positive rate (how much fraud a team catches when it can review 1 % of
  the honest traffic), expected calibration error, accuracy, and with a cost matrix the cost per row.
- ``multiclass_metrics``, ``regression_metrics`` and ``summarize_folds`` (k-fold mean and spread).

Shapes: N rows; ``y_true`` (N,) class indices (binary: 1 is the positive class); ``p_pos`` (N,)
probabilities of class 1; ``proba`` (N, K) rows summing to 1. A cost matrix is indexed
``cost[true][predicted]``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from guimo.errors import GuimoError
from guimo.evaluate.classification import ece as top_label_ece

ECE_BINS = 15  # equal-width bins of the top-label confidence, as guimo.evaluate.classification (Guo et al. 2017)


def _binary_inputs(y_true, p_pos) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(np.int64).ravel()
    p = np.asarray(p_pos, dtype=np.float64).ravel()
    if len(y) != len(p):
        raise GuimoError(f"{len(y)} labels but {len(p)} scores")
    if len(y) == 0:
        raise GuimoError("no rows to score")
    if not np.isin(y, (0, 1)).all():
        raise GuimoError(f"binary labels must be 0 or 1, got {sorted(set(np.unique(y).tolist()) - {0, 1})[:5]}")
    if np.isnan(p).any():
        raise GuimoError("scores contain NaN")
    return y, p


def _probabilities(p: np.ndarray) -> np.ndarray:
    if p.min() < 0 or p.max() > 1:
        raise GuimoError(f"expected probabilities in [0, 1], got values in [{p.min():.3g}, {p.max():.3g}] (logits? apply a sigmoid)")
    return p


def recall_at_fpr(y_true, scores, fpr: float = 0.01) -> float:
    """True-positive rate at false-positive rate ``fpr``, read off the ROC curve.

    Between two operating points of the curve the straight line is achievable (pick the higher threshold
    at random a fraction of the time), so the rate is interpolated linearly there; at a vertical step
    (several positives sharing a score range with no negative) the top of the step counts. Needs both classes.
    """
    from sklearn.metrics import roc_curve

    y, s = _binary_inputs(y_true, scores)
    if y.min() == y.max():
        raise GuimoError("recall at a false-positive rate needs both classes among the labels")
    f, t, _ = roc_curve(y, s)
    i = int(np.searchsorted(f, fpr, side="right")) - 1  # last point with f <= fpr (the top of any vertical step there)
    if f[i] == fpr or i == len(f) - 1:
        return float(t[i])
    w = (fpr - f[i]) / (f[i + 1] - f[i])
    return float(t[i] + w * (t[i + 1] - t[i]))


def _cost(y: np.ndarray, pred: np.ndarray, cost: np.ndarray) -> float:
    return float(cost[y, pred].sum())


def cost_optimal_threshold(y_true, p_pos, cost_matrix: Sequence[Sequence[float]]) -> tuple[float, float]:
    """The threshold on ``p_pos`` (predict positive when ``p >= threshold``) with the least total cost on
    these rows, and that cost per row. Choose it on validation rows and apply it to the test rows: chosen
    on the test rows themselves it flatters the model."""
    y, p = _binary_inputs(y_true, p_pos)
    c = _cost_array(cost_matrix)
    order = np.argsort(-p, kind="stable")
    ys, ps = y[order], p[order]
    # Predict positive for the top j rows (j = 0..N): cost(j) = FP(j)*c01 + FN(j)*c10 + TP(j)*c11 + TN(j)*c00.
    tp = np.concatenate([[0], np.cumsum(ys)])
    fp = np.concatenate([[0], np.cumsum(1 - ys)])
    pos, neg = tp[-1], fp[-1]
    total = fp * c[0, 1] + (pos - tp) * c[1, 0] + tp * c[1, 1] + (neg - fp) * c[0, 0]
    cut_ok = np.concatenate([[True], ps[1:] != ps[:-1], [True]])  # a threshold cannot split tied scores
    j = int(np.flatnonzero(cut_ok)[np.argmin(total[cut_ok])])
    threshold = float(ps[j - 1]) if j > 0 else float(np.nextafter(ps[0], np.inf))
    return threshold, float(total[j] / len(y))


def _cost_array(cost_matrix) -> np.ndarray:
    c = np.asarray(cost_matrix, dtype=np.float64)
    if c.shape != (2, 2):
        raise GuimoError(f"a binary cost matrix is 2x2 [[c(true 0, pred 0), c(0, 1)], [c(1, 0), c(1, 1)]], got shape {c.shape}")
    return c


def bayes_threshold(cost_matrix: Sequence[Sequence[float]]) -> float:
    """The threshold that minimises expected cost for calibrated probabilities:
    predict positive when ``p * (c10 - c11) >= (1 - p) * (c01 - c00)``. For German credit's 5:1 matrix, 1/6."""
    c = _cost_array(cost_matrix)
    fp_cost, fn_cost = c[0, 1] - c[0, 0], c[1, 0] - c[1, 1]
    if fp_cost + fn_cost <= 0:
        raise GuimoError(f"cost matrix {c.tolist()}: errors must cost more than correct predictions")
    return float(fp_cost / (fp_cost + fn_cost))


def binary_metrics(y_true, p_pos, *, cost_matrix: Sequence[Sequence[float]] | None = None,
                   threshold: float | None = None) -> dict[str, float]:
    """Scores of positive-class probabilities ``p_pos`` against 0/1 labels ``y_true``.

    - ``roc_auc``, ``pr_auc`` (average precision), ``recall_at_1pct_fpr`` (see ``recall_at_fpr``),
      ``positive_rate`` (the base rate: PR-AUC's value for a random ranking);
    - ``ece``: expected calibration error over ``ECE_BINS`` equal-width bins of the top-label confidence
      ``max(p, 1 - p)``, the same definition as the text classifiers';
    - ``accuracy`` at ``threshold`` (0.5, or the cost matrix's Bayes threshold when one is given);
    - with ``cost_matrix``: ``cost_per_row`` at that threshold (``cost_threshold``); ``cost_per_row_oracle``
      and ``cost_threshold_oracle`` at the threshold best on these very rows (optimistic, for reference);
      ``cost_per_row_constant``, the cost of the better of always-positive and always-negative.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    y, p = _binary_inputs(y_true, p_pos)
    _probabilities(p)
    if y.min() == y.max():
        raise GuimoError(f"ROC-AUC and PR-AUC need both classes among the labels; all {len(y)} rows are {y[0]}")
    if threshold is None:
        threshold = bayes_threshold(cost_matrix) if cost_matrix is not None else 0.5
    pred = (p >= threshold).astype(np.int64)
    probs = np.stack([1.0 - p, p], axis=1)
    out = {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "recall_at_1pct_fpr": recall_at_fpr(y, p, 0.01),
        "ece": top_label_ece(probs, y, ECE_BINS),
        "accuracy": float((pred == y).mean()),
        "positive_rate": float(y.mean()),
        "threshold": float(threshold),
    }
    if cost_matrix is not None:
        c = _cost_array(cost_matrix)
        t_best, cost_best = cost_optimal_threshold(y, p, c)
        n = len(y)
        out.update({
            "cost_per_row": _cost(y, pred, c) / n,
            "cost_threshold": float(threshold),
            "cost_per_row_oracle": cost_best,
            "cost_threshold_oracle": t_best,
            "cost_per_row_constant": min(_cost(y, np.zeros(n, np.int64), c), _cost(y, np.ones(n, np.int64), c)) / n,
        })
    return out


def multiclass_metrics(y_true, proba) -> dict[str, float]:
    """``accuracy``, ``macro_f1``, ``log_loss``, ``ece`` (top label) and ``roc_auc_ovr`` (macro one-vs-rest,
    only when every class occurs among the labels) of class probabilities ``proba`` (N, K)."""
    from sklearn.metrics import roc_auc_score

    from guimo.evaluate.classification import macro_f1

    y = np.asarray(y_true).astype(np.int64).ravel()
    pr = np.asarray(proba, dtype=np.float64)
    if pr.ndim != 2 or len(pr) != len(y):
        raise GuimoError(f"probabilities must be (N, K) with N = {len(y)} labels, got shape {pr.shape}")
    k = pr.shape[1]
    if len(y) == 0 or y.min() < 0 or y.max() >= k:
        raise GuimoError(f"labels must be class indices in [0, {k})")
    pred = pr.argmax(axis=1)
    out = {
        "accuracy": float((pred == y).mean()),
        "macro_f1": float(macro_f1(pred, y, k)),
        "log_loss": float(-np.mean(np.log(np.clip(pr[np.arange(len(y)), y], 1e-15, 1.0)))),
        "ece": top_label_ece(pr, y, ECE_BINS),
    }
    if len(np.unique(y)) == k:
        out["roc_auc_ovr"] = float(roc_auc_score(y, pr / pr.sum(axis=1, keepdims=True), multi_class="ovr", average="macro"))
    return out


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    """``rmse``, ``mae`` and ``r2`` (1 - residual / total sum of squares: 0 is the mean predictor)."""
    y = np.asarray(y_true, dtype=np.float64).ravel()
    f = np.asarray(y_pred, dtype=np.float64).ravel()
    if len(y) != len(f) or len(y) == 0:
        raise GuimoError(f"{len(y)} targets but {len(f)} predictions")
    err = f - y
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return {
        "rmse": float(np.sqrt(np.mean(err ** 2))),
        "mae": float(np.mean(np.abs(err))),
        "r2": 1.0 - float((err ** 2).sum()) / ss_tot if ss_tot > 0 else float("nan"),
    }


def summarize_folds(folds: list[dict]) -> dict[str, dict[str, float]]:
    """``{metric: {"mean": .., "std": .., "n": ..}}`` over the numeric metrics every fold reports; ``std``
    is the sample standard deviation (ddof=1; 0 for a single fold), the spread a reader compares models by."""
    if not folds:
        raise GuimoError("no folds to summarise")
    keys = [k for k, v in folds[0].items()
            if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
            and all(isinstance(f.get(k), (int, float, np.number)) for f in folds)]
    out = {}
    for k in keys:
        v = np.array([float(f[k]) for f in folds])
        out[k] = {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": len(v)}
    return out
