"""Answer user questions from an FAQ: retrieve (BM25 + dense, fused), score, or say "no answer".

Retrieval reads each entry's question and answer. BM25 (``guimo.index.sparse``) matches the
words; the dense side embeds each entry twice, its question alone and question + answer, and
scores a query by the larger cosine: user wordings are short paraphrases of the question, while
the answer carries the words the question leaves out (StackFAQ: BM25 on the question alone
0.59 nDCG@10, on question + answer 0.78). The two rankings are merged by reciprocal-rank fusion
(``guimo.index.fusion.rrf``) over a candidate pool, and the pool is ordered either by the fused
score (``order="rrf"``) or by the dense score (``order="dense"``). Ordered by the dense score, a
candidate only BM25 found ranks below every one of the dense top ``pool``, so the top ``k <= pool``
is the dense ranking itself: "dense" means "trust the encoder", "rrf" means "let the words vote".
Which is better depends on the FAQ (on StackFAQ, BM25 0.735 and the encoder 0.97 on test, RRF
drags the encoder down to 0.89; on FAQs of product codes and error numbers, words matter); the
`faq` scenario chooses it on validation wordings.

"No answer": the top entry's dense cosine is the confidence; below ``threshold`` (chosen on
validation queries and out-of-domain ones, ``choose_threshold``) the answerer declines. A cosine,
unlike an RRF score, does not depend on how many entries the FAQ has.

The encoder is any ``TextEncoder``-like object with ``encode(texts) -> (N, d)`` unit-norm
tensors: the packaged MiniLM, or the one the `faq` scenario fine-tuned on the FAQ's own wordings.
Nothing here imports training code, so the server can load it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np

from guimo.data.faq import FaqEntry
from guimo.errors import GuimoError
from guimo.index.fusion import rrf
from guimo.index.sparse import Hit, SparseIndex


class Encoder(Protocol):
    def encode(self, texts: Sequence[str], *, batch_size: int = 32) -> Any: ...


@dataclass(frozen=True)
class AnswerSettings:
    """How the answerer ranks and when it declines (stored in a run as ``faq_settings.json``)."""

    threshold: float = float("-inf")  # dense cosine of the top entry below which the answer is "no answer"
    pool: int = 50  # candidates per retriever that fusion sees
    order: str = "dense"  # "dense": the fused pool ordered by dense score (= the dense ranking); "rrf": by the fused score


class FaqAnswerer:
    """An FAQ index: ``rank(queries)`` for evaluation, ``answer(texts)`` for users."""

    def __init__(self, entries: Sequence[FaqEntry], encoder: Encoder, settings: AnswerSettings | None = None,
                 *, batch_size: int = 32) -> None:
        if not entries:
            raise GuimoError("an FAQ answerer needs at least one entry")
        if settings is not None and settings.order not in ("dense", "rrf"):
            raise GuimoError(f"order must be 'dense' or 'rrf', got {settings.order!r}")
        self.entries = list(entries)
        self.by_id = {e.id: e for e in self.entries}
        self.row = {e.id: i for i, e in enumerate(self.entries)}
        self.encoder = encoder
        self.settings = settings or AnswerSettings()
        self.batch_size = batch_size
        self.sparse = SparseIndex.build((e.id, e.text, None) for e in self.entries)
        self.q_emb = self._embed([e.question for e in self.entries])  # (N, d)
        self.qa_emb = self._embed([e.text for e in self.entries])  # (N, d)

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.encoder.encode(list(texts), batch_size=self.batch_size), dtype=np.float32)

    def dense_scores(self, queries: Sequence[str]) -> np.ndarray:
        """(Q, N) cosine of each query with each entry: the larger of question and question + answer."""
        q = self._embed(queries)
        return np.maximum(q @ self.q_emb.T, q @ self.qa_emb.T)

    def rank(self, queries: Sequence[str], k: int = 10, *, mode: str = "hybrid") -> list[list[Hit]]:
        """The top ``k`` entries per query (``Hit.score``: the dense cosine, except in mode "bm25").

        ``mode``: "bm25", "dense" or "hybrid" (fusion then ``settings.order``).
        """
        if mode not in ("bm25", "dense", "hybrid"):
            raise GuimoError(f"mode must be bm25, dense or hybrid, got {mode!r}")
        if mode == "bm25":
            return self.sparse.search_many(list(queries), k=k)
        pool = max(k, self.settings.pool)
        dense = self.dense_scores(queries)
        out = []
        sparse = self.sparse.search_many(list(queries), k=pool) if mode == "hybrid" else [[]] * len(queries)
        for row, bm25_hits in zip(dense, sparse):
            top = np.argsort(-row, kind="stable")[:pool]
            dense_hits = [Hit(self.entries[i].id, float(row[i])) for i in top]
            if mode == "dense":
                out.append(dense_hits[:k])
                continue
            fused = rrf([bm25_hits, dense_hits], top=pool)
            if self.settings.order == "dense":
                fused = sorted(fused, key=lambda h: -row[self.row[h.id]])
            out.append([Hit(h.id, float(row[self.row[h.id]])) for h in fused[:k]])
        return out

    def answer(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """Per text: ``{"answer", "question", "id", "score", "no_answer"}``; a declined answer has
        ``no_answer`` true and ``answer``/``question``/``id`` of the closest entry all None."""
        if isinstance(texts, str):
            raise TypeError("answer() takes a list of texts")
        out = []
        for hits in self.rank(texts, k=1):
            if not hits:
                out.append({"answer": None, "question": None, "id": None, "score": None, "no_answer": True})
                continue
            top = hits[0]
            declined = top.score < self.settings.threshold
            entry = self.by_id[top.id]
            out.append({"answer": None if declined else entry.answer, "question": None if declined else entry.question,
                        "id": None if declined else entry.id, "score": round(top.score, 6), "no_answer": bool(declined)})
        return out


def choose_threshold(in_domain: Sequence[float], out_of_domain: Sequence[float]) -> dict[str, float]:
    """The confidence cut that best separates answerable from out-of-domain queries.

    Maximises balanced accuracy (the mean of the share of in-domain queries answered and the
    share of out-of-domain ones declined), so the two sets count equally whatever their sizes;
    the cut sits midway between the two scores it separates. Returns the threshold and both rates.
    """
    ind, ood = np.asarray(in_domain, dtype=float), np.asarray(out_of_domain, dtype=float)
    if not len(ind) or not len(ood):
        raise GuimoError("choosing a no-answer threshold needs in-domain and out-of-domain scores")
    values = np.unique(np.concatenate([ind, ood]))
    cuts = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]])
    best = max(cuts, key=lambda t: ((ind >= t).mean() + (ood < t).mean(), -abs(t)))
    return {"threshold": float(best), "answered_in_domain": float((ind >= best).mean()),
            "declined_out_of_domain": float((ood < best).mean())}


def ndcg_at_k(rankings: Sequence[Sequence[Hit]], relevant: Sequence[set[str]], k: int = 10) -> float:
    """Mean nDCG@k with binary relevance: DCG = sum over relevant hits of 1 / log2(rank + 1),
    divided by the DCG of an ideal ranking (all relevant entries first, at most k of them)."""
    if len(rankings) != len(relevant):
        raise ValueError("one set of relevant ids per ranking")
    scores = []
    for hits, rel in zip(rankings, relevant):
        dcg = sum(1.0 / np.log2(r + 2) for r, h in enumerate(hits[:k]) if h.id in rel)
        ideal = sum(1.0 / np.log2(r + 2) for r in range(min(k, len(rel))))
        scores.append(dcg / ideal if ideal else 0.0)
    return float(np.mean(scores)) if scores else 0.0
