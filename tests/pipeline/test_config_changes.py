"""Re-running a run folder with other settings: refused where the run holds output made with the
old values (naming each key, old -> new), allowed from the first stage the keys change."""

from __future__ import annotations

import json

import pytest

from guimo.cli import main
from guimo.errors import GuimoError
from guimo.pipeline.rundir import ABSENT, RunDir, config_changes, key_stage
from guimo.pipeline.runner import run_pipeline
from tests.scenarios.test_recommend import tiny_config


def test_config_changes_and_key_stages():
    old = {"seed": 0, "train": {"lr": 0.01, "steps": 5}, "eval": {"sampled": 100}}
    new = {"seed": 0, "train": {"lr": 0.02, "steps": 5}, "eval": {"sampled": 0}, "extra": 1}
    assert config_changes(old, new) == {"eval.sampled": (100, 0), "extra": (ABSENT, 1), "train.lr": (0.01, 0.02)}
    assert [key_stage(k) for k in ("data.path", "seed", "model.d_model", "train.lr", "eval.ks", "eval.sampled", "optimize.trials", "new")] == \
        ["collect", "init", "init", "train", "train", "evaluate", "optimize", "collect"]
    # search's cross-encoder reranker is trained inside evaluate: `--from evaluate --set rerank.enabled=true` adds it to a trained run
    assert key_stage("rerank.enabled") == key_stage("rerank.train.max_steps") == "evaluate"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A recommend run trained for 4 steps, not yet evaluated (stops after train)."""
    out = tmp_path_factory.mktemp("cfg") / "run"
    run_pipeline("recommend", tiny_config("eval.sampled=0", steps=4), out, to_stage="train", quiet=True)
    return out


def _copy(trained, tmp_path):
    import shutil

    shutil.copytree(trained, tmp_path / "run")
    return tmp_path / "run"


def test_a_changed_key_over_its_output_is_refused_naming_old_and_new(trained, tmp_path):
    run = _copy(trained, tmp_path)
    before = (run / "manifest.json").read_text()
    with pytest.raises(GuimoError) as e:
        run_pipeline("recommend", tiny_config("eval.sampled=0", "train.lr=0.02", steps=4), run, quiet=True)
    msg = str(e.value)
    assert "train.lr: 0.01 -> 0.02" in msg and "--from train" in msg and "another --out" in msg
    assert (run / "manifest.json").read_text() == before  # nothing rewritten
    with pytest.raises(GuimoError, match=r"train\.lr: 0\.01 -> 0\.02"):  # re-running only later stages would not retrain
        run_pipeline("recommend", tiny_config("eval.sampled=0", "train.lr=0.02", steps=4), run, from_stage="evaluate", quiet=True)
    with pytest.raises(GuimoError, match=r"model\.d_model: 32 -> 16.*--from init"):
        run_pipeline("recommend", tiny_config("eval.sampled=0", "model.d_model=16", steps=4), run, from_stage="train", quiet=True)


def test_from_the_first_stage_a_key_changes_is_allowed_and_recorded(trained, tmp_path):
    run = _copy(trained, tmp_path)
    run_pipeline("recommend", tiny_config("eval.sampled=0", "train.lr=0.02", steps=4), run, from_stage="train", to_stage="train", quiet=True)
    m = RunDir.open(run).manifest
    assert m["config"]["train"]["lr"] == 0.02
    assert m["config_changes"][-1]["from_stage"] == "train" and m["config_changes"][-1]["changed"] == {"train.lr": [0.01, 0.02]}
    # a key that only stages after --to read keeps its recorded value (a later call that runs them checks it)
    run_pipeline("recommend", tiny_config("eval.sampled=0", "train.lr=0.02", "eval.sampled=7", steps=4), run, to_stage="train", quiet=True)
    assert RunDir.open(run).config["eval"]["sampled"] == 0


def test_a_key_whose_stages_never_ran_needs_no_from(tmp_path):
    """A scale sweep prepares a point's data, then sizes its training from it: that is not a change over output."""
    run_pipeline("recommend", tiny_config(steps=4), tmp_path / "r", to_stage="preprocess", quiet=True)
    run_pipeline("recommend", tiny_config("seed=3", "train.lr=0.02", steps=4), tmp_path / "r", to_stage="init", quiet=True)
    config = RunDir.open(tmp_path / "r").config
    assert (config["seed"], config["train"]["lr"]) == (3, 0.01)  # train.lr is not read by init: recorded later
    with pytest.raises(GuimoError, match=r"seed: 3 -> 4"):
        run_pipeline("recommend", tiny_config("seed=4", steps=4), tmp_path / "r", to_stage="init", quiet=True)


def test_a_key_added_to_guimo_after_the_run_was_made_does_not_block_its_resume(trained, tmp_path):
    run = _copy(trained, tmp_path)
    m = json.loads((run / "manifest.json").read_text())
    del m["config"]["train"]["lr"]  # as if train.lr had been added to guimo since
    (run / "manifest.json").write_text(json.dumps(m))
    run_pipeline("recommend", tiny_config("eval.sampled=0", steps=4), run, to_stage="train", quiet=True)
    m = RunDir.open(run).manifest
    assert m["config"]["train"]["lr"] == 0.01 and m["config_changes"][-1]["changed"] == {"train.lr": [None, 0.01]}


def test_the_cli_refuses_a_changed_set_on_resume_and_allows_it_from_evaluate(trained, tmp_path, capsys):
    run = _copy(trained, tmp_path)
    assert main(["run", "recommend", "--out", str(run), "--from", "evaluate", "--set", "train.lr=0.05", "--quiet"]) == 2
    assert "train.lr: 0.01 -> 0.05" in capsys.readouterr().err
    assert main(["run", "recommend", "--out", str(run), "--from", "evaluate", "--to", "evaluate", "--set", 'eval.baselines=["popularity"]', "--quiet"]) == 0
    assert RunDir.open(run).stage_done("evaluate")
    assert list(json.loads((run / "metrics.json").read_text())["baselines"]) == ["popularity"]


def test_from_on_a_run_whose_config_no_longer_parses_is_an_error_not_the_defaults(trained, tmp_path, capsys):
    run = _copy(trained, tmp_path)
    m = json.loads((run / "manifest.json").read_text())
    m["config"]["train"]["renamed_key"] = 1
    (run / "manifest.json").write_text(json.dumps(m))
    assert main(["run", "recommend", "--out", str(run), "--from", "evaluate", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "manifest.json" in err and "renamed_key" in err and "new --out" in err
    assert not (run / "metrics.json").exists()
    assert main(["run", "recommend", "--from", "evaluate", "--quiet"]) == 2  # --from without --out: no new folder
    assert "--out RUN" in capsys.readouterr().err
