"""Optuna search over the declared space; every trial is a real short training, scored on validation.

The space comes from ``OptimizeConfig`` (guimo/scenarios/base.py), as dotted config keys:

- ``train.lr``: log-uniform in [0.2x, 5x] the configured learning rate;
- ``model.dropout``: uniform in [0, 0.3];
- ``train.weight_decay``: uniform in [0, 0.3];
- ``model.d_model``: one of 0.5x, 1x, 2x the configured width (multiples of ``model.n_head``).

Each trial trains with the one loop (``guimo.train.loop.fit``) into ``RUN/optimize/trial-N/`` for
exactly ``optimize.trial_steps`` steps, on the same warmup and cosine schedule as every other
trial (no time budget: a trial's schedule never depends on when it started, so the search
compares like with like), and reports its validation metric at every evaluation, so the
MedianPruner can stop a trial that is worse than the median of earlier trials at the same step.
``optimize.timeout_s`` only decides whether another trial starts.
Everything scenario-specific comes through ``scenario.train_inputs(ctx)``, so any scenario works.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guimo.pipeline.context import Context

LR_RANGE = (0.2, 5.0)  # multiples of the configured train.lr
DROPOUT_RANGE = (0.0, 0.3)
WEIGHT_DECAY_RANGE = (0.0, 0.3)
WIDTH_FACTORS = (0.5, 1.0, 2.0)


@dataclass
class TrialOutcome:
    number: int
    params: dict[str, Any]
    state: str  # "complete", "pruned" or "failed"
    value: float | None  # best validation metric reached (None when failed)
    steps: int
    seconds: float
    path: str  # relative to the run directory


@dataclass
class Candidate:
    """A trained model the stage may keep: its config, weights file and validation value."""

    cfg: Any
    weights: Path
    value: float
    source: str  # e.g. "optimize/trial-3" or "optimize/retrain"


@dataclass
class SearchResult:
    metric: str
    higher_is_better: bool
    trials: list[TrialOutcome] = field(default_factory=list)
    best_params: dict[str, Any] | None = None
    best_value: float | None = None
    best_trial: int | None = None


def search_space(cfg: Any) -> dict[str, tuple]:
    """The declared space for this config: dotted key -> ("log"|"float", lo, hi) or ("choice", values).

    Keys a scenario's config lacks (e.g. a model without dropout) are left out, so the same
    function serves every scenario.
    """
    opt, space = cfg.optimize, {}
    if opt.search_lr:
        space["train.lr"] = ("log", cfg.train.lr * LR_RANGE[0], cfg.train.lr * LR_RANGE[1])
    if opt.search_dropout and hasattr(cfg.model, "dropout"):
        space["model.dropout"] = ("float", *DROPOUT_RANGE)
    if opt.search_weight_decay:
        space["train.weight_decay"] = ("float", *WEIGHT_DECAY_RANGE)
    if opt.search_width and hasattr(cfg.model, "d_model"):
        heads = getattr(cfg.model, "n_head", 1)
        widths = sorted({max(heads, round(cfg.model.d_model * f / heads) * heads) for f in WIDTH_FACTORS})
        space["model.d_model"] = ("choice", widths)
    return space


def apply_params(cfg: Any, params: dict[str, Any]) -> Any:
    """A copy of ``cfg`` with dotted-key values set (``{"train.lr": 1e-3}``), validated by the dataclasses."""
    for key, value in params.items():
        section, name = key.split(".", 1)
        sub = dataclasses.replace(getattr(cfg, section), **{name: value})
        cfg = dataclasses.replace(cfg, **{section: sub})
    return cfg


def trial_config(cfg: Any, params: dict[str, Any], steps: int) -> Any:
    """The config one trial trains with: the sampled params, exactly ``steps`` steps, four validations.

    ``train.max_time_s`` is cleared: under a time budget a trial's step count, and so its cosine
    schedule, would depend on how fast the machine happened to be while it ran.
    """
    cfg = apply_params(cfg, params)
    train = dataclasses.replace(
        cfg.train,
        max_steps=steps,
        warmup_steps=min(cfg.train.warmup_steps, max(1, steps // 10)),
        eval_every=max(1, steps // 4),
        checkpoint_every=0,
        patience=0,
        max_time_s=None,
    )
    return dataclasses.replace(cfg, train=train)


def train_once(scenario, ctx: Context, cfg: Any, out_dir: Path, *, label: str, report=None):
    """Train a model for ``cfg`` into ``out_dir`` with the one loop; return (model, TrainResult, TrainInputs).

    The model starts from the run's ``checkpoints/init.safetensors`` when its architecture equals
    the run's (so a trial with the baseline's values retraces the baseline), else from a seeded
    random init. ``report(value, step)`` is called after each validation and may raise to stop.
    """
    import torch

    from guimo.config import to_dict
    from guimo.io import append_jsonl, read_json
    from guimo.models.load import load_weights, read_weights
    from guimo.train.loop import fit

    sub_ctx = Context(run=ctx.run, cfg=cfg, progress=ctx.progress, quiet=True)
    model_cfg = scenario.model_config(sub_ctx)
    torch.manual_seed(cfg.seed)
    model = scenario.build_model(model_cfg)
    init = ctx.run / "checkpoints" / "init.safetensors"
    if init.exists() and (ctx.run / "model_config.json").exists() and read_json(ctx.run / "model_config.json") == to_dict(model_cfg):
        load_weights(model, read_weights(init), strict=True)
    inputs = scenario.train_inputs(sub_ctx)
    evaluate = inputs.evaluate
    if report is not None:
        every, calls = cfg.train.eval_every, [0]

        def evaluate(m):  # noqa: F811 - the reporting wrapper around the scenario's function
            metrics = inputs.evaluate(m)
            calls[0] += 1
            try:
                report(metrics[inputs.metric], calls[0] * every)
            except BaseException:  # pruned: fit will not log this validation, so log it here
                append_jsonl(out_dir / "train_log.jsonl", {"step": calls[0] * every, "eval": metrics, "pruned": True})
                raise
            return metrics

    if out_dir.exists():
        shutil.rmtree(out_dir)  # a trial never resumes a stale one (fit would pick up its checkpoints)
    try:
        with ctx.progress.task(label, total=cfg.train.max_steps) as bar:
            result = fit(
                model, inputs.train_set, inputs.loss_fn, cfg.train, out_dir=out_dir, seed=cfg.seed,
                evaluate=evaluate, metric=inputs.metric, higher_is_better=inputs.higher_is_better,
                progress=lambda step, info: bar.update(completed=step, info=f"loss {info['loss']:.4f}"),
            )
    finally:  # also when a pruned trial leaves fit by an exception
        for p in (out_dir / "checkpoints").glob("step-*"):
            p.unlink()  # resumable state is useless once the trial ended; keep best.safetensors
    return model, result, inputs


def run_search(scenario, ctx: Context, metric: str, higher_is_better: bool) -> SearchResult:
    """Run ``optimize.trials`` trials (or until ``optimize.timeout_s``) and return their outcomes."""
    import optuna

    cfg, opt = ctx.cfg, ctx.cfg.optimize
    space = search_space(cfg)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # trial states are recorded in optimize.json
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0) if opt.prune else optuna.pruners.NopPruner()
    study = optuna.create_study(
        direction="maximize" if higher_is_better else "minimize",
        sampler=optuna.samplers.TPESampler(seed=cfg.seed),
        pruner=pruner,
    )
    out = SearchResult(metric=metric, higher_is_better=higher_is_better)

    def objective(trial: optuna.Trial) -> float:
        params = {key: _suggest(trial, key, spec) for key, spec in space.items()}
        tcfg = trial_config(cfg, params, opt.trial_steps)
        rel = f"optimize/trial-{trial.number}"
        t0 = time.perf_counter()
        record = TrialOutcome(trial.number, params, "failed", None, 0, 0.0, rel)
        out.trials.append(record)

        def report(value: float, step: int) -> None:
            record.value = value if record.value is None else (max if higher_is_better else min)(record.value, value)
            record.steps = step
            trial.report(value, step)
            if trial.should_prune():
                record.state = "pruned"
                raise optuna.TrialPruned(f"{metric} {value:.4f} at step {step}")

        try:
            _, result, _ = train_once(scenario, ctx, tcfg, ctx.run / rel, label=f"trial {trial.number}", report=report)
        finally:
            record.seconds = round(time.perf_counter() - t0, 3)
        record.steps = result.steps
        if result.best_metric is None or not math.isfinite(result.best_metric):
            return float("nan")  # diverged: Optuna records the trial as failed
        record.state, record.value = "complete", result.best_metric
        return result.best_metric

    # timeout: no trial starts after it; a running trial finishes its full schedule
    study.optimize(objective, n_trials=opt.trials, timeout=opt.timeout_s, catch=())
    complete = [t for t in out.trials if t.state == "complete"]
    if complete:
        best = (max if higher_is_better else min)(complete, key=lambda t: t.value)
        out.best_params, out.best_value, out.best_trial = best.params, best.value, best.number
    return out


def baseline_config(ctx: Context) -> Any:
    """The run's config with the step count its training actually took.

    Under ``train.max_time_s`` the trained model's count was chosen from the machine's speed and
    recorded in its checkpoints; a retraining that re-estimated it would train another schedule
    than the baseline it is compared with, so it takes the recorded count and no budget.
    """
    cfg = ctx.cfg
    if cfg.train.max_time_s is None:
        return cfg
    from guimo.errors import GuimoError
    from guimo.io import read_json
    from guimo.train import checkpoint

    try:
        stem = checkpoint.latest(ctx.run / "checkpoints")
    except GuimoError:
        stem = None
    recorded = read_json(stem.with_suffix(".json")).get("plan") if stem is not None else None
    if not recorded or not recorded.get("decided"):
        return cfg  # no recorded choice (an older run): the budget decides again
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, max_steps=int(recorded["max_steps"]), max_time_s=None))


def best_candidate(scenario, ctx: Context, result: SearchResult) -> Candidate | None:
    """The best trial as a full-length model: the trial itself if it trained as long as the
    baseline did, else a retraining with the best values and the baseline's full train config
    (with the step count the baseline took, ``baseline_config``)."""
    if result.best_params is None:
        return None
    base = baseline_config(ctx)
    cfg = apply_params(base, result.best_params)
    if ctx.cfg.optimize.trial_steps >= base.train.max_steps:
        trial_dir = ctx.run / f"optimize/trial-{result.best_trial}"
        return Candidate(trial_config(ctx.cfg, result.best_params, ctx.cfg.optimize.trial_steps), trial_dir / "checkpoints" / "best.safetensors",
                         result.best_value, f"optimize/trial-{result.best_trial}")
    _, trained, _ = train_once(scenario, ctx, cfg, ctx.run / "optimize" / "retrain", label="retrain")
    if trained.best_metric is None or not math.isfinite(trained.best_metric):
        return None
    return Candidate(cfg, ctx.run / "optimize" / "retrain" / "checkpoints" / "best.safetensors", trained.best_metric, "optimize/retrain")


def is_better(value: float, than: float, higher_is_better: bool) -> bool:
    return value > than if higher_is_better else value < than


def _suggest(trial, key: str, spec: tuple) -> Any:
    kind = spec[0]
    if kind == "log":
        return trial.suggest_float(key, spec[1], spec[2], log=True)
    if kind == "float":
        return trial.suggest_float(key, spec[1], spec[2])
    return trial.suggest_categorical(key, list(spec[1]))
