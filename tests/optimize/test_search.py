"""The Optuna search: the declared space, real trainings per trial, pruning, keep-only-if-better."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

pytest.importorskip("optuna", reason="the optimize stage needs the 'optimize' extra: pip install 'guimo[optimize]'")

from guimo.optimize import search  # noqa: E402
from guimo.optimize.stage import optimize  # noqa: E402

from .conftest import ToyConfig  # noqa: E402


def test_space_follows_the_config():
    cfg = ToyConfig()
    cfg = dataclasses.replace(cfg, optimize=dataclasses.replace(cfg.optimize, search_width=True))
    space = search.search_space(cfg)
    assert space["train.lr"] == ("log", pytest.approx(0.02 * 0.2), pytest.approx(0.02 * 5))
    assert space["model.dropout"] == ("float", 0.0, 0.3)
    assert space["train.weight_decay"] == ("float", 0.0, 0.3)
    assert space["model.d_model"] == ("choice", [4, 8, 16])  # 0.5x, 1x, 2x in multiples of n_head=2
    off = dataclasses.replace(cfg, optimize=dataclasses.replace(cfg.optimize, search_lr=False, search_width=False))
    assert set(search.search_space(off)) == {"model.dropout", "train.weight_decay"}


def test_trial_config_sets_params_and_budget():
    cfg = search.trial_config(ToyConfig(), {"train.lr": 0.5, "model.dropout": 0.1}, steps=20, max_time_s=3.0)
    assert (cfg.train.lr, cfg.model.dropout, cfg.train.max_steps, cfg.train.eval_every, cfg.train.max_time_s) == (0.5, 0.1, 20, 5, 3.0)
    assert cfg.train.weight_decay == ToyConfig().train.weight_decay  # untouched keys stay
    with pytest.raises(ValueError):
        search.apply_params(ToyConfig(), {"train.lr": -1.0})  # the dataclasses validate


def test_search_trains_each_trial_into_its_folder_and_prunes(toy_run):
    scenario, ctx = toy_run(trials=8, trial_steps=40)
    result = search.run_search(scenario, ctx, "mse", higher_is_better=False)
    assert len(result.trials) == 8
    states = [t.state for t in result.trials]
    assert "pruned" in states and "complete" in states
    for t in result.trials:
        lo, hi = 0.02 * 0.2, 0.02 * 5
        assert lo <= t.params["train.lr"] <= hi and 0 <= t.params["model.dropout"] <= 0.3
        log = ctx.run / t.path / "train_log.jsonl"
        lines = [json.loads(line) for line in log.read_text().splitlines()]
        evals = [r["eval"]["mse"] for r in lines if "eval" in r]
        assert evals and t.value == pytest.approx(min(evals))  # the trial's score is its best validation
        assert not list((ctx.run / t.path / "checkpoints").glob("step-*"))  # resumable state is cleaned up
        if t.state == "pruned":
            assert t.steps < 40
    complete = [t for t in result.trials if t.state == "complete"]
    assert result.best_value == min(t.value for t in complete)


def test_search_keeps_a_better_model_and_records_why(toy_run):
    # A deliberately weak baseline (lr 50x too small): the search must find and keep better values.
    scenario, ctx = toy_run(trials=4, trial_steps=20)
    weak = dataclasses.replace(ctx.cfg, train=dataclasses.replace(ctx.cfg.train, lr=4e-4))
    ctx = dataclasses.replace(ctx, cfg=weak)
    _retrain_baseline(scenario, ctx)
    info = optimize(scenario, ctx)
    report = json.loads((ctx.run / "optimize.json").read_text())
    assert report["search"]["kept"] is True and info["final"] == "optimize/retrain"
    assert report["search"]["candidate"]["value"] < report["baseline"]["value"]
    assert report["final_value"] == pytest.approx(report["search"]["candidate"]["value"])
    metrics = json.loads((ctx.run / "metrics.json").read_text())
    assert metrics["optimized"]["source"] == "optimize/retrain"
    assert metrics["model"]["mse"] == pytest.approx(report["final_value"])  # metrics.json describes the served model
    assert _same_file(ctx.run / "model.safetensors", ctx.run / "optimize/retrain/checkpoints/best.safetensors")


def test_search_keeps_the_baseline_when_the_candidate_is_worse(toy_run, monkeypatch):
    scenario, ctx = toy_run(trials=2, trial_steps=10)
    before = (ctx.run / "metrics.json").read_text()

    def worse(scenario_, ctx_, result):
        return search.Candidate(ctx_.cfg, ctx_.run / "checkpoints" / "best.safetensors", math.inf, "optimize/retrain")

    monkeypatch.setattr(search, "best_candidate", worse)
    info = optimize(scenario, ctx)
    report = json.loads((ctx.run / "optimize.json").read_text())
    assert report["search"]["kept"] is False and info["final"] == "checkpoints/best.safetensors"
    assert len(report["search"]["trials"]) == 2
    assert _same_file(ctx.run / "model.safetensors", ctx.run / "checkpoints" / "best.safetensors")
    assert (ctx.run / "metrics.json").read_text() == before  # nothing changed, nothing re-evaluated


def test_width_search_keeps_a_full_length_trial_and_a_rerun_restores_the_architecture(toy_run):
    # trial_steps == train.max_steps: the best trial itself is the candidate (no retraining).
    scenario, ctx = toy_run(trials=3, trial_steps=40, search_width=True)
    weak = dataclasses.replace(ctx.cfg, train=dataclasses.replace(ctx.cfg.train, lr=4e-4))
    ctx = dataclasses.replace(ctx, cfg=weak)
    _retrain_baseline(scenario, ctx)
    trained = json.loads((ctx.run / "model_config.json").read_text())
    info = optimize(scenario, ctx)
    report = json.loads((ctx.run / "optimize.json").read_text())
    best = report["search"]["best_trial"]
    assert report["search"]["kept"] is True and info["final"] == f"optimize/trial-{best}"
    assert json.loads((ctx.run / "model_config.json").read_text())["d_model"] == report["search"]["best_params"]["model.d_model"]
    assert _same_file(ctx.run / "model.safetensors", ctx.run / f"optimize/trial-{best}/checkpoints/best.safetensors")
    from guimo.pipeline.runner import load_model

    load_model(scenario, ctx.run)  # the served weights fit the recorded architecture
    no_search = dataclasses.replace(ctx.cfg, optimize=dataclasses.replace(ctx.cfg.optimize, trials=0))
    optimize(scenario, dataclasses.replace(ctx, cfg=no_search))
    assert json.loads((ctx.run / "model_config.json").read_text()) == trained
    assert _same_file(ctx.run / "model.safetensors", ctx.run / "checkpoints" / "best.safetensors")


def _retrain_baseline(scenario, ctx) -> None:
    import shutil

    import torch

    from guimo.train.loop import fit

    shutil.rmtree(ctx.run / "checkpoints")
    torch.manual_seed(ctx.cfg.seed)
    model = scenario.build_model(ctx.cfg.model)
    inputs = scenario.train_inputs(ctx)
    fit(model, inputs.train_set, inputs.loss_fn, ctx.cfg.train, out_dir=ctx.run.path, evaluate=inputs.evaluate, metric="mse")


def _same_file(a, b) -> bool:
    return a.read_bytes() == b.read_bytes()


def test_a_time_budget_stop_is_validated_and_kept(toy_run, tmp_path):
    """Trials get the search's remaining time as train.max_time_s: when it runs out, the weights the
    trial stopped with are validated (not an older checkpoint restored), so its score is honest."""
    from guimo.train.loop import fit

    scenario, ctx = toy_run()
    cfg = search.trial_config(ctx.cfg, {}, steps=40, max_time_s=1e-9)  # spent after the first step
    model = scenario.build_model(cfg.model)
    inputs = scenario.train_inputs(ctx)
    result = fit(model, inputs.train_set, inputs.loss_fn, cfg.train, out_dir=tmp_path, evaluate=inputs.evaluate, metric="mse")
    assert result.steps == 1 and result.best_step == 1
    evals = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines() if '"eval"' in line]
    assert [e["step"] for e in evals] == [1] and evals[0]["eval"]["mse"] == pytest.approx(result.best_metric)
