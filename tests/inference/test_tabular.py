"""TabularPredictor from a finished run folder: it scores what evaluate measured, reads CSV-like rows (strings) and
JSON rows alike, and names what is wrong with a bad row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from guimo.config import apply_overrides
from guimo.errors import GuimoError
from guimo.inference.tabular import TabularPredictor
from guimo.pipeline.rundir import RunDir
from guimo.pipeline.runner import run_pipeline
from guimo.scenarios import get

TINY = ["model=tiny", "train.max_steps=100", "train.eval_every=25", "train.patience=0", "train.checkpoint_every=0", "train.lr=2e-3"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    sc = get("health")
    out = tmp_path_factory.mktemp("tabular") / "run"
    run_pipeline("health", apply_overrides(sc.config_cls(), TINY, sc.presets), out, quiet=True)
    return RunDir.open(out)


def test_predictor_reproduces_the_evaluated_test_metrics(run):
    from guimo.evaluate.tabular import binary_metrics
    from guimo.scenarios.tabular import load_split

    p = TabularPredictor.from_run(run.path)
    x_num, x_cat, y = load_split(run, "test")
    scores = p.outputs(x_num, x_cat)
    assert binary_metrics(y, scores)["roc_auc"] == pytest.approx(run.metrics()["model"]["roc_auc"], abs=1e-9)
    assert p.feature_names == p.encoder.feature_names and len(p.feature_names) == 30
    assert p.lightgbm().num_feature() == 30  # the saved baseline explains the same columns


def test_predict_frame_and_classify_agree(run):
    from guimo.data.tabular import breast_cancer

    df, target = breast_cancer()
    rows = df.head(20)
    p = get("health").load_predictor(run)
    framed = p.predict_frame(rows)
    assert list(framed.columns[: len(rows.columns)]) == list(rows.columns) and {"score", "label"} <= set(framed.columns)
    assert ((framed["label"] == "1") == (framed["score"] >= 0.5)).all()
    # rows as a CSV gives them: every value a string, the target absent
    as_text = [{k: str(v) for k, v in r.items() if k != target} for r in rows.to_dict("records")]
    answers = p.classify(as_text)
    assert [a["label"] for a in answers] == list(framed["label"])
    np.testing.assert_allclose([a["scores"]["1"] for a in answers], framed["score"], rtol=1e-6)
    assert all(a["out_of_scope"] is False and set(a["scores"]) == {"0", "1"} for a in answers)
    assert all(a["confidence"] >= 0.5 for a in answers)
    # the predictions are learned: most of the known labels come out right
    assert (framed["label"].astype(int) == rows[target]).mean() >= 0.8


def test_bad_rows_are_named(run):
    p = TabularPredictor.from_run(run.path)
    row = {c: 1.0 for c in p.encoder.columns.numeric}
    with pytest.raises(GuimoError, match="lack the feature columns"):
        p.classify([{k: v for k, v in row.items() if k != "mean radius"}])
    with pytest.raises(GuimoError, match="not a number"):
        p.classify([{**row, "mean radius": "large"}])
    with pytest.raises(GuimoError, match="expected a row"):
        p.classify(["mean radius=3"])
    assert p.classify([]) == []
    with pytest.raises(GuimoError, match="not a run directory"):
        TabularPredictor.from_run(run.path / "data")
