"""Train what `guimo run` trains, for a benchmark: the scenario's own data stages, model, dataset, loss and
validation metric, through ``guimo.train.loop.fit``. A bench that times "guimo" with a loop of its own measures
that loop, not the product (issue #22, part 13).

    from product import Prepared, prepare
    prep = prepare("recommend", ["model.d_model=64"], out=tmp / "run", data="../shared/data/...")
    result, model, step_s = prep.train(40, tmp / "train-bf16", precision="bf16")
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as `python bench/x.py`: make guimo importable


@dataclass
class Prepared:
    """A run folder through collect, preprocess and init, and what its train stage would call ``fit`` with."""

    scenario: Any
    run: Any  # guimo.pipeline.rundir.RunDir
    cfg: Any  # the settled config (the settings preprocess chose for the data included)
    inputs: Any  # guimo.scenarios.base TrainInputs: train_set, loss_fn, evaluate, metric

    def model(self):
        """A fresh copy of the run's initial weights (every contender starts from the same ones)."""
        from guimo.models.load import load_model

        return load_model(self.scenario, self.run, weights=self.run.path / "checkpoints" / "init.safetensors")

    def train(self, steps: int, out: Path, *, skip: int = 3, evaluate: bool = False, **train_overrides: Any):
        """``fit`` for ``steps`` optimizer steps from the initial weights, no checkpoints or evaluations on the way.

        Returns ``(TrainResult, model, seconds per step)``: the step time is the median gap between ``fit``'s
        progress calls after the first ``skip`` steps (allocator and kernel warm-up), so data loading, forward,
        backward and the optimizer count, and the setup before the first step and the evaluation do not.
        With ``evaluate`` the run's validation metric is computed once, at the end (``fit``'s final evaluation).
        """
        stamps: list[float] = []
        result, model = self.fit(steps, out, evaluate=self.inputs.evaluate if evaluate else None,
                                 progress=lambda step, info: stamps.append(time.perf_counter()), **train_overrides)
        gaps = [b - a for a, b in zip(stamps[skip:], stamps[skip + 1:])]
        return result, model, statistics.median(gaps) if gaps else float("nan")

    def fit(self, steps: int, out: Path, *, evaluate=None, eval_every: int = 0, progress=None, **train_overrides: Any):
        """``guimo.train.loop.fit`` on a fresh copy of the initial weights with the run's train config, ``steps``
        steps exactly (no epoch or time limit, no early stop), ``evaluate`` every ``eval_every`` steps and at the
        end (None: never), a checkpoint only at the end. Returns ``(TrainResult, model)``."""
        from guimo.train.loop import fit

        tcfg = replace(self.cfg.train, max_steps=steps, max_epochs=None, max_time_s=None, eval_every=eval_every,
                       checkpoint_every=0, log_every=steps, patience=0, **train_overrides)
        model = self.model()
        result = fit(model, self.inputs.train_set, self.inputs.loss_fn, tcfg, out_dir=out, seed=self.cfg.seed,
                     evaluate=evaluate, metric=self.inputs.metric, higher_is_better=self.inputs.higher_is_better,
                     progress=progress)
        return result, model


def prepare(scenario_name: str, overrides: list[str], out: Path, *, data: str | None = None,
            config_file: str | None = None) -> Prepared:
    """Run collect, preprocess and init into ``out`` as `guimo run SCENARIO [--config F] [--data D] --set ...`
    would, and build the train stage's inputs from that folder."""
    from guimo import scenarios
    from guimo.cli.run import resolve_config
    from guimo.pipeline.context import Context
    from guimo.pipeline.progress import Progress
    from guimo.pipeline.runner import run_pipeline

    scenario = scenarios.get(scenario_name)
    cfg = resolve_config(scenario, config_file, overrides, data)
    run = run_pipeline(scenario_name, cfg, out, to_stage="init", quiet=True)
    if hasattr(scenario, "settled_config"):
        cfg = scenario.settled_config(run, cfg)
    with Progress(quiet=True) as progress:
        inputs = scenario.train_inputs(Context(run=run, cfg=cfg, progress=progress, quiet=True))
    return Prepared(scenario=scenario, run=run, cfg=cfg, inputs=inputs)
