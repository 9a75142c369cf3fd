"""`guimo run health` end to end on scikit-learn's packaged sets with a tiny model (seconds on one thread).

The transformer must learn breast cancer (ROC-AUC near the baselines'), metrics.json must hold the transformer, both
baselines, the validation metrics and the calibration in the shape every scenario's has, and the report must say
which wins. The diabetes set runs the regression task end to end.
"""

from __future__ import annotations

import json

import pytest

from guimo.config import apply_overrides
from guimo.errors import GuimoError
from guimo.pipeline.rundir import RunDir
from guimo.pipeline.runner import run_pipeline
from guimo.scenarios import get

TINY = ["model=tiny", "train.max_steps=150", "train.eval_every=25", "train.patience=0", "train.checkpoint_every=0", "train.lr=2e-3"]


def tiny_config(*extra: str):
    sc = get("health")
    return apply_overrides(sc.config_cls(), [*TINY, *extra], sc.presets)


@pytest.fixture(scope="module")
def cancer_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("health") / "run"
    # from random weights: what the transformer itself learns (the default starts small binary tables at the logistic
    # regression; tests/scenarios/test_credit.py runs that)
    run_pipeline("health", tiny_config("model.linear_start=none"), out, quiet=True)
    return RunDir.open(out)


def test_transformer_learns_breast_cancer_beside_both_baselines(cancer_run):
    m = cancer_run.metrics()
    assert m["task"] == "binary" and m["headline"] == "roc_auc" and m["higher_is_better"] is True
    assert set(m["baselines"]) == {"logistic_regression", "lightgbm"}
    for contender in [m["model"], *m["baselines"].values()]:
        assert {"roc_auc", "pr_auc", "recall_at_1pct_fpr", "ece", "accuracy"} <= set(contender)
    best = max(b["roc_auc"] for b in m["baselines"].values())
    assert m["model"]["roc_auc"] > 0.95 and m["model"]["roc_auc"] > best - 0.05, m
    assert m["model"]["accuracy"] > 0.85  # the majority class is 63%
    assert m["val"]["roc_auc"] > 0.9
    assert m["model"]["examples"] == m["protocol"]["test_rows"]


def test_report_says_which_wins_and_calibration_is_stored(cancer_run):
    from guimo.evaluate.verdict import verdict

    m = cancer_run.metrics()
    report = (cancer_run.path / "report.md").read_text()
    sentences = verdict(m)
    assert sentences and "wins" in sentences[0] and sentences[0] in report
    cal = json.loads((cancer_run.path / "calibration.json").read_text())
    assert cal["fitted_on"] == "val" and cal["temperature"] > 0 and cal["threshold"] == 0.5
    assert m["calibration"]["ece_after"] <= m["calibration"]["ece_before"] + 0.05
    assert (cancer_run.path / "baseline_lightgbm.txt").read_text().startswith("tree")


def test_k_fold_splits_cover_the_rows_once(tmp_path):
    """data.folds=5: the test folds of the 5 runs are disjoint and together every row (stratified k-fold)."""
    from guimo.data.tabular import breast_cancer, infer_columns
    from guimo.scenarios.tabular import split_indices, target_strata

    df, target = breast_cancer()
    cols = infer_columns(df, target)
    y = target_strata(df, cols)
    tests = []
    for fold in range(5):
        d = tiny_config("data.folds=5", f"data.fold={fold}").data
        parts, how = split_indices(df, y, d, None, seed=0)
        assert not set(parts["train"]) & set(parts["test"]) and not set(parts["val"]) & set(parts["test"])
        assert abs(y[parts["test"]].mean() - y.mean()) < 0.03, "stratified"
        tests.append(set(parts["test"]))
    assert set.union(*tests) == set(range(len(df))) and sum(map(len, tests)) == len(df)


def test_diabetes_is_a_regression_learned_by_an_ensemble(tmp_path):
    """Also the ensemble's path through the scenario (model.members=2: members trained side by side, logits averaged)."""
    out = tmp_path / "run"
    run_pipeline("health", tiny_config("data.dataset=diabetes", "model.members=2"), out, quiet=True)
    run = RunDir.open(out)
    assert json.loads((run.path / "model_config.json").read_text())["n_members"] == 2
    m = run.metrics()
    assert m["task"] == "regression" and m["headline"] == "r2"
    assert {"r2", "rmse", "mae"} <= set(m["model"]) and set(m["baselines"]) == {"logistic_regression", "lightgbm"}
    assert m["model"]["r2"] > 0.2  # the mean predictor scores 0
    assert 30 < m["model"]["rmse"] < 80  # in the target's units (progression scores 25-346)


def test_bad_settings_are_refused():
    with pytest.raises(GuimoError, match="fold"):
        tiny_config("data.folds=5", "data.fold=5")
    with pytest.raises(GuimoError, match="dataset"):
        tiny_config("data.dataset=heart")
