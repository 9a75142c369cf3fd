"""Classification metrics: accuracy, macro-F1, calibration (ECE, reliability bins, temperature
scaling) and out-of-scope detection. NumPy only, so the predictor and the baselines share them.

Shapes: N examples, K classes. ``probs`` (N, K) rows sum to 1; ``labels`` (N,) ints in [0, K).
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def accuracy(pred: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.asarray(pred) == np.asarray(labels))) if len(labels) else float("nan")


def macro_f1(pred: np.ndarray, labels: np.ndarray, n_classes: int | None = None) -> float:
    """Unweighted mean over classes of F1 = 2PR / (P + R); classes absent from both ``pred`` and
    ``labels`` are left out (sklearn's ``f1_score(average="macro")`` over the labels present)."""
    pred, labels = np.asarray(pred), np.asarray(labels)
    k = n_classes or int(max(pred.max(initial=-1), labels.max(initial=-1)) + 1)
    tp = np.bincount(labels[pred == labels], minlength=k).astype(float)
    n_pred = np.bincount(pred, minlength=k).astype(float)
    n_true = np.bincount(labels, minlength=k).astype(float)
    present = (n_pred + n_true) > 0
    denom = n_pred + n_true  # 2TP / (2TP + FP + FN) = 2TP / (n_pred + n_true)
    f1 = np.divide(2 * tp, denom, out=np.zeros(k), where=denom > 0)
    return float(f1[present].mean()) if present.any() else float("nan")


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def top_log_odds(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """log(p / (1 - p)) of each row's top calibrated probability p, computed from the logits so that it never saturates.

    Out-of-scope thresholds are chosen on this score, not on p: a sharpening temperature puts a confident
    model's top probability at exactly 1.0 (a margin over ~37 nats) on commands and strangers alike, and a
    threshold on p can then no longer tell them apart. The assistant's small test model chose p >= 1.0 and let
    67% of out-of-domain requests through; on log-odds, the same model's threshold let 12% through.
    """
    z = np.asarray(logits, dtype=np.float64) / temperature
    rows = np.arange(len(z))
    rest = z - z.max(axis=1, keepdims=True)  # <= 0, so exp never overflows
    rest[rows, z.argmax(axis=1)] = -np.inf
    with np.errstate(divide="ignore"):  # every other class 745+ nats below (or none): +inf
        return -np.log(np.exp(rest).sum(axis=1))


def log_odds_to_probability(t: float) -> float:
    """The probability a log-odds threshold stands for (for reading; decisions compare log-odds)."""
    return float(0.5 * (1.0 + np.tanh(0.5 * t))) if np.isfinite(t) else (1.0 if t > 0 else 0.0)


def probability_to_log_odds(p: float) -> float:
    """A probability threshold as log-odds: 0 -> -inf (reject nothing), 1 -> +inf."""
    p = float(p)
    if p <= 0:
        return float("-inf")
    if p >= 1:
        return float("inf")
    return float(np.log(p) - np.log1p(-p))


def oos_calibration(log_odds: float) -> dict[str, float | None]:
    """The out-of-scope threshold as calibration.json stores it: the decision on log-odds (None: reject
    nothing on confidence, JSON has no -inf) and, for reading, the probability it stands for."""
    return {"oos_log_odds": float(log_odds) if np.isfinite(log_odds) else None, "oos_threshold": log_odds_to_probability(log_odds)}


def oos_log_odds_of(calibration: dict) -> float:
    """The log-odds threshold of a calibration.json (older runs stored only a probability threshold)."""
    if "oos_log_odds" in calibration:
        t = calibration["oos_log_odds"]
        return float("-inf") if t is None else float(t)
    return probability_to_log_odds(calibration.get("oos_threshold", 0.0))


def reliability_bins(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> list[dict]:
    """Equal-width bins of the top-class confidence: count, mean confidence and accuracy of each
    non-empty bin (what a reliability diagram draws)."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)  # (lo, hi] bins, 0 in the first
    out = []
    for b in range(n_bins):
        m = which == b
        if m.any():
            out.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "count": int(m.sum()),
                        "confidence": float(conf[m].mean()), "accuracy": float(correct[m].mean())})
    return out


def ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error (Guo et al. 2017): sum over bins of |accuracy - confidence|
    weighted by the bin's share of examples, on the top class."""
    n = len(labels)
    if n == 0:
        return float("nan")
    return float(sum(b["count"] / n * abs(b["accuracy"] - b["confidence"]) for b in reliability_bins(probs, labels, n_bins)))


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    p = softmax(logits, temperature)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, None))))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 minimising validation NLL of softmax(logits / T) (temperature scaling, Guo et al.
    2017): one parameter, so it changes confidences but never the predicted class. Searched on
    log T in [1/20, 20] (a bounded 1-D problem: Brent's method)."""
    from scipy.optimize import minimize_scalar

    if len(labels) == 0:
        return 1.0
    res = minimize_scalar(lambda log_t: nll(logits, labels, float(np.exp(log_t))), bounds=(np.log(0.05), np.log(20.0)),
                          method="bounded", options={"xatol": 1e-4})
    return float(np.exp(res.x))


def oos_threshold(confidence: np.ndarray, is_oos: np.ndarray, predicted_oos: np.ndarray | None = None,
                  correct: np.ndarray | None = None, target_recall: float = 0.95) -> tuple[float, str]:
    """The confidence below which a query is called out of scope, chosen on validation data.

    ``confidence``: any score that grows with the model's belief that the row is in scope, a
    probability or better ``top_log_odds``; the threshold comes back on the same scale, -inf when
    nothing should be rejected on confidence.

    With out-of-scope rows (``is_oos`` any): the threshold maximising joint accuracy, where an
    in-scope row counts when it is kept and ``correct`` and an out-of-scope row when it is
    rejected (``predicted_oos`` rows are rejected whatever the threshold). Without: the largest
    threshold that keeps ``target_recall`` of the in-scope rows. Returns (threshold, how chosen).
    """
    confidence, is_oos = np.asarray(confidence, float), np.asarray(is_oos, bool)
    if not len(confidence):
        return float("-inf"), "no validation rows: nothing is rejected"
    if not is_oos.any():
        t = float(np.quantile(confidence, 1.0 - target_recall, method="lower"))
        return t, f"keeps {target_recall:.0%} of the in-scope validation queries (no out-of-scope rows to tune on)"
    pre = np.zeros_like(is_oos) if predicted_oos is None else np.asarray(predicted_oos, bool)
    ok = np.ones_like(is_oos) if correct is None else np.asarray(correct, bool)
    best_t, best = rejection_threshold(confidence, lambda rejected: np.mean(np.where(is_oos, pre | rejected, ~(pre | rejected) & ok)))
    return best_t, f"maximises joint accuracy on validation ({best:.4f}: in-scope kept and right, out-of-scope rejected)"


def rejection_threshold(confidence: np.ndarray, score: Callable[[np.ndarray], float]) -> tuple[float, float]:
    """(threshold, its score): the rule "reject when confidence < threshold" that maximises ``score(rejected)``
    over every way validation can be cut (nothing rejected, or below each distinct confidence).

    Every threshold between two neighbouring validation confidences cuts validation the same way; this one sits in
    the middle of that gap (on the scale given: log-odds are the one to give), the widest margin to the rows on
    either side, instead of on the lowest row it keeps: at the gap's top, any new command a hair less sure than every
    validation command is turned away, however far it is from the strangers.
    """
    confidence = np.asarray(confidence, float)
    cuts = np.concatenate([[-np.inf], np.unique(confidence)])
    best_k, best = 0, -np.inf
    for k, t in enumerate(cuts):
        s = float(score(confidence < t))
        if s > best + 1e-12:
            best_k, best = k, s
    t = float(cuts[best_k])
    below = float(cuts[best_k - 1]) if best_k >= 1 else float("-inf")
    if np.isfinite(below) and np.isfinite(t):
        t = 0.5 * (below + t)
    return t, best


def oos_metrics(rejected: np.ndarray, is_oos: np.ndarray, correct: np.ndarray) -> dict[str, float]:
    """Out-of-scope detection as a binary task (positive = out of scope), and what it costs in scope.

    ``rejected``: the model flagged the row out of scope; ``correct``: its label was right.
    """
    rejected, is_oos, correct = (np.asarray(a, bool) for a in (rejected, is_oos, correct))
    tp = float((rejected & is_oos).sum())
    precision = tp / rejected.sum() if rejected.any() else float("nan")
    recall = tp / is_oos.sum() if is_oos.any() else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    ins = ~is_oos
    return {
        "oos_precision": float(precision), "oos_recall": float(recall), "oos_f1": float(f1),
        "in_scope_kept": float((~rejected[ins]).mean()) if ins.any() else float("nan"),
        "in_scope_accuracy": float((correct & ~rejected)[ins].mean()) if ins.any() else float("nan"),
        "joint_accuracy": float(np.mean(np.where(is_oos, rejected, ~rejected & correct))),
    }
