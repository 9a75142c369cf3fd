"""Text corpora: the embedded standard library, files, folders, JSONL, and document-level splits."""

from __future__ import annotations

import json

import pytest

from guimo.data.text import cap_bytes, read_documents, split_of, split_single, stdlib_documents


def test_stdlib_corpus_is_real_python_without_tests():
    docs = stdlib_documents()
    names = [n for n, _ in docs]
    assert len(docs) > 200 and all(n.endswith(".py") for n in names)
    assert not any(part in ("test", "tests", "idle_test") for n in names for part in n.split("/")[:-1])
    assert "argparse.py" in names and names == sorted(names)
    assert sum(len(t) for _, t in docs) > 3_000_000


def test_text_file_is_one_document(tmp_path):
    f = tmp_path / "book.txt"
    f.write_text("Once upon a time.\nThe end.\n")
    assert read_documents(f) == [("book.txt", "Once upon a time.\nThe end.\n")]


def test_folder_reads_text_files_in_order_and_skips_the_rest(tmp_path):
    (tmp_path / "b.md").write_text("bee")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("ay")
    (tmp_path / "blank.txt").write_text("   \n")  # blank documents are dropped
    (tmp_path / "image.png").write_bytes(b"\x89PNG\xff")
    (tmp_path / ".hidden.txt").write_text("secret")
    assert read_documents(tmp_path) == [("b.md", "bee"), ("sub/a.txt", "ay")]


def test_jsonl_documents_are_named_by_line(tmp_path):
    f = tmp_path / "docs.jsonl"
    f.write_text(json.dumps({"text": "first", "id": 1}) + "\n\n" + json.dumps({"text": "third"}) + "\n")
    assert read_documents(f) == [("docs.jsonl:1", "first"), ("docs.jsonl:3", "third")]


def test_split_of_is_stable_and_near_its_fractions():
    names = [f"doc-{i}.py" for i in range(4000)]
    splits = [split_of(n, 0.05, 0.05) for n in names]
    assert splits == [split_of(n, 0.05, 0.05) for n in names]
    assert splits.count("test") / 4000 == pytest.approx(0.05, abs=0.015)
    assert splits.count("val") / 4000 == pytest.approx(0.05, abs=0.015)


def test_many_documents_split_by_document():
    docs = [(f"m{i}.py", f"x = {i}\n" * 10) for i in range(200)]
    out = split_single(docs, 0.1, 0.1)
    names = {s: {n for n, _ in items} for s, items in out.items()}
    assert names["train"] and names["val"] and names["test"]
    assert not (names["train"] & names["val"] or names["train"] & names["test"] or names["val"] & names["test"])
    assert sorted(names["train"] | names["val"] | names["test"]) == sorted(n for n, _ in docs)
    assert all(text == dict(docs)[n] for items in out.values() for n, text in items)  # whole documents


def test_few_documents_split_by_contiguous_text():
    docs = [("a.txt", "a" * 500), ("b.txt", "b" * 500)]
    out = split_single(docs, 0.1, 0.1)
    joined = "a" * 500 + "\n" + "b" * 500
    assert [t for _, t in out["train"]] == [joined[:800]]
    assert [t for _, t in out["val"]] == [joined[800:900]]
    assert [t for _, t in out["test"]] == [joined[900:]]


def test_cap_bytes_counts_utf8_bytes_and_keeps_whole_characters():
    poem = "关关雎鸠，在河之洲。" * 10  # 3 bytes per character
    kept = cap_bytes([("a", poem), ("b", "never reached")], 100)
    assert [n for n, _ in kept] == ["a"]
    assert len(kept[0][1].encode()) == 99 and poem.startswith(kept[0][1])  # 33 whole characters, not 100
    two = cap_bytes([("a", "x" * 60), ("b", "y" * 60), ("c", "z")], 100)
    assert [(n, len(t)) for n, t in two] == [("a", 60), ("b", 40)]


def test_cap_bytes_spread_samples_across_an_ordered_corpus():
    docs = [(name, name * 10) for name in "abcdefgh"]  # 80 bytes, in order like the stdlib's modules
    assert [n for n, _ in cap_bytes(docs, 30)] == ["a", "b", "c"]
    spread = cap_bytes(docs, 30, spread=True)  # every 2nd document (80 // 30), then the cut at 30 bytes
    assert [n for n, _ in spread] == ["a", "c", "e"]
    assert sum(len(t) for _, t in spread) == 30
