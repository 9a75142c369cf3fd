"""BEIR-format reading with file:line errors, the generated corpus, and the qrels metrics."""

from __future__ import annotations

import json
import math

import pytest

from guimo.data.retrieval import (RetrievalData, generate, load_beir, ndcg_at_k, recall_at_k, score_rankings,
                                  write_beir)
from guimo.errors import GuimoError


def _folder(tmp_path, corpus=None, queries=None, train=None, test=None):
    root = tmp_path / "beir"
    (root / "qrels").mkdir(parents=True)
    corpus = corpus if corpus is not None else ['{"_id": "d1", "title": "Gene", "text": "expression in cells"}',
                                                '{"_id": "d2", "title": "", "text": "protein folding"}']
    queries = queries if queries is not None else ['{"_id": "q1", "text": "what do cells express", "metadata": {"d1": "gold"}}',
                                                   '{"_id": "q2", "text": "how proteins fold"}']
    (root / "corpus.jsonl").write_text("\n".join(corpus) + "\n")
    (root / "queries.jsonl").write_text("\n".join(queries) + "\n")
    (root / "qrels" / "train.tsv").write_text(train if train is not None else "query-id\tcorpus-id\tscore\r\nq1\td1\t1\r\n")
    (root / "qrels" / "test.tsv").write_text(test if test is not None else "query-id\tcorpus-id\tscore\nq2\td2\t2\nq2\td1\t0\n")
    return root


def test_reads_a_beir_folder_with_crlf_qrels_and_ignores_query_metadata(tmp_path):
    data = load_beir(_folder(tmp_path))
    assert data.corpus == {"d1": "Gene. expression in cells", "d2": "protein folding"}
    assert data.queries["q1"] == "what do cells express"  # the gold evidence in metadata never reaches text
    assert data.qrels == {"train": {"q1": {"d1": 1}}, "test": {"q2": {"d2": 2}}}  # relevance 0 is not a judgement of relevance
    assert data.split_queries("test") == {"q2": "how proteins fold"}


def test_write_then_load_round_trips(tmp_path):
    data = generate(seed=3)
    again = load_beir(write_beir(data, tmp_path / "out"))
    assert again.corpus == data.corpus and again.queries == data.queries and again.qrels == data.qrels


@pytest.mark.parametrize("corpus, message", [
    (['{"_id": "d1", "text": "a"}', '{"_id": "d2", "text": "b"'], r"corpus.jsonl:2: not valid JSON"),
    (['{"_id": "d1", "body": "a"}'], r"corpus.jsonl:1: no field 'text'; the line has: _id, body"),
    (['{"_id": "d1", "text": "a"}', '{"_id": "d1", "text": "b"}'], r"corpus.jsonl:2: duplicate document id 'd1'"),
    (['["d1", "a"]'], r"corpus.jsonl:1: expected a JSON object, got list"),
])
def test_bad_corpus_lines_are_named_by_file_and_line(tmp_path, corpus, message):
    with pytest.raises(GuimoError, match=message):
        load_beir(_folder(tmp_path, corpus=corpus))


@pytest.mark.parametrize("train, message", [
    ("query-id\tcorpus-id\tscore\nq1\td9\t1\n", r"train.tsv:2: corpus id 'd9' is not in corpus.jsonl"),
    ("query-id\tcorpus-id\tscore\nq7\td1\t1\n", r"train.tsv:2: query id 'q7' is not in queries.jsonl"),
    ("query-id\tcorpus-id\tscore\nq1\td1\n", r"train.tsv:2: expected 3 tab-separated fields"),
    ("query-id\tcorpus-id\tscore\nq1\td1\thigh\n", r"train.tsv:2: score 'high' is not a number"),
    ("query-id\tcorpus-id\tscore\nq1\td1\t0\n", r"train.tsv: no relevance judgements above 0"),
])
def test_bad_qrels_lines_are_named(tmp_path, train, message):
    with pytest.raises(GuimoError, match=message):
        load_beir(_folder(tmp_path, train=train))


def test_a_missing_split_lists_the_qrels_present(tmp_path):
    root = _folder(tmp_path)
    with pytest.raises(GuimoError, match=r"dev.tsv: not found \(qrels present: test, train\)"):
        load_beir(root, splits=("dev",))
    with pytest.raises(GuimoError, match="not a folder"):
        load_beir(tmp_path / "nowhere")


def test_ndcg_and_recall_by_hand():
    rel = {"a": 2, "b": 1}
    # ranking c, a, b: DCG = 0 + 2/log2(3) + 1/log2(4); ideal a, b: 2/log2(2) + 1/log2(3)
    expected = (2 / math.log2(3) + 1 / 2) / (2 + 1 / math.log2(3))
    assert ndcg_at_k(["c", "a", "b"], rel, 10) == pytest.approx(expected)
    assert ndcg_at_k(["a", "b"], rel, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["c", "a", "b"], rel, 1) == 0.0
    assert recall_at_k(["c", "a"], rel, 2) == 0.5
    scores = score_rankings({"q1": ["a", "b"]}, {"q1": rel, "q2": {"x": 1}}, ks=(10,), recall_ks=(1,))
    assert scores == {"ndcg@10": 0.5, "recall@1": 0.25}  # q2 has no ranking: it scores 0


def test_generated_corpus_is_seeded_and_splits_queries():
    a, b = generate(seed=1), generate(seed=1)
    assert a.corpus == b.corpus and a.qrels == b.qrels
    assert isinstance(a, RetrievalData) and len(a.corpus) == 200
    train, test = set(a.qrels["train"]), set(a.qrels["test"])
    assert not train & test and len(train) + len(test) == len(a.queries)
    for qrels in a.qrels.values():
        for q, rel in qrels.items():
            assert set(rel) <= set(a.corpus) and q in a.queries
    json.dumps(a.qrels)  # plain data
