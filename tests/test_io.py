"""guimo.io: a write interrupted half-way leaves the old file whole, and strict readers name file and line."""

from __future__ import annotations

import json

import pytest

from guimo.errors import GuimoError
from guimo.io import atomic_open, atomic_write_json, iter_jsonl


def test_atomic_open_replaces_the_file_only_when_the_block_ends(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("old\n")
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write("a,b\n")
        assert path.read_text() == "old\n"  # readers still see the old file while the new one is written
    assert path.read_text() == "a,b\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]  # no temporary file left behind


def test_an_error_inside_atomic_open_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("old\n")
    with pytest.raises(RuntimeError, match="half-way"):
        with atomic_open(path, "w", encoding="utf-8") as f:
            f.write("new rows ...")
            raise RuntimeError("half-way")
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    with pytest.raises(ValueError, match="mode"):
        with atomic_open(path, "a"):
            pass


def test_a_torn_jsonl_line_names_file_and_line(tmp_path):
    path = tmp_path / "log.jsonl"
    atomic_write_json(tmp_path / "x.json", {"a": 1})
    path.write_text(json.dumps({"a": 1}) + "\n" + '{"a": 2' + "\n")
    with pytest.raises(GuimoError, match=r"log\.jsonl.*2"):
        list(iter_jsonl(path))
    assert [r for _, r in iter_jsonl(path, skip_torn_tail=True)] == [{"a": 1}]
