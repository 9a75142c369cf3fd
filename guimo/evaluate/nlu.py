"""Joint intent + slot metrics, slot-confidence calibration, and the cheap baseline beside the model.

- ``span_f1``: slot F1 by span under conlleval's rules (a span counts only when its type, start and
  end all match; an I-x without its B-x opens a span, as ``guimo.assistant.types.bio_spans`` reads it),
  micro-averaged, and per slot type.
- ``sentence_accuracy``: the intent and every tag right (JointBERT's "semantic frame accuracy").
- ``span_confidences`` / ``fit_slot_temperature``: a predicted span's confidence is the smallest
  marginal of its words' tags; the temperature of the CRF's potentials is chosen on validation to
  minimise the log loss of "this span is right", and ECE is reported before and after, overall,
  per slot type and per intent.
- ``LexiconBaseline``: what a keyword assistant does, an honest floor: intents by TF-IDF (word 1-2-grams
  and char n-grams) + a linear SVM, slots by the longest match of the slot values seen in training
  (each phrase tagged with the slot it carried most often).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Callable, Sequence

import numpy as np

from guimo.assistant.types import bio_spans
from guimo.evaluate.classification import rejection_threshold


def span_f1(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
    """Micro precision, recall, F1 over spans, and F1 per slot type (conlleval)."""
    tp, n_pred, n_gold = Counter(), Counter(), Counter()
    for g, p in zip(gold, pred):
        gs, ps = set(bio_spans(list(g))), set(bio_spans(list(p)))
        for s in gs:
            n_gold[s[0]] += 1
        for s in ps:
            n_pred[s[0]] += 1
            if s in gs:
                tp[s[0]] += 1
    T, P, G = sum(tp.values()), sum(n_pred.values()), sum(n_gold.values())
    precision = T / P if P else 0.0
    recall = T / G if G else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    per_slot = {}
    for slot in sorted(set(n_gold) | set(n_pred)):
        d = n_pred[slot] + n_gold[slot]
        per_slot[slot] = {"f1": 2 * tp[slot] / d if d else 0.0, "gold": n_gold[slot], "predicted": n_pred[slot]}
    return {"precision": precision, "recall": recall, "f1": f1, "spans": G, "per_slot": per_slot}


def sentence_accuracy(gold_intents: Sequence[str], pred_intents: Sequence[str], gold_tags, pred_tags) -> float:
    ok = [gi == pi and list(gt) == list(pt) for gi, pi, gt, pt in zip(gold_intents, pred_intents, gold_tags, pred_tags)]
    return float(np.mean(ok)) if ok else float("nan")


def span_confidences(tags: Sequence[str], marginals: np.ndarray, tag_index: dict[str, int]) -> list[tuple[tuple[str, int, int], float]]:
    """Each predicted span with its confidence: the smallest marginal P(word has its predicted tag)."""
    out = []
    for span in bio_spans(list(tags)):
        _, s, e = span
        out.append((span, float(min(marginals[i, tag_index[tags[i]]] for i in range(s, e)))))
    return out


def binary_ece(conf: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> float:
    """ECE of confidences of binary events (a span or an intent being right), equal-width bins."""
    conf, correct = np.asarray(conf, float), np.asarray(correct, float)
    if not len(conf):
        return float("nan")
    edges = np.linspace(0, 1, n_bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    return float(sum(abs(correct[which == b].mean() - conf[which == b].mean()) * (which == b).mean()
                     for b in range(n_bins) if (which == b).any()))


def log_loss(conf: np.ndarray, correct: np.ndarray) -> float:
    c = np.clip(np.asarray(conf, float), 1e-6, 1 - 1e-6)
    y = np.asarray(correct, float)
    return float(-np.mean(y * np.log(c) + (1 - y) * np.log(1 - c))) if len(c) else float("nan")


def fit_slot_temperature(score: Callable[[float], tuple[np.ndarray, np.ndarray]]) -> float:
    """The temperature T in [0.1, 10] minimising the log loss of span correctness, where ``score(T)``
    gives (confidences, correct) of the validation spans at T (a bounded 1-D search on log T)."""
    from scipy.optimize import minimize_scalar

    conf, _ = score(1.0)
    if not len(conf):
        return 1.0
    res = minimize_scalar(lambda lt: log_loss(*score(float(np.exp(lt)))), bounds=(np.log(0.1), np.log(10.0)),
                          method="bounded", options={"xatol": 1e-3})
    return float(np.exp(res.x))


def balanced_oos_threshold(confidence: np.ndarray, is_oos: np.ndarray, correct: np.ndarray,
                           predicted_oos: np.ndarray | None = None) -> tuple[float, str]:
    """The confidence below which an utterance is rejected, maximising the mean of the in-scope rate (kept and
    right) and the out-of-scope rate (rejected), each over its own rows. ``confidence`` is any score that
    grows with belief in scope (best ``classification.top_log_odds``); -inf means reject nothing.

    Joint accuracy over all rows (``guimo.evaluate.classification.oos_threshold``) lets the larger group decide:
    with HWU64's 8,851 non-iot validation utterances against 113 iot ones it rejected half the real commands to
    catch a few more strangers. Balanced, each side weighs half whatever its size.
    """
    conf, oos = np.asarray(confidence, float), np.asarray(is_oos, bool)
    ok = np.asarray(correct, bool)
    pre = np.zeros_like(oos) if predicted_oos is None else np.asarray(predicted_oos, bool)

    def balanced(rejected: np.ndarray) -> float:
        rejected = pre | rejected
        return 0.5 * np.mean(~rejected[~oos] & ok[~oos]) + 0.5 * np.mean(rejected[oos])

    best_t, best = rejection_threshold(conf, balanced)
    return best_t, (f"maximises balanced accuracy on validation ({best:.4f}: the mean of in-scope kept and right, "
                    f"{int((~oos).sum())} rows, and out-of-scope rejected, {int(oos.sum())} rows)")


def grouped_ece(conf: np.ndarray, correct: np.ndarray, groups: Sequence[str], n_bins: int = 15, min_count: int = 1) -> dict[str, dict]:
    """ECE of each group (intent or slot type): {group: {"ece", "count", "accuracy", "confidence"}}."""
    conf, correct = np.asarray(conf, float), np.asarray(correct, bool)
    out = {}
    groups = np.asarray(groups, dtype=object)
    for g in sorted(set(groups.tolist())):
        m = groups == g
        if m.sum() >= min_count:
            out[str(g)] = {"ece": binary_ece(conf[m], correct[m], n_bins), "count": int(m.sum()),
                           "accuracy": float(correct[m].mean()), "confidence": float(conf[m].mean())}
    return out


# -- the baseline ----------------------------------------------------------------------------------


class LexiconBaseline:
    """TF-IDF + linear SVM intents; slots by longest match of phrases seen as slot values in training."""

    def __init__(self, svm_c: float = 1.0, max_phrase: int = 8) -> None:
        self.svm_c, self.max_phrase = svm_c, max_phrase
        self.phrases: dict[tuple[str, ...], str] = {}
        self.clf = None

    def fit(self, words: Sequence[Sequence[str]], tags: Sequence[Sequence[str]], intents: Sequence[str]) -> "LexiconBaseline":
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import make_pipeline, make_union
        from sklearn.svm import LinearSVC

        seen: dict[tuple[str, ...], Counter] = defaultdict(Counter)
        for ws, ts in zip(words, tags):
            for slot, s, e in bio_spans(list(ts)):
                if e - s <= self.max_phrase:
                    seen[tuple(w.lower() for w in ws[s:e])][slot] += 1
        self.phrases = {p: c.most_common(1)[0][0] for p, c in seen.items()}
        texts = [" ".join(ws) for ws in words]
        if len(set(intents)) > 1:
            features = make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                                  TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True))
            self.clf = make_pipeline(features, LinearSVC(C=self.svm_c)).fit(texts, list(intents))
        else:
            self.only = intents[0]
        return self

    def tag(self, words: Sequence[str]) -> list[str]:
        low = [w.lower() for w in words]
        tags = ["O"] * len(words)
        i = 0
        while i < len(words):
            for n in range(min(self.max_phrase, len(words) - i), 0, -1):
                slot = self.phrases.get(tuple(low[i : i + n]))
                if slot is not None:
                    tags[i : i + n] = [f"B-{slot}"] + [f"I-{slot}"] * (n - 1)
                    i += n
                    break
            else:
                i += 1
        return tags

    def predict(self, words: Sequence[Sequence[str]]) -> tuple[list[str], list[list[str]]]:
        texts = [" ".join(ws) for ws in words]
        intents = list(self.clf.predict(texts)) if self.clf is not None else [self.only] * len(texts)
        return [str(i) for i in intents], [self.tag(ws) for ws in words]
