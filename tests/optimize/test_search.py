"""The Optuna search: the declared space, real trainings per trial, pruning, keep-only-if-better."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

pytest.importorskip("optuna", reason="the optimize stage needs the 'optimize' extra: pip install 'guimo[optimize]'")

from guimo.optimize import search  # noqa: E402
from guimo.optimize.stage import optimize  # noqa: E402

from .conftest import R2ToyScenario, ToyConfig  # noqa: E402


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


def test_trial_config_sets_params_and_a_fixed_step_count():
    timed = dataclasses.replace(ToyConfig(), train=dataclasses.replace(ToyConfig().train, max_time_s=5.0))
    cfg = search.trial_config(timed, {"train.lr": 0.5, "model.dropout": 0.1}, steps=20)
    assert (cfg.train.lr, cfg.model.dropout, cfg.train.max_steps, cfg.train.eval_every) == (0.5, 0.1, 20, 5)
    assert cfg.train.max_time_s is None  # a trial's schedule never follows a clock (the run's budget included)
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
    fit(model, inputs.train_set, inputs.loss_fn, ctx.cfg.train, out_dir=ctx.run.path, evaluate=inputs.evaluate, metric=inputs.metric,
        higher_is_better=inputs.higher_is_better)


def _same_file(a, b) -> bool:
    return a.read_bytes() == b.read_bytes()


def test_every_trial_runs_the_same_step_schedule(toy_run):
    """Trials used to inherit the search's remaining wall time (or the run's train.max_time_s) as their
    budget, so later trials decayed faster or stopped early and the search compared unlike schedules.
    Under a search timeout and a run budget that is already spent, every trial takes all its steps
    on the same warmup + cosine shape (the lr relative to the trial's own peak)."""
    from guimo.train.loop import get_lr

    scenario, ctx = toy_run(trials=3, trial_steps=20, timeout_s=600.0, prune=False)
    spent = dataclasses.replace(ctx.cfg, train=dataclasses.replace(ctx.cfg.train, max_time_s=1e-9))
    result = search.run_search(scenario, dataclasses.replace(ctx, cfg=spent), "mse", higher_is_better=False)
    assert [t.state for t in result.trials] == ["complete"] * 3
    tcfg = search.trial_config(spent, {}, 20)
    shape = [get_lr(s, tcfg.train) / tcfg.train.lr for s in range(20)]
    for t in result.trials:
        steps = [json.loads(line) for line in (ctx.run / t.path / "train_log.jsonl").read_text().splitlines() if '"loss"' in line]
        assert [r["step"] for r in steps] == [10, 20] and t.steps == 20  # log_every=10
        assert [r["lr"] / t.params["train.lr"] for r in steps] == pytest.approx([shape[9], shape[19]], rel=1e-12)
        assert {r["max_steps"] for r in steps} == {20}


def test_the_search_keeps_a_better_model_when_higher_is_better(toy_run):
    """R^2, where higher is better: a weak baseline is replaced by a candidate with a *higher* value,
    and int8 is kept or not by how much it *lowers* the metric."""
    scenario, ctx = toy_run(R2ToyScenario(), trials=4, trial_steps=20, quantize=True, quantize_tolerance=0.5)
    weak = dataclasses.replace(ctx.cfg, train=dataclasses.replace(ctx.cfg.train, lr=4e-4))
    ctx = dataclasses.replace(ctx, cfg=weak)
    _retrain_baseline(scenario, ctx)
    info = optimize(scenario, ctx)
    report = json.loads((ctx.run / "optimize.json").read_text())
    assert report["metric"] == "r2" and report["higher_is_better"] is True
    assert report["baseline"]["value"] < 0.9  # weak: R^2 well below 1
    complete = [t for t in report["search"]["trials"] if t["state"] == "complete"]
    assert report["search"]["best_trial_value"] == max(t["value"] for t in complete)  # the best is the highest
    assert report["search"]["kept"] is True and report["search"]["candidate"]["value"] > report["baseline"]["value"]
    qz = report["quantize"]
    assert qz["kept"] is True and qz["value_before"] == report["search"]["candidate"]["value"]
    assert info["final"] == "optimize/retrain + int8"
    assert report["final_value"] > report["baseline"]["value"]
    # a tolerance of -1 (int8 kept only if it raised R^2 by 100%) must refuse it: the sign is the metric's
    strict = dataclasses.replace(ctx.cfg, optimize=dataclasses.replace(ctx.cfg.optimize, trials=0, quantize_tolerance=-1.0))
    optimize(scenario, dataclasses.replace(ctx, cfg=strict))
    report = json.loads((ctx.run / "optimize.json").read_text())
    assert report["quantize"]["kept"] is False and not (ctx.run / "model.int8.safetensors").exists()


def test_a_retraining_takes_the_step_count_the_baseline_recorded(toy_run):
    """Trained under train.max_time_s, the baseline's count was chosen from the machine's speed (here
    the 40-step cap) and recorded; the retraining of the best trial takes that count, not a budget."""
    scenario, ctx = toy_run(trials=2, trial_steps=10, prune=False)
    timed = dataclasses.replace(ctx.cfg, train=dataclasses.replace(ctx.cfg.train, max_time_s=3600.0))
    ctx = dataclasses.replace(ctx, cfg=timed)
    _retrain_baseline(scenario, ctx)
    assert search.baseline_config(ctx).train.max_steps == 40 and search.baseline_config(ctx).train.max_time_s is None
    result = search.run_search(scenario, ctx, "mse", higher_is_better=False)
    candidate = search.best_candidate(scenario, ctx, result)
    assert candidate.source == "optimize/retrain" and candidate.cfg.train.max_time_s is None
    log = [json.loads(line) for line in (ctx.run / "optimize" / "retrain" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r][-1] == 40 and not any("plan" in r for r in log)  # no budget re-decided
