"""`guimo run credit` on UCI German credit (../shared/data, skipped when absent) with a tiny model: the file is
recognised without a header, its 5:1 cost matrix sets the Bayes threshold, and every contender's cost per applicant
is reported; without --data the scenario says what to pass."""

from __future__ import annotations

import json

import pytest

from guimo.config import apply_overrides
from guimo.errors import GuimoError
from guimo.pipeline.rundir import RunDir
from guimo.pipeline.runner import run_pipeline
from guimo.scenarios import get
from tests.conftest import shared_data

TINY = ["model=tiny", "train.max_steps=120", "train.eval_every=20", "train.patience=0", "train.checkpoint_every=0", "train.lr=2e-3"]


def config(*extra: str):
    sc = get("credit")
    return apply_overrides(sc.config_cls(), [*TINY, *extra], sc.presets)


def test_german_credit_with_its_cost_matrix(tmp_path):
    german = shared_data("german_credit", "german.csv")
    out = tmp_path / "run"
    run_pipeline("credit", config(f"data.path={german}"), out, quiet=True)
    run = RunDir.open(out)
    m = run.metrics()
    table = json.loads((out / "data" / "table.json").read_text())
    assert table["target"] == "bad_credit" and table["cost_matrix"] == [[0.0, 1.0], [5.0, 0.0]]
    assert json.loads((out / "calibration.json").read_text())["threshold"] == pytest.approx(1 / 6)
    for name, contender in [("model", m["model"]), *m["baselines"].items()]:
        assert 0 < contender["cost_per_row"] < m["details"][name]["cost_per_row_constant"] + 0.05, name
    assert m["model"]["roc_auc"] > 0.65 and m["baselines"]["logistic_regression"]["roc_auc"] > 0.7
    prep = run.manifest["stages"]["preprocess"]
    assert prep["categorical_columns"] == 13 and prep["numeric_columns"] == 7 and prep["test_rows"] == 150
    # 700 training rows, binary: started at the logistic regression baseline, trained at 0.4x the lr
    assert run.manifest["stages"]["init"]["warm_start"] == {"from": "logistic regression (C=1) on 700 training rows", "lr_mult": 0.4}
    assert json.loads((out / "model_config.json").read_text())["linear_skip"] is True
    assert "; init random, then set to the logistic regression (C=1) on 700 training rows" in (out / "report.md").read_text()


def test_a_linear_start_is_refused_under_dp_and_with_plr_tokens(tmp_path):
    csv = tmp_path / "loans.csv"
    csv.write_text("income,debt,defaulted\n" + "".join(f"{i},{i % 7},{i % 2}\n" for i in range(200)))
    for extra, message in ((["privacy.epsilon=3"], "outside the privacy account"), (["model.num_embedding=plr"], "needs linear numeric tokens")):
        with pytest.raises(GuimoError, match=message):
            run_pipeline("credit", config(f"data.path={csv}", "data.target=defaulted", "model.linear_start=logistic", *extra), tmp_path / extra[0], quiet=True)


def test_credit_without_data_says_what_to_pass(tmp_path):
    with pytest.raises(GuimoError, match="needs --data"):
        run_pipeline("credit", config(), tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()  # a failed first collect leaves nothing behind


def test_any_table_needs_its_target_named(tmp_path):
    csv = tmp_path / "loans.csv"
    csv.write_text("income,debt,defaulted\n" + "".join(f"{i},{i % 7},{i % 2}\n" for i in range(60)))
    with pytest.raises(GuimoError, match="data.target=COLUMN.*income, debt, defaulted"):
        run_pipeline("credit", config(f"data.path={csv}"), tmp_path / "run", quiet=True)
    with pytest.raises(GuimoError, match="no target column 'default'.*income, debt, defaulted"):
        run_pipeline("credit", config(f"data.path={csv}", "data.target=default"), tmp_path / "run2", quiet=True)


def test_anonymized_rows_never_reach_the_run(tmp_path):
    """preprocess.anonymize=true: planted e-mails and phone numbers are replaced before the table is written into
    the run, the report says where, and the replaced column is left out of the features."""
    import numpy as np

    rng = np.random.default_rng(0)
    n = 300
    income = rng.normal(50, 15, n).round(1)
    lines = [f"{i},client{i}@example.com,+86 138{i:08d},{income[i]},{int(income[i] + rng.normal(0, 10) < 45)}" for i in range(n)]
    csv = tmp_path / "loans.csv"
    csv.write_text("row,email,phone,income,defaulted\n" + "\n".join(lines) + "\n")
    out = tmp_path / "run"
    run_pipeline("credit", config(f"data.path={csv}", "data.target=defaulted", "preprocess.anonymize=true"), out, quiet=True)
    raw = (out / "data" / "raw.csv").read_text()
    assert "client7@example.com" not in raw and "13800000007" not in raw
    report = json.loads((out / "data" / "anonymize_report.json").read_text())
    assert report["columns"]["email"] == {"email": n}
    prep = RunDir.open(out).manifest["stages"]["preprocess"]
    assert "email" in prep["anonymized"] and "email" in prep["dropped"] and prep["numeric_columns"] == 1


def test_a_small_binary_table_is_one_model_started_at_the_logistic_regression():
    """Below 5,000 rows a binary table starts at the logistic regression and trains as one model (5 members cost 5x the
    time for nothing measured there); other small tables keep the 5-member ensemble; an explicit count always wins."""
    from guimo.scenarios.tabular import ensemble_members, linear_start

    started = linear_start("auto", "binary", 700)
    assert started and ensemble_members(None, 700, started=started) == 1
    assert not linear_start("auto", "regression", 700) and ensemble_members(None, 700) == 5
    assert not linear_start("auto", "binary", 20_000) and ensemble_members(None, 20_000) == 1
    assert ensemble_members(None, 700, private=True) == 1 and ensemble_members(3, 700, started=True) == 3
