"""Language-model metrics and count baselines against hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from guimo.evaluate.lm import BigramModel, UnigramModel, lm_summary, score_counts


def test_summary_by_hand():
    # 4 tokens each with probability 1/4 over 8 bytes of text: 8 bits / 8 bytes = 1 bit per byte.
    s = lm_summary(4 * math.log(4), n_tokens=4, n_bytes=8)
    assert s["loss"] == pytest.approx(math.log(4))
    assert s["perplexity"] == pytest.approx(4.0)
    assert s["bits_per_byte"] == pytest.approx(1.0)
    # Bits per byte does not care how the text was cut: the same 8 bytes as 2 tokens of p=1/16.
    assert lm_summary(2 * math.log(16), 2, 8)["bits_per_byte"] == pytest.approx(1.0)


def test_unigram_is_add_one_smoothed_frequency():
    uni = UnigramModel.fit(np.array([0, 0, 1]), vocab=3)  # counts + 1 = 3, 2, 1 over 6
    assert np.exp(uni.logp) == pytest.approx([3 / 6, 2 / 6, 1 / 6])
    nll = uni.nll(np.array([0, 0]), np.array([1, 2]))
    assert nll == pytest.approx([math.log(3), math.log(6)])


def test_bigram_interpolates_with_the_unigram():
    tokens = np.array([0, 1, 0, 1, 0, 2])  # pairs: (0,1) x2, (1,0) x2, (0,2) x1; contexts: 0 x3, 1 x2
    uni = UnigramModel.fit(tokens, vocab=3)  # counts + 1 = 4, 3, 2 over 9
    bi = BigramModel.fit(tokens, vocab=3, unigram=uni)  # lambda 0.9 without tuning data
    assert bi.lam == 0.9
    nll = bi.nll(np.array([0, 0, 1, 2]), np.array([1, 2, 2, 0]))
    expected = [
        0.9 * 2 / 3 + 0.1 * 3 / 9,  # p(1|0)
        0.9 * 1 / 3 + 0.1 * 2 / 9,  # p(2|0)
        0.9 * 0 / 2 + 0.1 * 2 / 9,  # p(2|1): unseen pair, unigram only
        0.0 + 0.1 * 4 / 9,  # p(0|2): context never seen, unigram only
    ]
    assert nll == pytest.approx(-np.log(expected))


def test_bigram_lambda_is_tuned_on_held_out_tokens():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 50, 5000)  # no sequential structure: the unigram part should dominate
    uni = UnigramModel.fit(train, 50)
    bi = BigramModel.fit(train, 50, uni, tune_on=rng.integers(0, 50, 2000))
    assert bi.lam <= 0.5
    cycle = np.tile(np.arange(50), 100)  # fully predictable next token: the bigram part should dominate
    bi = BigramModel.fit(cycle, 50, UnigramModel.fit(cycle, 50), tune_on=np.tile(np.arange(50), 10))
    assert bi.lam == 0.99


def test_score_counts_uses_the_bytes_of_each_target():
    token_bytes = np.array([1, 3, 2])
    targets = np.array([1, 1, 2])  # 3 + 3 + 2 = 8 bytes
    nll = np.full(3, math.log(2))  # one bit per token
    s = score_counts(nll, targets, token_bytes)
    assert s["bits_per_byte"] == pytest.approx(3 / 8)
    assert s["loss"] == pytest.approx(math.log(2))


class _Uniform(torch.nn.Module):
    """Logits all equal: loss must be ln V for every token."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.vocab = vocab
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.zeros(*x.shape, self.vocab) + self.w


def test_score_lm_on_a_uniform_model():
    from guimo.scenarios.lm import score_lm

    vocab, block = 7, 4
    tokens = np.arange(21) % vocab  # 20 targets in 5 blocks of 4
    token_bytes = np.array([1, 2, 1, 2, 1, 2, 1])
    s = score_lm(_Uniform(vocab), tokens, block, token_bytes, batch_size=2)
    targets = tokens[1:21]
    assert s["loss"] == pytest.approx(math.log(vocab))
    assert s["perplexity"] == pytest.approx(vocab)
    assert s["bits_per_byte"] == pytest.approx(20 * math.log2(vocab) / token_bytes[targets].sum())


def test_baselines_score_exactly_the_transformer_targets():
    from guimo.scenarios.lm import TokenBlocks, block_targets

    tokens = np.arange(23)
    ctx, tgt = block_targets(tokens, block=5)
    ds = TokenBlocks(tokens, 5)
    ys = torch.cat([ds.batch([i])["y"][0] for i in range(len(ds))]).numpy()
    xs = torch.cat([ds.batch([i])["x"][0] for i in range(len(ds))]).numpy()
    assert np.array_equal(tgt, ys) and np.array_equal(ctx, xs)  # same (previous token, target) pairs
    assert len(tgt) == 20  # 4 whole blocks; the ragged tail is scored by neither


def test_token_bytes_add_up_to_the_utf8_length():
    from guimo.scenarios.lm import EOS, token_byte_lengths, train_tokenizer

    texts = ["def café(x):\n    return x * 2  # 中文注释\n"] * 20 + ["naïve → ok\n"] * 5
    tok = train_tokenizer(texts, vocab_size=300)
    lengths = token_byte_lengths(tok)
    for text in ("def café(y): return '中' + \"→\"\n", "plain ascii"):
        ids = tok.encode(text).ids
        assert lengths[ids].sum() == len(text.encode("utf-8"))
    assert lengths[tok.token_to_id(EOS)] == 0
