"""`guimo scale fraud` on a tiny setting: a sweep of nested stratified shares of a small generated payment stream,
whose report draws the ROC-AUC learning curve of the FT-Transformer and of LightGBM side by side."""

from __future__ import annotations

import json

import numpy as np
import pytest

FRACTIONS = [0.25, 0.5, 1.0]


@pytest.fixture(scope="module")
def fraud_sweep(tmp_path_factory):
    from guimo.scale.sweep import SweepSpec, run_sweep

    spec = SweepSpec(scenario="fraud", sizes=["tiny"], fractions=FRACTIONS, epochs=2.0, batch_size=64, lr_ref=2e-3, d_ref=32, min_steps=40,
                     evals=2, threads=1, overrides=["data.rows=4000", "data.fraud_rate=0.05", "train.patience=0"])
    out = tmp_path_factory.mktemp("scale") / "fraud"
    run_sweep(spec, out, quiet=True)
    return out


def test_fractions_are_nested_and_keep_the_fraud_share(fraud_sweep):
    from guimo.pipeline.rundir import list_runs

    runs = sorted(list_runs(fraud_sweep), key=lambda r: r.config["data"]["fraction"])
    assert [r.config["data"]["fraction"] for r in runs] == FRACTIONS
    prep = [r.manifest["stages"]["preprocess"] for r in runs]
    rows = [p["train_rows"] for p in prep]
    assert rows[0] < rows[1] < rows[2] and rows[0] == pytest.approx(0.25 * rows[2], rel=0.05)
    rates = [p["positive_rate"] for p in prep]
    assert max(rates) - min(rates) < 0.01, rates  # stratified: every share keeps the fraud rate
    tests = {r.manifest["stages"]["preprocess"]["test_rows"] for r in runs}
    assert len(tests) == 1  # the same test rows for every point


def test_report_draws_transformer_and_lightgbm_side_by_side(fraud_sweep):
    from guimo.scale.report import build_report

    result = build_report(fraud_sweep, metric="roc_auc", n_bootstrap=20, quiet=True)
    assert result["metric"] == "roc_auc" and result["higher_is_better"] is True
    curves = result["labels"]["curves"]["roc_auc"]
    assert {"model", "lightgbm", "logistic_regression"} <= set(curves)
    for name in ("model", "lightgbm"):
        xs = [x for x, _ in curves[name]["points"]]
        ys = [y for _, y in curves[name]["points"]]
        assert len(xs) == 3 and all(0.5 < y <= 1 for y in ys), (name, ys)
    report = (fraud_sweep / "scale" / "report.md").read_text()
    assert "roc_auc against labelled examples per class" in report and "lightgbm" in report
    assert (fraud_sweep / "scale" / "plots" / "labels_roc_auc.png").exists()
