"""RecPredictor on a small untrained SASRec: unknown ids are named and do not change the answer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from guimo.inference.recommend import RecPredictor
from guimo.models.sasrec import SASRec, SASRecConfig

ITEMS = [f"sku-{i:03d}" for i in (7, 3, 12, 5, 9, 1, 4, 8)]


@pytest.fixture(scope="module")
def predictor() -> RecPredictor:
    torch.manual_seed(0)
    model = SASRec(SASRecConfig(n_items=len(ITEMS), max_len=6, d_model=16, dropout=0.0)).eval()
    popularity = np.arange(len(ITEMS) + 1, dtype=np.int64)  # the last item is the most popular
    return RecPredictor(model, ITEMS, [], None, popularity, name="tiny")


def test_unknown_ids_are_listed_once_in_order(predictor):
    assert predictor.unknown(["sku-003", "12", "sku-999", "12", 7]) == ["12", "sku-999", "7"]
    assert predictor.unknown(["sku-003", "sku-007"]) == [] and predictor.unknown([]) == []
    assert predictor.id_examples() == ["sku-001", "sku-003", "sku-004"]  # the smallest ids: stable and readable
    msg = predictor.unknown_message(["12", "7"], 3)
    assert msg.startswith("2 of 3 items are not in the catalogue of tiny (8 items): 12, 7") and "sku-001, sku-003, sku-004" in msg


def test_unknown_ids_do_not_change_the_scores_and_are_named(predictor):
    known = ["sku-003", "sku-012"]
    (plain,) = predictor.recommend([known], k=4)
    (mixed,) = predictor.recommend([["ghost", "sku-003", "12", "sku-012"]], k=4)
    assert mixed["items"] == plain["items"] and mixed["scores"] == plain["scores"]
    assert (plain["unknown_items"], mixed["unknown_items"]) == ([], ["ghost", "12"])


def test_a_history_with_no_known_item_gets_popularity_but_says_so(predictor):
    (empty,) = predictor.recommend([[]], k=3)
    (typos,) = predictor.recommend([["1", "2"]], k=3)
    assert empty["items"] == typos["items"] == ["sku-008", "sku-004", "sku-001"]  # most popular first
    assert typos["unknown_items"] == ["1", "2"] and empty["unknown_items"] == []
