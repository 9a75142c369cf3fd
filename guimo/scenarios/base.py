"""What a scenario supplies, and the config sections every scenario shares.

A scenario is a small object with the functions below; nothing inherits from anything. The
pipeline (`guimo.pipeline.runner`) calls them in stage order and owns everything generic:
the run directory, seeding, the training loop, checkpoints, the optimize stage, the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    import torch

    from guimo.pipeline.context import Context
    from guimo.train.loop import EvalFn, LossFn, TrainSet


@dataclass
class InitConfig:
    checkpoint: str | None = field(default=None, metadata={"help": "start from weights: a run directory or a .safetensors file"})
    pretrained: str | None = field(default=None, metadata={"help": "a local Hugging Face GPT-2 or BERT checkpoint directory"})


@dataclass
class OptimizeConfig:
    trials: int = field(default=0, metadata={"help": "Optuna trials (0: no search; quick runs)"})
    trial_steps: int = field(default=200, metadata={"help": "training steps per trial"})
    timeout_s: float | None = field(default=None, metadata={"help": "stop the search after this many seconds"})
    search_lr: bool = field(default=True, metadata={"help": "search train.lr (log-uniform, 0.2x..5x the configured value)"})
    search_dropout: bool = field(default=True, metadata={"help": "search model.dropout in [0, 0.3]"})
    search_weight_decay: bool = field(default=True, metadata={"help": "search train.weight_decay in [0, 0.3]"})
    search_width: bool = field(default=False, metadata={"help": "search model.d_model among 0.5x, 1x, 2x"})
    quantize: bool = field(default=False, metadata={"help": "int8 dynamic quantization of Linear layers for CPU serving"})
    quantize_embeddings: bool = field(default=False, metadata={"help": "with quantize: also store untied embedding tables as 8-bit rows (a small encoder's word-piece table is half its bytes)"})
    quantize_tolerance: float = field(default=0.01, metadata={"help": "keep the int8 model if its validation metric is at most this much worse (relative)"})
    quantize_fallback: int = field(default=8, metadata={"help": "with quantize: when int8 misses the tolerance, keep up to this many Linear layers with the largest int8 error in float (1, 2, 4, ... tried in turn; 0: all or nothing)"})
    prune: bool = field(default=True, metadata={"help": "median pruning of unpromising trials"})


@dataclass
class TrainInputs:
    """What the training loop needs from a scenario."""

    train_set: "TrainSet"
    loss_fn: "LossFn"
    evaluate: "EvalFn"  # validation metrics of a model, e.g. {"loss": 2.1, "ndcg@10": 0.05}
    metric: str  # the key of `evaluate`'s result used for early stopping and model selection
    higher_is_better: bool


class Scenario(Protocol):
    name: str
    summary: str  # one line for `guimo run --help`
    config_cls: type  # a dataclass with at least: seed, data, model, train, init, optimize
    presets: dict[str, dict[str, dict[str, Any]]]  # section -> preset name -> values (`--set model=small`)
    model_config_cls: type  # dataclass saved as model_config.json and rebuilt from it
    headline: str  # metrics.json key under "model" shown by `guimo runs`
    higher_is_better: bool
    serve_kind: str  # "completion" | "recommendation" | "classification": which API routes serve it

    def load_predictor(self, run: Any, device: str = "cpu") -> Any:
        """An inference object over a finished run (see each scenario's Predictor class)."""

    def collect(self, ctx: "Context") -> dict[str, Any]:
        """Read the source into ctx.run.data_dir; return info incl. a 'fingerprint'."""

    def preprocess(self, ctx: "Context") -> dict[str, Any]:
        """Validate, encode and split into ctx.run.data_dir; return counts."""

    def model_config(self, ctx: "Context") -> Any:
        """The model's config dataclass, derived from cfg.model and the preprocessed data."""

    def build_model(self, model_config: Any) -> "torch.nn.Module":
        """A freshly initialised model (the caller seeds the RNG)."""

    def train_inputs(self, ctx: "Context") -> TrainInputs: ...

    # Optional: ``warm_start(ctx, model) -> dict | None``, called by the init stage after the pretrained
    # weights (or a checkpoint) are loaded, to fit part of the model before training (the text
    # classifiers' linear-probe head, ``model.head_init=probe``); what it returns goes into the manifest.

    def evaluate(self, ctx: "Context", model: "torch.nn.Module") -> dict[str, Any]:
        """Test metrics: {"model": {...}, "baselines": {name: {...}}, "val": {...}, ...}."""


ScenarioLoader = Callable[[], Scenario]
