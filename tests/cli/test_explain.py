"""`guimo explain RUN --row` and `guimo predict RUN --batch --explain` on a real (tiny) `health` run: the side-by-side
table, JSON whose attributions add up and whose TreeSHAP column adds up to LightGBM's raw score, rows from inline
JSON, .json and .csv, and bad rows named."""

from __future__ import annotations

import json

import numpy as np
import pytest

from guimo.cli import main
from guimo.config import apply_overrides
from guimo.pipeline.runner import run_pipeline
from guimo.scenarios import get

pytest.importorskip("captum", reason="explanations need the 'explain' extra")


@pytest.fixture(scope="module")
def run_path(tmp_path_factory):
    sc = get("health")
    cfg = apply_overrides(sc.config_cls(), ["model=tiny", "train.max_steps=60", "train.eval_every=20", "train.checkpoint_every=0"], sc.presets)
    out = tmp_path_factory.mktemp("explain") / "run"
    run_pipeline("health", cfg, out, quiet=True)
    return out


@pytest.fixture(scope="module")
def rows():
    from guimo.data.tabular import breast_cancer

    df, target = breast_cancer()
    return df.drop(columns=[target]).iloc[[0, 19, 200]]


def _row(rows, i=0) -> dict:
    return {k: float(v) for k, v in rows.iloc[i].items()}


def test_explain_prints_both_models_side_by_side(run_path, rows, capsys):
    assert main(["explain", str(run_path), "--row", json.dumps(_row(rows)), "--top", "5"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("label ") and "explaining the '1' score" in lines[0]
    header = next(i for i, l in enumerate(lines) if l.startswith("column"))
    assert "transformer IG" in lines[header] and "LightGBM TreeSHAP" in lines[header]
    assert len([l for l in lines[header + 1 :] if l and not l.startswith(("IG ", "LightGBM"))]) == 5
    assert "IG completeness" in out and "LightGBM: raw score" in out


def test_explain_json_adds_up_for_both_models(run_path, rows, capsys):
    from guimo.inference.tabular import TabularPredictor

    assert main(["explain", str(run_path), "--row", json.dumps(_row(rows, 1)), "--top", "0", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    e, p = rec["explanation"], rec["prediction"]
    assert len(e["features"]) == 30 and {f["feature"] for f in e["features"]} == set(rows.columns)
    gap = e["output"] - e["baseline_output"]
    assert abs(sum(f["attribution"] for f in e["features"]) - gap) <= e["completeness_error"] + 1e-6
    assert e["completeness_error"] < 0.01 * abs(gap) + 1e-4
    assert 1 / (1 + np.exp(-e["output"])) == pytest.approx(p["scores"]["1"], abs=1e-4)  # the score the user is shown
    predictor = TabularPredictor.from_run(run_path)
    x_num, x_cat = predictor.encode(rows.iloc[[1]])
    raw = predictor.lightgbm().predict(np.concatenate([x_num, x_cat], axis=1).astype(np.float64), raw_score=True)[0]
    assert e["tree_raw_score"] == pytest.approx(raw, abs=1e-9)
    assert e["tree_expected"] + sum(f["tree"] for f in e["features"]) == pytest.approx(raw, abs=1e-9)


def test_rows_from_json_and_csv_files_explain_the_same(run_path, rows, tmp_path, capsys):
    (tmp_path / "row.json").write_text(json.dumps(_row(rows, 2)))
    rows.iloc[[2]].to_csv(tmp_path / "row.csv", index=False)
    outs = []
    for f in ("row.json", "row.csv"):
        assert main(["explain", str(run_path), "--row", str(tmp_path / f), "--json"]) == 0
        outs.append(json.loads(capsys.readouterr().out)["explanation"])
    assert [x["feature"] for x in outs[0]["features"]] == [x["feature"] for x in outs[1]["features"]]
    assert outs[0]["output"] == pytest.approx(outs[1]["output"], abs=1e-6)
    rows.to_csv(tmp_path / "three.csv", index=False)  # --index picks one row of several (e.g. the run's data/raw.csv)
    assert main(["explain", str(run_path), "--row", str(tmp_path / "three.csv"), "--index", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["explanation"]["output"] == pytest.approx(outs[0]["output"], abs=1e-6)
    assert main(["explain", str(run_path), "--row", str(run_path / "data" / "raw.csv"), "--index", "7", "--top", "3"]) == 0
    assert "IG completeness" in capsys.readouterr().out
    assert main(["explain", str(run_path), "--row", str(tmp_path / "three.csv"), "--index", "3"]) == 2
    assert "--index 3, but the file has 3 rows" in capsys.readouterr().err


def test_bad_rows_are_named(run_path, rows, tmp_path, capsys):
    rows.to_csv(tmp_path / "three.csv", index=False)
    cases = [
        ({**_row(rows), "tumour size": 3.0}, "unknown columns tumour size"),
        ({k: v for k, v in _row(rows).items() if k != "mean area"}, "missing columns mean area"),
        ('{"mean radius": ', "not a JSON object"),
        (str(tmp_path / "three.csv"), "3 rows; --row explains one: pick it with --index N"),
        (str(tmp_path / "absent.csv"), "neither a JSON object nor a file"),
    ]
    for row, words in cases:
        arg = row if isinstance(row, str) else json.dumps(row)
        assert main(["explain", str(run_path), "--row", arg]) == 2
        assert words in capsys.readouterr().err


def test_predict_batch_explain_adds_each_rows_top_attributions(run_path, rows, tmp_path, capsys):
    src = tmp_path / "rows.csv"
    rows.to_csv(src, index=False)
    out = tmp_path / "scored.csv"
    assert main(["predict", str(run_path), "--batch", str(src), "--out", str(out), "--explain", "--top", "3"]) == 0
    import csv

    scored = list(csv.DictReader(out.open()))
    assert len(scored) == 3 and {"label", "confidence", "explanation"} <= set(scored[0])
    for rec in scored:
        e = json.loads(rec["explanation"])
        assert len(e["features"]) == 3 and all(f["tree"] is not None for f in e["features"])
    jsonl = tmp_path / "scored.jsonl"
    assert main(["predict", str(run_path), "--batch", str(src), "--out", str(jsonl)]) == 0
    assert "explanation" not in json.loads(jsonl.read_text().splitlines()[0])  # only when asked
    assert main(["predict", str(run_path), "--text", "hello", "--explain"]) == 2
    assert "--explain goes with --batch" in capsys.readouterr().err
