"""What a sweep trains: its spec (sizes, fractions, seeds, the lr rule, the probe), and each point's config.

Why the knobs look like this:
- every point starts from the scenario's defaults, or from a config file (``config``: a recipe such
  as bench/recommend_beauty.toml), then gets its size, data fraction, seed, batch and lr from the
  sweep, and last the user's overrides;
- a point scores its final model by default: D is the tokens it has seen. A learning curve of a
  business metric has the data *available* on its x axis, and there each point should be trained
  as a practitioner would, keeping the best of ``evals`` validations (with a fixed epoch count the
  small shares can be past their best at the last step, which would steepen the curve; on the
  embedded marketplace at 8 epochs it moved no point's NDCG@10 by more than 0.002: still improving);
- every size trains with the same context length (``context``), because per-token loss depends
  on it and a scaling law compares like with like;
- training tokens D = epochs x (data.fraction x the training split), so the number of steps is
  computed after preprocessing, from the run's own token count (a scenario without tokens, such
  as recommend, reports its training examples instead: an epoch is one pass over those);
- ``repeat_to_full`` trains a fraction f for epochs / f passes instead (Muennighoff et al. 2023's
  data-constrained design): every point trains as long as the full data and only the unique data
  varies, fitted on their effective data D'. In one-epoch sweeps on the stdlib and tinyshakespeare
  the gap between two sizes grew 4-6x from the smallest to the largest D, which the additive law
  cannot fit; it followed the training length, and at a fixed length it grew only 1.2-1.3x
  (bench/prereg/scale_lm_repeat_to_full.md);
- the learning rate follows a documented rule, lr = lr_ref x (d_ref / d_model)^lr_exponent
  (narrower models tolerate larger steps; with one shared lr the fit would measure tuning, not
  scale, which dominates at small scale);
- ``min_steps`` gives every point at least that many optimizer steps by shrinking its batch (never
  its tokens): at a fixed batch the smallest data fractions get so few steps that the models are
  still on the unigram plateau, and their losses measure the step count and the seed, not N and D
  (measured on the stdlib: 210 steps left seeds up to 13% apart, 421 steps within 2.7%). A point's
  lr then follows Adam's square-root rule, lr x (batch / batch_size)^lr_batch_exponent (Malladi et
  al. 2022). Smaller batches also use each token better, which flattens loss vs D when a small
  corpus drops to batch 1-3 (tinyshakespeare), so keep min_steps just past the plateau;
- ``lr_probe`` (e.g. 0.5, 1, 2) first trains every size at ``probe_fraction`` (the smallest fraction
  by default) once per multiplier of the rule's lr and keeps, per size, the multiplier with the best
  metric on the validation split (the test split stays the fit's); the grid then trains at it. A
  best at the edge of the probed range is followed past it, one step of the probe's spacing at a
  time, up to ``probe_extend`` times. The probe runs live in DIR/probe/, are never points of the
  fit, and are not cut by a budget. ``probe_sizes`` probes only those sizes, every other size
  taking the choice of the probed size nearest in width: muP's workflow, where one lr tuned on a
  small model is meant to fit all (muTransfer), at a fraction of the probe's cost;
- ``probe_key`` with ``probe_values`` (``probe_key = "model.mup_output_mult"``, ``probe_values = [1, 2, 4, 8, 16]``) probes one more
  config value the same way, before the lr probe: each value at the rule's lr, the best kept per size
  (and carried to unprobed sizes), then the lr probe at that value. This is coordinate descent, one knob
  at a time, the order in which muP's base constants were tuned by hand for the stdlib sweep
  (bench/prereg/scale_lm_mup_outmult_stdlib.md); an edge is followed as for the lr when every value is
  positive (the steps are ratios). A value probe and the lr probe at x1 of the value chosen are the same
  run, trained once;
- points whose data config is identical (same data section, context and seed; only the model
  differs) prepare their data once: later points copy the first one's collect and preprocess
  outputs (data/ and the two manifest stage entries) instead of re-tokenizing the corpus;
- a time budget estimates each next point's time from the measured rate of the timed model size
  nearest to its own, and skips (and records) those that would overrun it. The order of the
  points decides what a budget leaves out: ``span`` (the default) trains every size at both ends
  of the data axis before the fractions between and the other seeds, ``cheapest`` goes by FLOPs
  (see ``order_points``; bench/sweep_budget.py replays both on recorded sweeps);
- ``workers`` > 1 trains that many points at once in separate processes (spawned, each with
  max(1, threads // workers) torch threads): the models of a sweep are too small for intra-op
  threads to use a second core well, independent points do. A point whose data has not been
  prepared yet waits while another point of the same data config prepares it, so no data is
  tokenized twice and none is copied half-written. Re-running skips finished points as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guimo.errors import GuimoError


@dataclass
class SweepSpec:
    scenario: str
    sizes: list[str] = field(metadata={"help": "model presets (nano, tiny, ...) or 'd<width>x<layers>[h<heads>]'"})
    fractions: list[float] = field(metadata={"help": "data.fraction values: evenly spread shares of the training data"})
    seeds: int = field(default=1, metadata={"help": "seeds per (size, fraction): seed, seed+1, ..."})
    seed: int = field(default=0, metadata={"help": "first seed"})
    epochs: float = field(default=1.0, metadata={"help": "passes over each point's training tokens"})
    repeat_to_full: bool = field(default=False, metadata={"help": "train a fraction f for epochs / f passes, so every point sees the full data's tokens and only the unique data varies (fit with the muennighoff correction)"})
    context: int | None = field(default=None, metadata={"help": "model.max_len for every size (loss depends on it; None: the recipe's)"})
    batch_size: int | None = field(default=None, metadata={"help": "train.batch_size for every point (None: the recipe's)"})
    lr_ref: float | None = field(default=None, metadata={"help": "learning rate at d_model = d_ref (None: the recipe's lr carried to d_ref by the rule)"})
    d_ref: int = field(default=64, metadata={"help": "reference width of the lr rule"})
    lr_exponent: float = field(default=0.5, metadata={"help": "lr = lr_ref * (d_ref / d_model) ** lr_exponent"})
    overrides: list[str] = field(default_factory=list, metadata={"help": "extra --set KEY=VALUE for every point"})
    budget_s: float | None = field(default=None, metadata={"help": "wall-clock budget for the whole sweep; points that would overrun are skipped"})
    order: str = field(default="span", metadata={"help": "span: each size at both ends of the data axis first, then the fractions between, then more seeds; cheapest: by FLOPs"})
    threads: int | None = field(default=None, metadata={"help": "torch intra-op threads while training (None: torch's default)"})
    workers: int = field(default=1, metadata={"help": "points trained at once, each in its own process with max(1, threads // workers) threads"})
    min_steps: int = field(default=0, metadata={"help": "points with fewer steps at batch_size train with the largest smaller batch that gives this many (0: off)"})
    lr_batch_exponent: float = field(default=0.5, metadata={"help": "a point trained at a smaller batch b uses lr x (b / batch_size) ** this"})
    lr_probe: list[float] = field(default_factory=list, metadata={"help": "lr multipliers to probe per size before the grid (e.g. 0.5,1,2); each size's grid points use its best (empty: the rule alone)"})
    probe_fraction: float | None = field(default=None, metadata={"help": "data fraction the lr probe trains on (None: the grid's smallest)"})
    probe_only: bool = field(default=False, metadata={"help": "run the lr probe, record its choices and stop before the grid"})
    probe_extend: int = field(default=2, metadata={"help": "times the probe may add a multiplier beyond the probed range when a size's best is at its edge"})
    probe_sizes: list[str] = field(default_factory=list, metadata={"help": "sizes the lr probe trains (empty: all); the others take the nearest width's choice"})
    probe_key: str = field(default="", metadata={"help": "a config key probed per size before the lr probe, e.g. model.mup_output_mult (empty: none)"})
    probe_values: list[float] = field(default_factory=list, metadata={"help": "the values probe_key is probed at; each size's points use its best"})
    evals: int = field(default=0, metadata={"help": "validations per point, the best checkpoint scored (0: the final model, which an L(N, D) fit in tokens seen needs)"})
    config: str | None = field(default=None, metadata={"help": "config file (TOML/YAML/JSON) every point starts from, before the sweep's own settings and overrides"})
    ray: str | None = field(default=None, metadata={"help": "train the points as Ray tasks: 'local' (a cluster of this machine), 'auto' (the running cluster) or ray://HOST:PORT; None: workers"})

    def __post_init__(self) -> None:
        if not self.sizes:
            raise GuimoError("a sweep needs at least one model size (sweep.sizes)")
        if not self.fractions:
            raise GuimoError("a sweep needs at least one data fraction (sweep.fractions)")
        for f in self.fractions:
            if not 0 < f <= 1:
                raise GuimoError(f"data fraction {f} is not in (0, 1]")
        if self.threads is not None and self.threads < 1:
            raise GuimoError("threads must be at least 1")
        if self.workers < 1:
            raise GuimoError("workers must be at least 1")
        if self.config is not None and not Path(self.config).is_file():
            raise GuimoError(f"{self.config}: config file not found")
        self._fill_from_recipe()
        if self.config:
            base_config(self, self.overrides)  # a bad config file or override: a clear error now, before the sweep folder exists
        if self.seeds < 1 or self.epochs <= 0 or (self.context is not None and self.context < 2) or self.batch_size < 1:
            raise GuimoError("seeds, epochs, context and batch size must be positive")
        if self.min_steps < 0:
            raise GuimoError("min_steps must be 0 (off) or positive")
        if any(not m > 0 for m in self.lr_probe):
            raise GuimoError(f"lr probe multipliers must be positive; got {self.lr_probe}")
        self._check_probe_key()
        probed = bool(self.lr_probe or self.probe_key)
        if self.probe_only and not probed:
            raise GuimoError("probe_only needs lr probe multipliers (sweep.lr_probe) or a value probe (sweep.probe_key and sweep.probe_values)")
        if self.probe_extend < 0:
            raise GuimoError("probe_extend must be 0 (never extend) or positive")
        if self.probe_sizes and not probed:
            raise GuimoError("probe_sizes needs lr probe multipliers (sweep.lr_probe) or a value probe (sweep.probe_key and sweep.probe_values)")
        if unknown := [s for s in self.probe_sizes if s not in self.sizes]:
            raise GuimoError(f"probe size(s) {', '.join(unknown)} not among the sweep's sizes ({', '.join(self.sizes)})")
        if self.probe_fraction is not None and not 0 < self.probe_fraction <= 1:
            raise GuimoError(f"probe fraction {self.probe_fraction} is not in (0, 1]")
        check_order(self.order)
        if self.lr_exponent != 0 and _mup_width(self.overrides):
            raise GuimoError(f"a muP sweep (model.mup_base_width={_mup_width(self.overrides)}) with lr_exponent {self.lr_exponent:g}: muP already "
                             "scales the hidden lr by width; set sweep.lr_exponent = 0")
        if self.evals < 0:
            raise GuimoError("evals must be 0 (score the final model) or positive")
        for s in self.sizes:
            size_overrides(s, self.scenario)  # validate early

    def _fill_from_recipe(self) -> None:
        """Context, batch and lr_ref left unset come from the recipe (the config file's where it sets them, the
        scenario's defaults otherwise), so that a point trains as `guimo run` would at its size. A recipe's lr was
        tuned for its own width, so it becomes lr_ref through the sweep's own lr rule: the lm's 6e-3 at width 64,
        where the lr probes of docs/BENCHMARKS.md found 6e-3 or more best for every size on the stdlib and
        tinyshakespeare (the sweep's former fixed 3e-3 was half of it)."""
        if None not in (self.context, self.batch_size, self.lr_ref):
            return
        cfg = base_config(self, [])
        # a classifier over a pretrained encoder has no context or width of its own to sweep: None keeps its config's
        self.context = getattr(cfg.model, "max_len", None) if self.context is None else self.context
        self.batch_size = cfg.train.batch_size if self.batch_size is None else self.batch_size
        if self.lr_ref is None:  # lr = lr_ref (d_ref / d_model)^e, solved for lr_ref
            width = getattr(cfg.model, "d_model", None)
            self.lr_ref = cfg.train.lr * (width / self.d_ref) ** self.lr_exponent if width else cfg.train.lr

    def _check_probe_key(self) -> None:
        if bool(self.probe_key) != bool(self.probe_values):
            raise GuimoError("a value probe needs a key and its values (sweep.probe_key and sweep.probe_values)")
        if not self.probe_key:
            return
        if self.probe_key in SWEEP_KEYS or self.probe_key.startswith("train.lr"):
            raise GuimoError(f"the sweep sets '{self.probe_key}' itself; probe the lr with sweep.lr_probe, the size with sweep.sizes")
        if any(o.split("=", 1)[0].strip() == self.probe_key for o in self.overrides):
            raise GuimoError(f"'{self.probe_key}' is both probed (sweep.probe_key) and set for every point; drop one")
        if len(set(self.probe_values)) != len(self.probe_values):
            raise GuimoError(f"probe values repeat: {self.probe_values}")
        for v in self.probe_values:
            base_config(self, [f"{self.probe_key}={v:g}"])  # an unknown key or a bad value: a clear error now, not mid-sweep


def _mup_width(overrides: list[str]) -> str | None:
    """The muP base width the overrides give every point (the last one set), None for the standard parametrization."""
    width = None
    for o in overrides:
        key, _, value = o.partition("=")
        if key.strip() == "model.mup_base_width":
            width = None if value.strip().lower() in ("none", "null", "") else value.strip()
    return width


# Keys every point gets from the sweep itself (a value probe may not take them over)
SWEEP_KEYS = ("model.max_len", "data.fraction", "seed", "train.batch_size", "train.max_steps", "train.warmup_steps",
              "train.eval_every", "train.checkpoint_every", "train.max_time_s", "model.d_model", "model.n_layer", "model.n_head",
              "model.n_blocks", "model.n_heads")


# The size of a scenario whose model is given, not swept (a classifier over the packaged pretrained encoder): its
# points differ only in their data, which is what a learning curve of labels asks
DEFAULT_SIZE = "default"


def size_overrides(spec: str, scenario: str = "lm") -> list[str]:
    """``--set`` overrides for a size: one of the scenario's model presets, 'd<width>x<layers>[h<heads>]', or
    'default' (the scenario's own model, unchanged)."""
    import dataclasses

    from guimo import scenarios

    sc = scenarios.get(scenario)
    presets = sc.presets.get("model", {})
    if spec in presets:
        return [f"model={spec}"]
    if spec == DEFAULT_SIZE:
        return []
    m = re.fullmatch(r"d(\d+)x(\d+)(?:h(\d+))?", spec)
    if not m:
        raise GuimoError(f"unknown model size '{spec}'; use a {scenario} preset ({', '.join(presets) or 'none'}), d<width>x<layers>[h<heads>] "
                         f"(e.g. d192x4) or '{DEFAULT_SIZE}' (the scenario's own model)")
    d, layers = int(m.group(1)), int(m.group(2))
    heads = int(m.group(3)) if m.group(3) else default_heads(d)
    if d % heads:
        raise GuimoError(f"size '{spec}': width {d} is not divisible by {heads} heads")
    # the lm's TransformerConfig says n_layer / n_head, SASRecConfig n_blocks / n_heads
    names = {f.name for f in dataclasses.fields(sc.config_cls().model)}
    layer_key, head_key = ("n_layer", "n_head") if "n_layer" in names else ("n_blocks", "n_heads")
    return [f"model.d_model={d}", f"model.{layer_key}={layers}", f"model.{head_key}={heads}"]


def default_heads(width: int) -> int:
    """Heads of a 'd<width>x<layers>' size without an 'h': one per 32 of width, so heads keep ~32 wide."""
    return max(1, width // 32)


def mup_overrides(base_width: int) -> list[str]:
    """Model overrides that train a size in muP with d<base_width> as the base: its width and the head
    dimension it has under the sizes' head rule, so that a family adding heads of one width keeps its
    attention scale."""
    # the head dimension first: each override is validated as it lands, and the width alone may not split into these heads
    return [f"model.mup_base_head_dim={max(1, base_width // default_heads(base_width))}", f"model.mup_base_width={base_width}"]


def relative_cost(model_cfg: Any, context: int) -> float:
    """Training FLOPs per position of a point's model: what orders the grid and scales the budget's time
    estimates. A model config that is not the lm's (SASRec) is costed through its transformer core,
    without the output layer over a catalogue the data has not sized yet."""
    from guimo.models.transformer import flops_per_token

    core = model_cfg.transformer_config() if hasattr(model_cfg, "transformer_config") else model_cfg
    if context is None or not all(hasattr(core, k) for k in ("d_model", "n_layer")):
        return 1.0  # a model the sweep does not size (a pretrained encoder): every point costs the same per example
    return flops_per_token(core, context)


def base_config(spec: SweepSpec, overrides: list[str]) -> Any:
    """The scenario's defaults <- the sweep's config file <- ``overrides``: every point's starting config."""
    from guimo import scenarios
    from guimo.config import apply_overrides, load_file, merge

    scenario = scenarios.get(spec.scenario)
    cfg = scenario.config_cls()
    if spec.config:
        cfg = merge(cfg, load_file(spec.config), scenario.presets)
    return apply_overrides(cfg, overrides, scenario.presets)


def learning_rate(spec: SweepSpec, d_model: int | None) -> float:
    """The width rule's lr; ``lr_ref`` itself for a model without a swept width (None)."""
    return spec.lr_ref * (spec.d_ref / d_model) ** spec.lr_exponent if d_model else spec.lr_ref


def context_overrides(spec: SweepSpec) -> list[str]:
    """``model.max_len`` for every point, or nothing when the scenario's model has no context the sweep sets."""
    return [] if spec.context is None else [f"model.max_len={spec.context}"]


def point_lr(spec: SweepSpec, point: dict[str, Any]) -> float:
    """The rule's lr for the point's width, times the lr probe's choice for its size (or the probe's own multiplier)."""
    return learning_rate(spec, point["d_model"]) * point.get("lr_scale", 1.0)


def point_batch(spec: SweepSpec, amount: float, per_row: int | None = None) -> int:
    """The batch a point uses: batch_size, or smaller so it gets min_steps steps. ``amount`` is its training
    tokens (a batch row holds ``context`` of them, the default) or examples (``per_row`` = 1)."""
    if not spec.min_steps:
        return spec.batch_size
    return max(1, min(spec.batch_size, int(amount // ((per_row or spec.context) * spec.min_steps))))


def point_epochs(spec: SweepSpec, fraction: float) -> float:
    """Passes over a point's data: ``epochs``, or with ``repeat_to_full`` epochs / fraction, so that every point
    trains as long as the full data would and the points differ only in how much of what they see is new."""
    return spec.epochs / fraction if spec.repeat_to_full else spec.epochs


def run_name(size: str, fraction: float, seed: int) -> str:
    return f"{size}-f{fraction:g}-s{seed}"


ORDERS = ("span", "cheapest")


def check_order(order: str) -> None:
    if order not in ORDERS:
        raise GuimoError(f"unknown sweep order '{order}': use one of {', '.join(ORDERS)}")
