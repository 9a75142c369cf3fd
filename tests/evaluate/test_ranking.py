"""Ranking metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from guimo.evaluate.ranking import evaluate_ranking, metrics_from_ranks, sample_negatives, target_ranks

NEG = float("-inf")
# two users, catalogue of 5 items (column 0 is padding)
SCORES = torch.tensor([
    [NEG, 0.1, 0.9, 0.5, 0.3, 0.7],  # user A: history [2], target 3
    [NEG, 0.1, 0.8, 0.6, 0.2, 0.4],  # user B: history [4], target 1
])
HIST = [np.array([2]), np.array([4])]
TARGETS = np.array([3, 1])


def fixed_scores(histories):
    return SCORES[: len(histories)].clone()


def test_full_ranking_with_seen_filtered_matches_hand_values():
    m = evaluate_ranking(fixed_scores, HIST, TARGETS, n_items=5, ks=(2, 10), sampled=0)["full"]
    # A: item 2 filtered -> order 5, 3, ... -> rank 1.  B: item 4 filtered -> 2, 3, 5, 1 -> rank 3.
    assert m["hr@2"] == pytest.approx(0.5)
    assert m["recall@2"] == pytest.approx(0.5)
    assert m["ndcg@2"] == pytest.approx((1 / math.log2(3) + 0) / 2)
    assert m["ndcg@10"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / 2)
    assert m["mrr"] == pytest.approx((1 / 2 + 1 / 4) / 2)
    assert m["hr@10"] == 1.0
    # top-2 lists: A {5, 3}, B {2, 3} -> 3 distinct items of 5
    assert m["coverage@2"] == pytest.approx(3 / 5)
    assert m["cases"] == 2


def test_without_filter_seen_items_compete():
    m = evaluate_ranking(fixed_scores, HIST, TARGETS, n_items=5, ks=(10,), sampled=0, filter_seen=False)["full"]
    # A: 2, 5, 3 -> rank 2.  B: 2, 3, 5, 4, 1 -> rank 4.
    assert m["mrr"] == pytest.approx((1 / 3 + 1 / 5) / 2)
    assert m["ndcg@10"] == pytest.approx((1 / math.log2(4) + 1 / math.log2(6)) / 2)


def test_target_in_history_is_a_miss_under_filtering():
    m = evaluate_ranking(fixed_scores, [np.array([3])], np.array([3]), n_items=5, ks=(5,), sampled=0)["full"]
    assert m["hr@5"] == 0.0


def test_ties_break_towards_lower_item_id():
    scores = torch.tensor([[NEG, 1.0, 1.0, 1.0, 0.0]])
    assert target_ranks(scores, torch.tensor([2])).tolist() == [1]
    assert target_ranks(scores, torch.tensor([1])).tolist() == [0]


def test_metrics_from_ranks_formulas():
    m = metrics_from_ranks(torch.tensor([0, 4, 20]), ks=(5,))
    assert m["hr@5"] == pytest.approx(2 / 3)
    assert m["ndcg@5"] == pytest.approx((1.0 + 1 / math.log2(6)) / 3)
    assert m["mrr"] == pytest.approx((1 + 1 / 5 + 1 / 21) / 3)


def test_chunking_does_not_change_results():
    rng = np.random.default_rng(0)
    n = 50
    table = torch.as_tensor(rng.normal(size=(37, n + 1)), dtype=torch.float32)
    hist = [rng.choice(np.arange(1, n + 1), size=rng.integers(1, 6), replace=False) for _ in range(37)]
    targets = np.array([rng.integers(1, n + 1) for _ in range(37)])
    lookup = {id(h): i for i, h in enumerate(hist)}

    def score(hs):
        return table[[lookup[id(h)] for h in hs]]

    a = evaluate_ranking(score, hist, targets, n, chunk=5, seed=3)
    b = evaluate_ranking(score, hist, targets, n, chunk=100, seed=3)
    assert a["full"] == b["full"]
    # the same seed and chunking draw the same negatives, so every model meets the same ones
    assert evaluate_ranking(score, hist, targets, n, chunk=5, seed=3)["sampled"] == a["sampled"]


def test_sampled_negatives_avoid_history_and_target():
    gen = torch.Generator().manual_seed(0)
    hist = [np.array([1, 2, 3]), np.array([5])]
    neg = sample_negatives(hist, np.array([4, 6]), n_items=8, n=100, gen=gen)
    assert neg.shape == (2, 100)
    assert not set(neg[0].tolist()) & {1, 2, 3, 4, 0}
    assert not set(neg[1].tolist()) & {5, 6, 0}
    assert set(neg[0].tolist()) == {5, 6, 7, 8}


def test_sampled_protocol_is_reported_apart_and_ranks_among_101():
    def best_low_ids(hs):  # item 1 scores highest, then 2, ...
        return -torch.arange(201, dtype=torch.float32).repeat(len(hs), 1)

    res = evaluate_ranking(best_low_ids, [np.array([7])], np.array([1]), n_items=200, ks=(10,), sampled=100)
    assert res["sampled"]["hr@10"] == 1.0 and res["sampled"]["mrr"] == 1.0
    res = evaluate_ranking(best_low_ids, [np.array([7])], np.array([200]), n_items=200, ks=(10,), sampled=100)
    assert res["sampled"]["mrr"] == pytest.approx(1 / 101)  # every negative beats the worst item
    assert res["full"]["mrr"] == pytest.approx(1 / 199)  # 198 unseen items above it
