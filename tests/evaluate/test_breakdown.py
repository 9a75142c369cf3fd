"""Breakdowns are exact sub-averages: bucket by bucket against hand values, and weighted back to the total."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from guimo.evaluate.breakdown import (
    history_length_breakdown, popularity_breakdown, position_breakdown, position_edges, quantile_edges, ranking_values,
    weighted_total,
)
from guimo.evaluate.ranking import metrics_from_ranks


def test_ranking_values_follow_the_ranking_module():
    ranks = np.array([0, 3, 9, 10, 57, 1])
    ours = ranking_values(ranks, [10, 20])
    theirs = metrics_from_ranks(torch.as_tensor(ranks), [10, 20])
    for key, value in ours.items():
        assert value == pytest.approx(theirs[key], abs=1e-12), key


def test_history_buckets_hold_their_cases_and_weight_back_to_the_total():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 200, size=500)
    ranks = {"model": rng.integers(0, 50, size=500), "markov": rng.integers(0, 80, size=500)}
    b = history_length_breakdown(lengths, ranks, [10])
    assert sum(x["weight"] for x in b["buckets"]) == 500
    assert len(b["buckets"]) == 5
    first = b["buckets"][0]
    sel = (lengths >= first["lo"]) & (lengths <= first["hi"])
    assert first["model"]["ndcg@10"] == pytest.approx(ranking_values(ranks["model"][sel], [10])["ndcg@10"])
    for who in ("model", "markov"):
        for metric in ("ndcg@10", "hr@10"):
            assert weighted_total(b, metric, who) == pytest.approx(ranking_values(ranks[who], [10])[metric], abs=1e-12)


def test_tied_quantiles_merge_instead_of_leaving_empty_buckets():
    values = np.array([3] * 90 + [4, 5, 6, 7, 8, 9, 10, 11, 12, 40])
    ranges = quantile_edges(values, 5)
    assert ranges[0] == (3, 3)
    assert all(lo <= hi for lo, hi in ranges) and ranges[-1][1] == 40
    assert all(((values >= lo) & (values <= hi)).any() for lo, hi in ranges)
    assert sum(((values >= lo) & (values <= hi)).sum() for lo, hi in ranges) == len(values)


def test_popularity_buckets_rank_the_catalogue_by_training_counts():
    n_items = 200
    counts = np.zeros(n_items + 1, dtype=np.int64)
    counts[1:] = np.arange(n_items, 0, -1)  # item 1 the most popular, item 200 the least
    targets = np.array([1, 2, 3, 50, 150, 200])
    ranks = {"model": np.array([0, 0, 20, 5, 1, 30]), "popularity": np.array([0, 1, 2, 40, 150, 199])}
    b = popularity_breakdown(targets, counts, ranks, [10])
    by_label = {x["label"]: x for x in b["buckets"]}
    assert by_label["top 1% of items"]["weight"] == 2  # items 1 and 2 of 200
    assert by_label["next 9%"]["weight"] == 1  # item 3
    assert by_label["next 40%"]["weight"] == 1  # item 50
    assert by_label["bottom 50%"]["weight"] == 2  # items 150 and 200
    assert by_label["bottom 50%"]["model"]["hr@10"] == 0.5 and by_label["bottom 50%"]["baselines"]["popularity"]["hr@10"] == 0.0
    assert weighted_total(b, "ndcg@10") == pytest.approx(ranking_values(ranks["model"], [10])["ndcg@10"])


def test_position_buckets_double_and_weight_by_bytes():
    assert position_edges(128)[-1] == (64, 128) and position_edges(100)[-1] == (64, 100)
    assert [lo for lo, _ in position_edges(16)] == [1, 2, 4, 8]
    block = 16
    rng = np.random.default_rng(1)
    bytes_at = rng.integers(50, 100, size=block)
    nll_at = {"model": rng.uniform(10, 100, size=block), "bigram": rng.uniform(10, 100, size=block)}
    b = position_breakdown(block, bytes_at, nll_at)
    for who in ("model", "bigram"):
        total = nll_at[who].sum() / math.log(2) / bytes_at.sum()
        assert weighted_total(b, "bits_per_byte", who) == pytest.approx(total, rel=1e-12)
    assert b["buckets"][0]["model"]["bits_per_byte"] == pytest.approx(nll_at["model"][0] / math.log(2) / bytes_at[0])


def test_lm_position_scores_sum_to_the_overall_metrics():
    """score_positions keeps per-position sums whose total is exactly score_lm's result."""
    from guimo.scenarios.lm import score_lm, score_positions

    torch.manual_seed(0)

    class Bigramish(torch.nn.Module):
        def __init__(self, vocab: int) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(vocab, vocab)

        def forward(self, x):
            return self.emb(x)

    vocab, block = 11, 6
    tokens = np.random.default_rng(2).integers(0, vocab, size=200)
    token_bytes = np.arange(vocab) % 3 + 1
    model = Bigramish(vocab)
    scores = score_positions(model, tokens, block, token_bytes, batch_size=4)
    assert scores.nll.shape == (block,) and scores.tokens.sum() == (len(tokens) - 1) // block * block
    assert scores.summary() == pytest.approx(score_lm(model, tokens, block, token_bytes, batch_size=3))
