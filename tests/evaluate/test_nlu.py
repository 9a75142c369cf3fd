"""NLU metrics: conlleval span F1, sentence accuracy, slot-confidence calibration, the lexicon baseline."""

from __future__ import annotations

import numpy as np
import pytest

from guimo.evaluate.nlu import (LexiconBaseline, binary_ece, fit_slot_temperature, grouped_ece, log_loss, sentence_accuracy,
                                span_confidences, span_f1)


def test_span_f1_counts_whole_spans_only_under_conlleval_rules():
    gold = [["B-room", "I-room", "O", "B-device"], ["O", "B-color"]]
    # room span cut short (wrong), device right, colour opened by an I- (conlleval reads it as a span: right)
    pred = [["B-room", "O", "O", "B-device"], ["O", "I-color"]]
    r = span_f1(gold, pred)
    assert (r["precision"], r["recall"]) == (pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert r["f1"] == pytest.approx(2 / 3) and r["spans"] == 3
    assert r["per_slot"]["room"]["f1"] == 0.0 and r["per_slot"]["device"]["f1"] == 1.0 and r["per_slot"]["color"]["f1"] == 1.0
    assert span_f1([["O"]], [["O"]])["f1"] == 0.0  # no spans at all: nothing found


def test_sentence_accuracy_needs_intent_and_every_tag():
    assert sentence_accuracy(["a", "a", "b"], ["a", "b", "b"], [["O"], ["O"], ["B-x"]], [["O"], ["O"], ["O"]]) == pytest.approx(1 / 3)


def test_span_confidence_is_the_least_sure_word():
    tags = ["B-room", "I-room", "O"]
    marg = np.array([[0.1, 0.9, 0.0], [0.3, 0.0, 0.7], [1.0, 0.0, 0.0]])
    assert span_confidences(tags, marg, {"O": 0, "B-room": 1, "I-room": 2}) == [(("room", 0, 2), pytest.approx(0.7))]


def test_slot_temperature_fixes_overconfident_spans():
    rng = np.random.default_rng(0)
    true_p = rng.uniform(0.5, 1.0, 4000)
    right = rng.random(4000) < true_p
    logit = np.log(true_p / (1 - true_p))

    def score(T: float):  # an overconfident model: logits 3x too large; T = 3 recovers the truth
        return 1 / (1 + np.exp(-3 * logit / T)), right

    T = fit_slot_temperature(score)
    assert T == pytest.approx(3.0, rel=0.2)
    before, after = binary_ece(*score(1.0)), binary_ece(*score(T))
    assert after < before / 2 and log_loss(*score(T)) < log_loss(*score(1.0))
    g = grouped_ece(*score(T), groups=["a", "b"] * 2000)
    assert set(g) == {"a", "b"} and g["a"]["count"] == 2000


def test_lexicon_baseline_matches_the_longest_phrase_seen():
    words = [["turn", "on", "the", "living", "room", "lamp"], ["turn", "off", "the", "lamp"], ["dim", "the", "living", "room"]]
    tags = [["O", "O", "O", "B-room", "I-room", "B-device"], ["O", "O", "O", "B-device"], ["O", "O", "B-room", "I-room"]]
    base = LexiconBaseline().fit(words, tags, ["turn_on", "turn_off", "decrease"])
    intents, pred = base.predict([["turn", "on", "the", "living", "room", "lamp"], ["living", "lamp", "room"]])
    assert intents[0] == "turn_on"
    assert pred[0] == tags[0]
    assert pred[1] == ["O", "B-device", "O"]  # "living" alone and "room" alone were never slot values


def test_balanced_threshold_is_not_decided_by_the_larger_group():
    from guimo.evaluate.nlu import balanced_oos_threshold

    rng = np.random.default_rng(0)
    ins = rng.uniform(0.6, 1.0, 100)  # 100 in-scope rows, all right
    far = np.concatenate([rng.uniform(0.0, 0.7, 9000), rng.uniform(0.9, 1.0, 100)])  # 9,100 strangers, 100 of them confident
    conf = np.concatenate([ins, far])
    oos = np.concatenate([np.zeros(100, bool), np.ones(9100, bool)])
    t, how = balanced_oos_threshold(conf, oos, ~oos)
    assert 0.6 < t <= 0.75 and "balanced" in how  # keeps the commands above ~0.7, gives up the few confident strangers
    assert np.mean(ins >= t) > 0.85
