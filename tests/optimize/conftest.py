"""A toy scenario (linear regression through a two-layer net) that exercises the optimize stage in
milliseconds per step, proving it needs nothing beyond the Scenario protocol."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import torch

from guimo.scenarios.base import InitConfig, OptimizeConfig, TrainInputs
from guimo.train.config import TrainConfig


@dataclass
class ToyModelConfig:
    d_model: int = 8
    n_head: int = 2
    dropout: float = 0.0


@dataclass
class ToyConfig:
    seed: int = 0
    model: ToyModelConfig = field(default_factory=ToyModelConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(max_steps=40, batch_size=16, lr=0.02, warmup_steps=2,
                                                                  eval_every=10, checkpoint_every=0, log_every=10))
    init: InitConfig = field(default_factory=InitConfig)
    optimize: OptimizeConfig = field(default_factory=OptimizeConfig)


class Rows:
    """y = x @ w + noise, 256 examples of 4 features."""

    tokens_per_example = 1

    def __init__(self, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(256, 4, generator=g)
        self.y = self.x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.1 * torch.randn(256, 1, generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def batch(self, indices):
        return {"x": self.x[indices], "y": self.y[indices]}


def mse(model, batch):
    return torch.nn.functional.mse_loss(model(batch["x"]), batch["y"])


class ToyScenario:
    name = "toy"
    config_cls = ToyConfig
    model_config_cls = ToyModelConfig
    presets: dict = {}
    headline = "mse"
    higher_is_better = False

    def collect(self, ctx):  # the data is generated in train_inputs
        return {}

    def preprocess(self, ctx):
        return {}

    def model_config(self, ctx):
        return ctx.cfg.model

    def build_model(self, mc: ToyModelConfig):
        return torch.nn.Sequential(torch.nn.Linear(4, mc.d_model), torch.nn.Dropout(mc.dropout), torch.nn.Linear(mc.d_model, 1))

    def train_inputs(self, ctx) -> TrainInputs:
        val = Rows(seed=1)

        def evaluate(model):
            with torch.no_grad():
                return {"mse": float(mse(model.eval(), val.batch(list(range(len(val))))))}

        return TrainInputs(train_set=Rows(seed=0), loss_fn=mse, evaluate=evaluate, metric="mse", higher_is_better=False)

    def evaluate(self, ctx, model):
        return {"model": self.train_inputs(ctx).evaluate(model)}


class R2ToyScenario(ToyScenario):
    """The same task scored by R^2 (1 - mse / variance of y): a metric where higher is better."""

    headline = "r2"
    higher_is_better = True

    def train_inputs(self, ctx) -> TrainInputs:
        val = Rows(seed=1)
        variance = float(val.y.var(unbiased=False))

        def evaluate(model):
            with torch.no_grad():
                return {"r2": 1.0 - float(mse(model.eval(), val.batch(list(range(len(val)))))) / variance}

        return TrainInputs(train_set=Rows(seed=0), loss_fn=mse, evaluate=evaluate, metric="r2", higher_is_better=True)


@pytest.fixture
def toy_run(tmp_path):
    """A run directory whose train stage is done (checkpoints/best.safetensors, model_config.json)."""
    import dataclasses

    from guimo.config import to_dict
    from guimo.io import atomic_write_json
    from guimo.pipeline.context import Context
    from guimo.pipeline.progress import Progress
    from guimo.pipeline.rundir import RunDir
    from guimo.train.loop import fit

    def make(scenario=None, **optimize) -> Context:
        cfg = ToyConfig()
        cfg = dataclasses.replace(cfg, optimize=dataclasses.replace(cfg.optimize, **optimize))
        run = RunDir.create(tmp_path / "toy", "toy", to_dict(cfg))
        scenario = scenario or ToyScenario()
        ctx = Context(run=run, cfg=cfg, progress=Progress(quiet=True), quiet=True)
        atomic_write_json(run / "model_config.json", to_dict(cfg.model))
        torch.manual_seed(cfg.seed)
        model = scenario.build_model(cfg.model)
        inputs = scenario.train_inputs(ctx)
        fit(model, inputs.train_set, inputs.loss_fn, cfg.train, out_dir=run.path, evaluate=inputs.evaluate, metric=inputs.metric,
            higher_is_better=inputs.higher_is_better)
        atomic_write_json(run / "metrics.json", scenario.evaluate(ctx, model))
        return scenario, ctx

    return make
