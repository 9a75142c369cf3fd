"""The generated catalogue, the titles CSV reader, PriceRunner and the split grouped by product cluster."""

from __future__ import annotations

from collections import Counter

import pytest

from guimo.data.catalogue import Product, fingerprint, generate_catalogue, grouped_split, is_pricerunner, read_pricerunner
from guimo.errors import GuimoError
from tests.conftest import shared_data


def test_generator_is_deterministic_and_seeded():
    a, b = generate_catalogue(200, seed=3), generate_catalogue(200, seed=3)
    assert a == b
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(generate_catalogue(200, seed=4)) != fingerprint(a)


def test_generator_shape_every_category_and_clusters_of_offers():
    rows = generate_catalogue(400, seed=0, max_offers=4)
    counts = Counter(r.category for r in rows)
    assert len(counts) == 10 and min(counts.values()) >= 20  # every category, none starved
    per_group = Counter(r.group for r in rows)
    assert len(per_group) == 400 and max(per_group.values()) <= 4
    assert any(n > 1 for n in per_group.values())  # near-duplicate offers of one product exist
    # a cluster is one product: its offers share a category and differ in wording
    by_group: dict[str, list[Product]] = {}
    for r in rows:
        by_group.setdefault(r.group, []).append(r)
    multi = [g for g in by_group.values() if len(g) > 1]
    assert all(len({r.category for r in g}) == 1 for g in multi)
    assert sum(len({r.title for r in g}) > 1 for g in multi) > 0.5 * len(multi)


def test_grouped_split_keeps_clusters_whole():
    rows = generate_catalogue(300, seed=1)
    split = grouped_split(rows, val_fraction=0.1, test_fraction=0.2, seed=0)
    groups = {name: {r.group for r in part} for name, part in split.items()}
    assert not groups["train"] & groups["test"] and not groups["train"] & groups["val"] and not groups["val"] & groups["test"]
    assert sum(len(p) for p in split.values()) == len(rows)
    assert 0.1 < len(groups["test"]) / 300 < 0.3
    assert grouped_split(rows, seed=0) == split  # deterministic


def test_grouped_split_refuses_bad_fractions():
    rows = generate_catalogue(30)
    with pytest.raises(GuimoError, match="fractions"):
        grouped_split(rows, val_fraction=0.5, test_fraction=0.5)


def test_pricerunner_reader_names_a_bad_line(tmp_path):
    p = tmp_path / "pricerunner_aggregate.csv"
    p.write_text(" Product ID, Product Title,Merchant ID,Cluster ID,Cluster Label,Category ID,Category Label\n"
                 "1,apple iphone 8 64gb,1,1,Apple iPhone 8 64GB,2612,Mobile Phones\n"
                 "2,,2,1,Apple iPhone 8 64GB,2612,Mobile Phones\n")
    assert is_pricerunner(tmp_path)  # the header, with UCI's leading spaces, is recognised
    with pytest.raises(GuimoError, match=r"pricerunner_aggregate\.csv:3"):
        read_pricerunner(tmp_path)


def test_pricerunner_grouped_split_has_no_cluster_in_two_splits():
    folder = shared_data("pricerunner")
    assert is_pricerunner(folder)
    rows = read_pricerunner(folder)
    assert len(rows) == 35311 and len({r.category for r in rows}) == 10 and len({r.group for r in rows}) == 13233
    split = grouped_split(rows, val_fraction=0.0, test_fraction=0.2, seed=0)
    # the split PriceRunner's baselines were measured on (its SOURCE.md)
    assert (len(split["train"]), len(split["test"])) == (28225, 7086)
    split = grouped_split(rows, val_fraction=0.1, test_fraction=0.2, seed=0)
    groups = {name: {r.group for r in part} for name, part in split.items()}
    assert not groups["train"] & groups["test"] and not groups["train"] & groups["val"] and not groups["val"] & groups["test"]
    assert len(split["test"]) == 7086  # validation comes out of train only
