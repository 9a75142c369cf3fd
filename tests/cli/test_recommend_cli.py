"""`guimo recommend`: a known user, a live session, and a JSONL batch with bad lines named."""

from __future__ import annotations

import json

import pytest

from guimo.cli import main
from tests.scenarios.test_recommend import tiny_config


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from guimo.pipeline.runner import run_pipeline

    out = tmp_path_factory.mktemp("reccli") / "run"
    run_pipeline("recommend", tiny_config("eval.sampled=0", steps=20), out, quiet=True)
    return out


def test_user_and_history(run_dir, capsys):
    assert main(["recommend", str(run_dir), "--user", "u00002", "--k", "4"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["user"] == "u00002" and len(out["items"]) == 4 and len(out["scores"]) == 4
    assert main(["recommend", str(run_dir), "--history", "i00001,i00002", "--k", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["items"]) == 3 and not {"i00001", "i00002"} & set(out["items"])
    assert main(["recommend", str(run_dir), "--history", "i00001,i00002", "--k", "300", "--include-seen"]) == 0
    assert {"i00001", "i00002"} <= set(json.loads(capsys.readouterr().out)["items"])


def test_unknown_history_ids_are_named_never_silent(run_dir, capsys):
    """The README's mistake: ids of another scheme (12 for i00012) used to return the popular items without a word."""
    assert main(["recommend", str(run_dir), "--history", "12,7,301"]) == 2
    err = capsys.readouterr().err
    assert "none of its items is known" in err and "12, 7, 301" in err and "i00001" in err and "--allow-unknown" in err
    assert main(["recommend", str(run_dir), "--history", "12,7,301", "--allow-unknown", "--k", "3"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["unknown_items"] == ["12", "7", "301"] and "most popular" in err
    assert main(["recommend", str(run_dir), "--history", "i00001,ghost", "--k", "3"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["unknown_items"] == ["ghost"]
    assert "warning" in err and "1 of 2 items" in err and "ghost" in err and "left out" in err
    assert main(["recommend", str(run_dir), "--history", "i00001", "--k", "3"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["unknown_items"] == [] and err == ""


def test_unknown_user_is_one_line_error(run_dir, capsys):
    assert main(["recommend", str(run_dir), "--user", "ghost"]) == 2
    assert "unknown user 'ghost'" in capsys.readouterr().err


def test_batch(run_dir, tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text('{"user": "u00001"}\n\n{"user": "s1", "history": ["i00005", 7]}\n{"history": []}\n')
    out = tmp_path / "out.jsonl"
    assert main(["recommend", str(run_dir), "--batch", str(src), "--out", str(out), "--k", "5", "--quiet"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r.get("user") for r in lines] == ["u00001", "s1", None]
    assert all(len(r["items"]) == 5 for r in lines)
    assert "i00005" not in lines[1]["items"]
    assert [r["unknown_items"] for r in lines] == [[], ["7"], []]
    assert "1 of 3 histories" in capsys.readouterr().err


def test_batch_line_with_no_known_item_is_an_error_unless_allowed(run_dir, tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text('{"history": ["i00001"]}\n{"history": ["12", "7"]}\n')
    out = tmp_path / "out.jsonl"
    assert main(["recommend", str(run_dir), "--batch", str(src), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "in.jsonl:2:" in err and "12, 7" in err and not out.exists()
    assert main(["recommend", str(run_dir), "--batch", str(src), "--out", str(out), "--quiet", "--allow-unknown"]) == 0
    assert [json.loads(line)["unknown_items"] for line in out.read_text().splitlines()] == [[], ["12", "7"]]


@pytest.mark.parametrize("text, line, message", [
    ('{"user": "u00001"}\n{"history": "i00001"}\n', 2, "must be a list"),
    ('{"user": "u00001"}\nnot json\n', 2, "not valid JSON"),
    ('{"user": "nobody"}\n', 1, "unknown user"),
    ('{"k": 3}\n', 1, "needs \\\"history\\\""),
])
def test_batch_bad_lines_name_file_and_line(run_dir, tmp_path, capsys, text, line, message):
    src = tmp_path / "bad.jsonl"
    src.write_text(text)
    assert main(["recommend", str(run_dir), "--batch", str(src), "--out", str(tmp_path / "o.jsonl"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"bad.jsonl:{line}:" in err and message.replace("\\", "") in err
    assert not (tmp_path / "o.jsonl").exists()


def test_batch_needs_out(run_dir, tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text('{"history": ["i00001"]}\n')
    assert main(["recommend", str(run_dir), "--batch", str(src)]) == 2
    assert "--out" in capsys.readouterr().err
