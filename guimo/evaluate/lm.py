"""Language-model metrics and the count-based baselines a transformer must beat.

loss = mean negative log-likelihood per token (nats); perplexity = exp(loss);
bits per byte = total NLL / ln 2 / bytes of text predicted — comparable across tokenizers.
"""

from __future__ import annotations

import math

import numpy as np


def lm_summary(nll_sum: float, n_tokens: int, n_bytes: int) -> dict[str, float]:
    loss = nll_sum / max(1, n_tokens)
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "bits_per_byte": nll_sum / math.log(2) / max(1, n_bytes)}


def score_counts(nll: np.ndarray, targets: np.ndarray, token_bytes: np.ndarray) -> dict[str, float]:
    return lm_summary(float(nll.sum()), len(targets), int(token_bytes[targets].sum()))


class UnigramModel:
    """p(t) from training counts with add-one smoothing."""

    def __init__(self, logp: np.ndarray) -> None:
        self.logp = logp

    @classmethod
    def fit(cls, tokens: np.ndarray, vocab: int) -> "UnigramModel":
        counts = np.bincount(tokens.astype(np.int64), minlength=vocab).astype(np.float64) + 1.0
        return cls(np.log(counts / counts.sum()))

    def nll(self, context: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return -self.logp[targets]


class BigramModel:
    """Jelinek-Mercer interpolation: p(t|c) = lam * count(c,t)/count(c) + (1-lam) * p_unigram(t).

    ``lam`` is picked on held-out tokens from a small grid, so the baseline is as strong as a
    bigram model honestly gets.
    """

    def __init__(self, pair_counts: dict, ctx_counts: np.ndarray, unigram: UnigramModel, lam: float, vocab: int) -> None:
        self.pairs, self.ctx_counts, self.unigram, self.lam, self.vocab = pair_counts, ctx_counts, unigram, lam, vocab

    @classmethod
    def fit(cls, tokens: np.ndarray, vocab: int, unigram: UnigramModel, tune_on: np.ndarray | None = None) -> "BigramModel":
        t = tokens.astype(np.int64)
        keys = t[:-1] * vocab + t[1:]
        uniq, counts = np.unique(keys, return_counts=True)
        ctx_counts = np.bincount(t[:-1], minlength=vocab).astype(np.float64)
        model = cls((uniq, counts.astype(np.float64)), ctx_counts, unigram, 0.9, vocab)
        if tune_on is not None and len(tune_on) > 1:
            c, y = tune_on[:-1].astype(np.int64), tune_on[1:].astype(np.int64)
            best = min((model._with(l).nll(c, y).mean(), l) for l in (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99))
            model.lam = best[1]
        return model

    def _with(self, lam: float) -> "BigramModel":
        return BigramModel(self.pairs, self.ctx_counts, self.unigram, lam, self.vocab)

    def nll(self, context: np.ndarray, targets: np.ndarray) -> np.ndarray:
        uniq, counts = self.pairs
        keys = context.astype(np.int64) * self.vocab + targets.astype(np.int64)
        pos = np.searchsorted(uniq, keys)
        pos_c = np.minimum(pos, len(uniq) - 1)
        pair = np.where(uniq[pos_c] == keys, counts[pos_c], 0.0)
        ctx = self.ctx_counts[context]
        p_bigram = np.divide(pair, ctx, out=np.zeros_like(pair), where=ctx > 0)
        p = self.lam * p_bigram + (1 - self.lam) * np.exp(self.unigram.logp[targets])
        return -np.log(p)
