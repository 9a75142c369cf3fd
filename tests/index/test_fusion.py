"""Fusion math against scores and ranks computed by hand: RRF, min-max fusion, ties, one-list documents."""

from __future__ import annotations

import pytest

from guimo.errors import GuimoError
from guimo.index.fusion import fuse, normalized_fusion, rrf
from guimo.index.sparse import Hit


def ranking(*pairs) -> list[Hit]:
    return [Hit(i, s, {"src": i}) for i, s in pairs]


BM25 = ranking(("a", 12.0), ("b", 9.0), ("c", 3.0))
DENSE = ranking(("c", 0.91), ("a", 0.80), ("d", 0.40))


def test_rrf_matches_hand_computed_scores() -> None:
    fused = rrf([BM25, DENSE], k=60, top=10)
    # a: ranks 1 and 2; c: ranks 3 and 1; b: rank 2 only; d: rank 3 only.
    expect = {"a": 1 / 61 + 1 / 62, "c": 1 / 63 + 1 / 61, "b": 1 / 62, "d": 1 / 63}
    assert [h.id for h in fused] == ["a", "c", "b", "d"]
    for h in fused:
        assert h.score == pytest.approx(expect[h.id], rel=1e-12)
    assert fused[0].metadata == {"src": "a"}


def test_rrf_k_changes_the_order_by_hand() -> None:
    # x is 1st in one list only; y is 3rd in both. With k=0: x=1, y=2/3 -> x first.
    # With k=60: x=1/61=0.016393, y=2/63=0.031746 -> y first (agreement wins at the paper's k).
    one = ranking(("x", 5), ("p", 4), ("y", 3))
    two = ranking(("q", 5), ("r", 4), ("y", 3))
    assert [h.id for h in rrf([one, two], k=0, top=1)] == ["x"]
    assert [h.id for h in rrf([one, two], k=60, top=1)] == ["y"]


def test_rrf_ties_break_by_best_rank_then_list_order() -> None:
    # p and q each hold rank 1 in one list: equal scores; p's list comes first.
    fused = rrf([ranking(("p", 1.0)), ranking(("q", 1.0))])
    assert [h.id for h in fused] == ["p", "q"] and fused[0].score == fused[1].score
    # m: ranks 2 and 2 (2/62); n: ranks 1 and 3 (1/61 + 1/63 = 0.032266 > 2/62 = 0.032258): n first.
    fused = rrf([ranking(("n", 3), ("m", 2), ("z", 1)), ranking(("w", 3), ("m", 2), ("n", 1))])
    assert [h.id for h in fused][:2] == ["n", "m"]


def test_rrf_counts_a_repeated_id_once_and_top_cuts() -> None:
    fused = rrf([ranking(("a", 3), ("a", 2), ("b", 1))], top=1)
    assert [h.id for h in fused] == ["a"] and fused[0].score == pytest.approx(1 / 61)
    assert rrf([[], []]) == []


def test_normalized_fusion_matches_hand_computed_scores() -> None:
    fused = normalized_fusion([BM25, DENSE])
    # BM25 min 3, max 12: a=1, b=6/9, c=0. Dense min .40, max .91: c=1, a=.40/.51, d=0.
    expect = {"a": 1 + 0.40 / 0.51, "b": 6 / 9, "c": 0 + 1, "d": 0.0}
    assert [h.id for h in fused] == ["a", "c", "b", "d"]
    for h in fused:
        assert h.score == pytest.approx(expect[h.id], rel=1e-9)


def test_normalized_fusion_weights_and_flat_rankings() -> None:
    fused = normalized_fusion([BM25, DENSE], weights=[0.0, 2.0])
    assert fused[0].id == "c" and fused[0].score == pytest.approx(2.0)
    # A flat ranking gives every document 1.0; d is present in the second list only.
    fused = normalized_fusion([ranking(("a", 5), ("b", 5)), ranking(("d", 0.3))], weights=[1, 0.5])
    assert {h.id: h.score for h in fused} == {"a": 1.0, "b": 1.0, "d": 0.5}
    assert [h.id for h in fused] == ["a", "b", "d"]


def test_bad_arguments_are_named() -> None:
    with pytest.raises(GuimoError, match="2 weights for 1 rankings"):
        normalized_fusion([BM25], weights=[1, 1])
    with pytest.raises(GuimoError, match="weights must be finite and >= 0"):
        normalized_fusion([BM25, DENSE], weights=[1, -1])
    with pytest.raises(GuimoError, match="top must be >= 1"):
        rrf([BM25], top=0)
    with pytest.raises(GuimoError, match="unknown fusion 'max'.*rrf, normalized"):
        fuse([BM25], "max")
    assert [h.id for h in fuse([BM25, DENSE], "normalized", top=2)] == ["a", "c"]
