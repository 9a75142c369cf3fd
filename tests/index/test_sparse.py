"""BM25 index: English stemming, Chinese segmentation, add/delete, filters, atomic persistence."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("bm25s", reason="the search extra is not installed (pip install -e '.[search]')")
pytest.importorskip("Stemmer", reason="the search extra is not installed (pip install -e '.[search]')")
pytest.importorskip("jieba", reason="the search extra is not installed (pip install -e '.[search]')")

from guimo.errors import GuimoError  # noqa: E402
from guimo.index import sparse  # noqa: E402
from guimo.index.sparse import SparseIndex, tokenize  # noqa: E402
from tests.conftest import shared_data  # noqa: E402

ENGLISH = [
    ("d1", "She likes to run along the river every morning", {"lang": "en", "topic": "sport"}),
    ("d2", "The stock market fell sharply on Monday", {"lang": "en", "topic": "finance"}),
    ("d3", "Bake the bread in a hot oven for forty minutes", {"lang": "en", "topic": "food"}),
    ("d4", "Interest rates and bond markets moved together", {"lang": "en", "topic": "finance"}),
    ("d5", "A marathon is a long run of 42 kilometres", {"lang": "en", "topic": "sport"}),
]
CHINESE = [
    ("z1", "客厅 的 灯 可以 用 语音 打开 和 关闭", {"lang": "zh", "room": "living"}),
    ("z2", "卧室 空调 温度 设置 为 二十六 度", {"lang": "zh", "room": "bedroom"}),
    ("z3", "厨房 的 烤箱 预热 到 两百 度", {"lang": "zh", "room": "kitchen"}),
    ("z4", "明天 早上 七点 叫 我 起床", {"lang": "zh", "room": "bedroom"}),
]


def ids(hits) -> list[str]:
    return [h.id for h in hits]


def test_stemming_matches_inflections() -> None:
    index = SparseIndex.build(ENGLISH)
    hits = index.search("running", k=3)
    assert set(ids(hits)) == {"d1", "d5"}  # "run" in both; no other document shares a term
    assert ids(index.search("markets", k=1)) in (["d2"], ["d4"])
    assert all(h.score > 0 for h in hits)
    assert index.search("zebra") == []


def test_chinese_query_is_segmented_with_jieba() -> None:
    assert {"客厅", "灯"} <= set(tokenize("打开客厅的灯"))
    index = SparseIndex.build(CHINESE + ENGLISH)
    assert ids(index.search("打开客厅的灯", k=1)) == ["z1"]
    assert ids(index.search("把卧室空调温度调低", k=1)) == ["z2"]


def test_mixed_language_text() -> None:
    index = SparseIndex.build([("m1", "打开 TV 的 volume controls", None), *ENGLISH])
    assert ids(index.search("control the tv", k=1)) == ["m1"]


def test_delete_and_upsert() -> None:
    index = SparseIndex.build(ENGLISH)
    assert index.delete(["d1", "missing"]) == 1
    assert "d1" not in index and len(index) == 4
    assert ids(index.search("running", k=5)) == ["d5"]
    index.add([("d5", "Bread and butter", {"topic": "food"})])  # same id replaces the document
    assert len(index) == 4
    assert index.search("running") == []
    assert "d5" in ids(index.search("bread", k=5))


def test_metadata_filters() -> None:
    index = SparseIndex.build(ENGLISH + CHINESE)
    unfiltered = ids(index.search("market", k=5))
    assert set(unfiltered) == {"d2", "d4"}
    assert set(ids(index.search("market run", k=5, filters={"topic": "sport"}))) == {"d1", "d5"}
    assert index.search("market", filters={"topic": "sport"}) == []
    assert index.search("market", filters={"topic": "nope"}) == []
    assert ids(index.search("温度", filters={"room": "bedroom"})) == ["z2"]
    hits = index.search("market", filters={"topic": "finance", "lang": "en"}, k=5)
    assert {h.metadata["topic"] for h in hits} == {"finance"}


def test_query_without_terms_finds_nothing() -> None:
    index = SparseIndex.build(ENGLISH + [("empty", "", None)])
    assert index.search("") == [] and index.search("the of and") == []
    assert ids(index.search("bread", k=10)) == ["d3"]  # the empty document never scores


def test_repeated_id_in_one_batch_keeps_the_last() -> None:
    index = SparseIndex.build([("x", "apples", {"v": 1}), ("x", "pears", {"v": 2})])
    assert len(index) == 1 and index.search("apples") == []
    assert [(h.id, h.metadata) for h in index.search("pears")] == [("x", {"v": 2})]


def test_bad_k_is_refused() -> None:
    with pytest.raises(GuimoError, match="k must be"):
        SparseIndex.build(ENGLISH).search("run", k=0)


def test_save_load_round_trip(tmp_path: Path) -> None:
    index = SparseIndex.build(ENGLISH + CHINESE, sparse.BM25Params(k1=0.9, b=0.4))
    index.delete(["d3"])
    index.save(tmp_path / "idx")
    loaded = SparseIndex.load(tmp_path / "idx")
    assert loaded.params == index.params and len(loaded) == len(index)
    for query in ("running", "market", "打开客厅的灯", "bread"):
        assert loaded.search(query, k=5) == index.search(query, k=5)
    versions = [p for p in (tmp_path / "idx").iterdir() if p.is_dir()]
    assert len(versions) == 1
    loaded.add([("d9", "rowing on the river", None)])
    loaded.save(tmp_path / "idx")  # a second save replaces the first version
    assert len([p for p in (tmp_path / "idx").iterdir() if p.is_dir()]) == 1
    assert "d9" in SparseIndex.load(tmp_path / "idx")


def test_killed_save_leaves_previous_index_loadable(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "idx"
    SparseIndex.build(ENGLISH).save(folder)
    bigger = SparseIndex.build(ENGLISH + CHINESE)

    real = sparse.atomic_write_json
    def die(path, obj):  # the process "dies" after docs.jsonl, before index.json and CURRENT
        raise KeyboardInterrupt("killed")
    monkeypatch.setattr(sparse, "atomic_write_json", die)
    with pytest.raises(KeyboardInterrupt):
        bigger.save(folder)
    monkeypatch.setattr(sparse, "atomic_write_json", real)

    assert len([p for p in folder.iterdir() if p.is_dir()]) == 2  # the torn version is left behind
    survivor = SparseIndex.load(folder)
    assert len(survivor) == len(ENGLISH)
    assert ids(survivor.search("running", k=5)) and survivor.search("客厅") == []
    bigger.save(folder)  # the next good save commits and sweeps the torn folder
    assert len([p for p in folder.iterdir() if p.is_dir()]) == 1
    assert len(SparseIndex.load(folder)) == len(ENGLISH) + len(CHINESE)


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(GuimoError, match="not a saved BM25 index"):
        SparseIndex.load(tmp_path)
    SparseIndex.build(ENGLISH).save(tmp_path / "idx")
    version = (tmp_path / "idx" / "CURRENT").read_text().strip()
    docs = tmp_path / "idx" / version / "docs.jsonl"
    docs.write_text(docs.read_text().replace('"tokens"', '"tokenz"', 1))
    with pytest.raises(GuimoError, match=r"docs.jsonl:1: malformed"):
        SparseIndex.load(tmp_path / "idx")


def _ndcg_at_10(ranked: list[str], relevant: dict[str, int]) -> float:
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sorted(relevant.values(), reverse=True)[:10]
    return dcg / sum(g / math.log2(i + 2) for i, g in enumerate(ideal))


def test_scifact_ndcg_at_10() -> None:
    """BM25 on BEIR SciFact test (300 queries); Anserini's published figure is 0.665."""
    root = shared_data("scifact")
    with open(root / "corpus.jsonl", encoding="utf-8") as f:
        docs = [(d["_id"], f"{d['title']} {d['text']}", None) for d in map(json.loads, f)]
    with open(root / "queries.jsonl", encoding="utf-8") as f:
        queries = {q["_id"]: q["text"] for q in map(json.loads, f)}
    qrels: dict[str, dict[str, int]] = {}
    for line in (root / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        qid, did, rel = line.split("\t")
        qrels.setdefault(qid, {})[did] = int(rel)
    index = SparseIndex.build(docs)
    qids = sorted(qrels)
    results = index.search_many([queries[q] for q in qids], k=10)
    ndcg = sum(_ndcg_at_10(ids(r), qrels[q]) for q, r in zip(qids, results)) / len(qids)
    print(f"SciFact BM25 nDCG@10 = {ndcg:.4f}")
    assert ndcg >= 0.65
