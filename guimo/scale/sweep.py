"""Sweeps over model size x data fraction x seed; every point is a normal run directory.

Layout of a sweep folder::

    DIR/sweep.json             the plan and each point's status (done / skipped / failed, and why)
    DIR/runs/<size>-f<fraction>-s<seed>/   one run directory per point (resumable)
    DIR/scale/                 fit, report.md and plots (written by `report`)

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
- ``probe_key`` with ``probe_values`` (``--probe-set model.mup_output_mult=1,2,4,8,16``) probes one more
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

import json
import math
import os
import re
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from guimo.config import to_dict
from guimo.errors import GuimoError
from guimo.io import atomic_write_json, read_json

SWEEP_FILE = "sweep.json"


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

    def __post_init__(self) -> None:
        if not self.sizes:
            raise GuimoError("a sweep needs at least one model size (--sizes)")
        if not self.fractions:
            raise GuimoError("a sweep needs at least one data fraction (--data-fractions)")
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
        if self.seeds < 1 or self.epochs <= 0 or self.context < 2 or self.batch_size < 1:
            raise GuimoError("seeds, epochs, context and batch size must be positive")
        if self.min_steps < 0:
            raise GuimoError("min_steps must be 0 (off) or positive")
        if any(not m > 0 for m in self.lr_probe):
            raise GuimoError(f"lr probe multipliers must be positive; got {self.lr_probe}")
        self._check_probe_key()
        probed = bool(self.lr_probe or self.probe_key)
        if self.probe_only and not probed:
            raise GuimoError("probe_only needs lr probe multipliers (--lr-probe) or a value probe (--probe-set)")
        if self.probe_extend < 0:
            raise GuimoError("probe_extend must be 0 (never extend) or positive")
        if self.probe_sizes and not probed:
            raise GuimoError("probe_sizes needs lr probe multipliers (--lr-probe) or a value probe (--probe-set)")
        if unknown := [s for s in self.probe_sizes if s not in self.sizes]:
            raise GuimoError(f"probe size(s) {', '.join(unknown)} not among the sweep's sizes ({', '.join(self.sizes)})")
        if self.probe_fraction is not None and not 0 < self.probe_fraction <= 1:
            raise GuimoError(f"probe fraction {self.probe_fraction} is not in (0, 1]")
        _check_order(self.order)
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
        self.context = cfg.model.max_len if self.context is None else self.context
        self.batch_size = cfg.train.batch_size if self.batch_size is None else self.batch_size
        if self.lr_ref is None:  # lr = lr_ref (d_ref / d_model)^e, solved for lr_ref
            self.lr_ref = cfg.train.lr * (cfg.model.d_model / self.d_ref) ** self.lr_exponent

    def _check_probe_key(self) -> None:
        if bool(self.probe_key) != bool(self.probe_values):
            raise GuimoError("a value probe needs a key and its values (--probe-set KEY=V1,V2,...)")
        if not self.probe_key:
            return
        if self.probe_key in SWEEP_KEYS or self.probe_key.startswith("train.lr"):
            raise GuimoError(f"the sweep sets '{self.probe_key}' itself; probe the lr with --lr-probe, the size with --sizes")
        if any(o.split("=", 1)[0].strip() == self.probe_key for o in self.overrides):
            raise GuimoError(f"'{self.probe_key}' is both probed and set by --set; drop one")
        if len(set(self.probe_values)) != len(self.probe_values):
            raise GuimoError(f"probe values repeat: {self.probe_values}")
        for v in self.probe_values:
            base_config(self, [f"{self.probe_key}={v:g}"])  # an unknown key or a bad value: a clear error now, not mid-sweep


# Keys every point gets from the sweep itself (a value probe may not take them over)
SWEEP_KEYS = ("model.max_len", "data.fraction", "seed", "train.batch_size", "train.max_steps", "train.warmup_steps",
              "train.eval_every", "train.checkpoint_every", "train.max_time_s", "model.d_model", "model.n_layer", "model.n_head",
              "model.n_blocks", "model.n_heads")


def size_overrides(spec: str, scenario: str = "lm") -> list[str]:
    """``--set`` overrides for a size: one of the scenario's model presets or 'd<width>x<layers>[h<heads>]'."""
    import dataclasses

    from guimo import scenarios

    sc = scenarios.get(scenario)
    presets = sc.presets.get("model", {})
    if spec in presets:
        return [f"model={spec}"]
    m = re.fullmatch(r"d(\d+)x(\d+)(?:h(\d+))?", spec)
    if not m:
        raise GuimoError(f"unknown model size '{spec}'; use a {scenario} preset ({', '.join(presets)}) or d<width>x<layers>[h<heads>], e.g. d192x4")
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


def learning_rate(spec: SweepSpec, d_model: int) -> float:
    return spec.lr_ref * (spec.d_ref / d_model) ** spec.lr_exponent


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


def parse_duration(text: str) -> float:
    """'90s', '30m', '1.5h' or plain seconds -> seconds."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smh]?)\s*", text)
    if not m:
        raise GuimoError(f"bad duration '{text}': use e.g. 90s, 30m, 1.5h")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def run_name(size: str, fraction: float, seed: int) -> str:
    return f"{size}-f{fraction:g}-s{seed}"


def _size_cost(spec: SweepSpec, size: str) -> tuple[int, float]:
    """A size's width (for the lr rule) and training FLOPs per position (for ordering and the budget)."""
    cfg = base_config(spec, size_overrides(size, spec.scenario) + [f"model.max_len={spec.context}"])
    return cfg.model.d_model, relative_cost(cfg.model, spec.context)


def plan_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every (size, fraction, seed), in the order ``spec.order`` trains them (``order_points``)."""
    points = []
    for size in spec.sizes:
        d_model, cost = _size_cost(spec, size)
        for f in spec.fractions:
            for s in range(spec.seed, spec.seed + spec.seeds):
                points.append({"run": f"runs/{run_name(size, f, s)}", "size": size, "fraction": f, "seed": s,
                               "d_model": d_model, "token_cost": cost, "relative_cost": cost * f * point_epochs(spec, f)})
    return order_points(points, spec.order, spec.fractions, spec.seed)


ORDERS = ("span", "cheapest")


def _check_order(order: str) -> None:
    if order not in ORDERS:
        raise GuimoError(f"unknown sweep order '{order}': use one of {', '.join(ORDERS)}")


def order_points(points: list[dict[str, Any]], order: str, fractions: list[float], first_seed: int) -> list[dict[str, Any]]:
    """The order a sweep trains its points in, which under ``--budget`` decides what is left out.

    ``cheapest``: by estimated FLOPs, so a budget buys the most points, but it cuts the grid's
    expensive corner first: the largest models go, and with them the range of N a fit needs and
    the held-out model of the extrapolation check. ``span`` (the default) trains in tiers, cheapest
    first within each: every size at the smallest and the largest data fraction (one seed), then
    the fractions between, then the other seeds. A budget then thins the grid from inside and
    drops replicates before it gives up a size or an end of the data axis.
    """
    _check_order(order)
    ends = {min(fractions), max(fractions)}

    def tier(p: dict[str, Any]) -> int:
        return 0 if order == "cheapest" else 2 * (p["seed"] != first_seed) + (p["fraction"] not in ends)

    return sorted(points, key=lambda p: (tier(p), p["relative_cost"], p["seed"]))


def probe_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """The probe's first stage: every probed size (``probe_sizes``, else all) at ``probe_fraction`` (default: the
    smallest fraction), first seed, once per value of ``probe_key`` when there is one, else once per lr multiplier.
    The lr stage after a value probe depends on its choices (``lr_probe_points``)."""
    if spec.probe_key:
        points = [probe_point(spec, size, 1.0, {spec.probe_key: v}) for size in spec.probe_sizes or spec.sizes for v in spec.probe_values]
    else:
        points = [probe_point(spec, size, m) for size in spec.probe_sizes or spec.sizes for m in spec.lr_probe]
    return sorted(points, key=lambda p: (p["relative_cost"], p["lr_scale"], *p.get("set", {}).values()))


def lr_probe_points(spec: SweepSpec, settings: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """The lr stage after a value probe: every probed size once per multiplier, at the value chosen for it."""
    return [probe_point(spec, size, m, settings[size]) for size in spec.probe_sizes or spec.sizes for m in spec.lr_probe]


def probe_point(spec: SweepSpec, size: str, multiplier: float, setting: dict[str, float] | None = None) -> dict[str, Any]:
    """One probe run. Its name says its lr multiplier and probed value; a value probe and the lr stage's x1 at the same
    value are one run, so they share a name ('probe/d32x4-f0.125-mup_output_mult8' for both)."""
    fraction = spec.probe_fraction or min(spec.fractions)
    d_model, cost = _size_cost(spec, size)
    name = f"probe/{size}-f{fraction:g}" + "".join(f"-{k.rsplit('.', 1)[-1]}{v:g}" for k, v in (setting or {}).items())
    if not setting or multiplier != 1:
        name += f"-lrx{multiplier:g}"
    point = {"run": name, "size": size, "fraction": fraction, "seed": spec.seed, "d_model": d_model, "token_cost": cost,
             "relative_cost": cost * fraction * point_epochs(spec, fraction), "lr_scale": multiplier, "probe": "set" if setting and multiplier == 1 else "lr"}
    if setting:
        point["set"] = dict(setting)
    return point


STAGE_FIELDS = {"lr": "lr_scale", "set": "value"}  # where a stage's choice keeps its value


def stage_candidates(spec: SweepSpec, probes: list[dict[str, Any]], stage: str, size: str,
                     settings: dict[str, dict[str, float]] | None = None) -> dict[float, dict[str, Any]]:
    """A size's probe runs that compete in one stage, by the value they probe: the value stage's runs (all at x1 of the lr)
    by their value; the lr stage's by multiplier, among the runs at the value chosen for the size (None without a value probe)."""
    mine = [p for p in probes if p["size"] == size]
    if stage == "set":
        return {p["set"][spec.probe_key]: p for p in mine if p.get("probe") == "set"}
    setting = (settings or {}).get(size)
    return {p["lr_scale"]: p for p in mine if p.get("set") == setting}


def probe_extensions(spec: SweepSpec, probes: list[dict[str, Any]], chosen: dict[str, dict[str, Any]], stage: str = "lr",
                     settings: dict[str, dict[str, float]] | None = None) -> list[dict[str, Any]]:
    """One more value past the edge for every size whose best is at an edge of what it probed, one step of the
    probe's own spacing further (x2 after 1, 2 on the 0.5, 1, 2 grid), while it has extensions left. A value probe
    extends only when its values are all positive: its steps are ratios."""
    base = sorted(spec.lr_probe if stage == "lr" else spec.probe_values)
    if len(base) < 2 or base[0] <= 0:
        return []
    new = []
    for size, c in chosen.items():
        probed = sorted(stage_candidates(spec, probes, stage, size, settings))
        if not c["at_edge"] or c.get("from") or len(probed) - len(base) >= spec.probe_extend:
            continue
        best = c[STAGE_FIELDS[stage]]
        step = base[-1] / base[-2] if best == probed[-1] else base[0] / base[1]
        value = float(f"{best * step:.6g}")
        if stage == "lr":
            new.append(probe_point(spec, size, value, (settings or {}).get(size)))
        else:
            new.append(probe_point(spec, size, 1.0, {spec.probe_key: value}))
    return new


def choose(spec: SweepSpec, probes: list[dict[str, Any]], out: Path, stage: str = "lr",
           settings: dict[str, dict[str, float]] | None = None) -> dict[str, dict[str, Any]]:
    """Per probed size, the lr multiplier (or the probed value) whose run scored best on the validation split (never
    the test split the fit uses), with every run's score; a choice at either end of the probed range is flagged:
    the best may lie beyond."""
    from guimo.pipeline.rundir import RunDir

    chosen: dict[str, dict[str, Any]] = {}
    for size in dict.fromkeys(p["size"] for p in probes):
        mine = sorted(stage_candidates(spec, probes, stage, size, settings).items())
        scores: dict[str, float] = {}
        metric, higher = "loss", False
        for value, p in mine:
            run = out / p["run"]
            if p.get("status") != "done" or not (run / "metrics.json").exists():
                continue
            rundir = RunDir.open(run)
            metrics = rundir.metrics() or {}
            metric = rundir.manifest["stages"]["train"].get("metric", "loss")
            higher = metric != "loss" and bool(metrics.get("higher_is_better"))
            score = (metrics.get("val") or {}).get(metric)
            if score is not None and math.isfinite(score):
                scores[f"{value:g}"] = float(score)
        if not scores:
            what = "lr probe" if stage == "lr" else f"{spec.probe_key} probe"
            raise GuimoError(f"the {what} of size {size} has no finished run with a validation {metric}: see {out / 'probe'}")
        best = (max if higher else min)(scores, key=scores.get)  # the first listed (the smallest value) wins a tie
        probed = [value for value, _ in mine]
        chosen[size] = {STAGE_FIELDS[stage]: float(best), "metric": f"val {metric}", "scores": scores,
                        "at_edge": len(probed) > 1 and float(best) in (probed[0], probed[-1])}
    return chosen


def carry_choices(spec: SweepSpec, chosen: dict[str, dict[str, Any]], stage: str = "lr") -> dict[str, dict[str, Any]]:
    """Every size's choice: its own probe's, or that of the probed size nearest in width (log scale; the
    narrower on a tie), marked with where it came from."""
    widths = {size: _size_cost(spec, size)[0] for size in spec.sizes}
    field_ = STAGE_FIELDS[stage]
    every = {}
    for size in spec.sizes:
        if size in chosen:
            every[size] = chosen[size]
            continue
        src = min(chosen, key=lambda s: (abs(math.log(widths[size] / widths[s])), widths[s]))
        every[size] = {field_: chosen[src][field_], "metric": chosen[src]["metric"], "scores": {}, "at_edge": False, "from": src}
    return every


def describe_choice(size: str, choice: dict[str, Any], key: str | None = None) -> str:
    """'tiny x2 of the lr rule (val loss: x0.5 4.61, x1 4.57, x2 4.55)', flagged when the best is at the probed range's edge;
    'd224x4 x2 of the lr rule, carried from d16x2's probe' for a size the probe did not train; with ``key``, a value
    probe's choice: 'd32x4 model.mup_output_mult=8 (val loss: 1 3.47, ...)'."""
    if key:
        what, mark = f"{key}={choice['value']:g}", ""
    else:
        what, mark = f"x{choice['lr_scale']:g} of the lr rule", "x"
    if choice.get("from"):
        return f"{size} {what}, carried from {choice['from']}'s probe (nearest probed width)"
    scores = ", ".join(f"{mark}{m} {v:.4g}" for m, v in choice["scores"].items())
    edge = "; at the edge of the probed range: the best may lie beyond it" if choice.get("at_edge") else ""
    return f"{size} {what} ({choice['metric']}: {scores}){edge}"


def run_sweep(spec: SweepSpec, out: str | Path, *, quiet: bool = False) -> dict[str, Any]:
    """Run (or resume) every point, after the lr probe when there is one; returns the sweep record also written
    to DIR/sweep.json."""
    from concurrent.futures import FIRST_COMPLETED, wait

    from guimo.pipeline.progress import Progress

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"spec": asdict(spec), "config_sha256": _config_digest(spec), "started": _now(),
              "probes": probe_points(spec), "points": plan_points(spec)}
    # every invocation that trained points is kept across resumes (the record's wall_s is only the last one's)
    prior, record["invocations"] = _load_prior(out, record)
    everything = record["probes"] + record["points"]
    keys = {p["run"]: _point_config(spec, p)[1] for p in everything}  # points with equal keys share their data
    templates: dict[str, str] = {}  # data key -> a finished run whose data/ later points of that key copy
    preparing: set[str] = set()  # data keys a point in flight is preparing (no template yet)

    def resumed(point: dict[str, Any]) -> bool:
        """A point finished by an earlier invocation takes its record back instead of training again."""
        before = prior.get(point["run"], {})
        if before.get("status") == "done" and (out / point["run"] / "metrics.json").exists():
            point.update({k: v for k, v in before.items() if k in ("steps", "unique_tokens", "seconds", "batch_size", "lr")}, status="done", resumed=True)
            templates.setdefault(keys[point["run"]], str(out / point["run"]))
            return True
        return False

    waiting = {part: [p for p in record[part] if not resumed(p)] for part in ("probes", "points")}
    t0 = time.perf_counter()
    load0 = round(os.getloadavg()[0], 2)
    timed: list[dict[str, Any]] = []  # points trained by this invocation: what the budget's estimates extrapolate from
    finished = len(everything) - len(waiting["probes"]) - len(waiting["points"])
    # this invocation's entry joins the record with its first trained point and is kept current with every point
    # after it, so a killed sweep still says how long its finished points took (complete: false)
    invocation: dict[str, Any] = {"started": record["started"], "finished": None, "wall_s": 0.0, "points_trained": 0,
                                  "load_avg_1_start_end": [load0, None], "complete": False}

    def train(pending: list[dict[str, Any]], budget_s: float | None) -> None:
        """Train ``pending`` on the pool, skipping (under a budget) the points that would overrun it."""
        nonlocal finished
        in_flight: dict[Any, dict[str, Any]] = {}
        while pending or in_flight:
            while len(in_flight) < spec.workers:
                point = next((p for p in pending if keys[p["run"]] in templates or keys[p["run"]] not in preparing), None)
                if point is None:
                    break  # every waiting point's data is being prepared by a point in flight
                pending.remove(point)
                key = keys[point["run"]]
                elapsed = time.perf_counter() - t0
                if budget_s is not None and timed:
                    estimate = estimate_seconds(point, timed)
                    if elapsed + estimate > budget_s:
                        point.update(status="skipped", reason=f"estimated {estimate:.0f} s would overrun the {budget_s:.0f} s budget ({elapsed:.0f} s used)")
                        progress.log(f"skip {point['run']}: {point['reason']}")
                        finished += 1
                        _save(out, record)
                        continue
                if key not in templates:
                    preparing.add(key)
                threads = spec.threads if spec.workers == 1 else max(1, (spec.threads or 1) // spec.workers)
                future = pool.submit(_point_worker, asdict(spec), dict(point), str(out / point["run"]), templates.get(key), threads)
                in_flight[future] = point
                bar.update(completed=finished, info=", ".join(p["run"] for p in in_flight.values())
                           + time_left(waiting["probes"] + waiting["points"], list(in_flight.values()), timed, spec.workers))
            if not in_flight:
                break
            completed, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            for future in completed:
                point = in_flight.pop(future)
                key = keys[point["run"]]
                preparing.discard(key)
                updates, error = future.result()
                point.update(updates)
                if error is not None:
                    point.update(status="failed", reason=error)
                    progress.log(f"failed {point['run']}: {error}")
                else:
                    point.update(status="done")
                    templates.setdefault(key, str(out / point["run"]))
                    timed.append(point)
                    if not invocation["points_trained"]:
                        record["invocations"].append(invocation)
                    invocation.update(points_trained=invocation["points_trained"] + 1, finished=_now(),
                                      wall_s=round(time.perf_counter() - t0, 2))
                finished += 1
                bar.update(completed=finished)
                _save(out, record)

    def add_probes(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Join probe points decided during the probe (an edge followed, the lr stage after a value probe) to the record;
        the ones still to train. A point that already is a probe run of this sweep (the lr stage's x1) is not added twice."""
        nonlocal finished
        have = {p["run"] for p in record["probes"]}
        points = [p for p in points if p["run"] not in have]
        for point in points:
            keys[point["run"]] = _point_config(spec, point)[1]
        record["probes"] += points
        bar.update(total=len(record["probes"]) + len(record["points"]))
        fresh = [p for p in points if not resumed(p)]
        finished += len(points) - len(fresh)
        return fresh

    def settle(stage: str, pending: list[dict[str, Any]], settings: dict[str, dict[str, float]] | None = None) -> dict[str, dict[str, Any]]:
        """Train one stage of the probe, follow its edges while it may, and return every size's choice."""
        train(pending, None)
        chosen = carry_choices(spec, choose(spec, record["probes"], out, stage, settings), stage)
        while more := probe_extensions(spec, record["probes"], chosen, stage, settings):
            for point in more:
                what = f"x{point['lr_scale']:g}" if stage == "lr" else f"{spec.probe_key}={point['set'][spec.probe_key]:g}"
                progress.log(f"{stage} probe {point['size']}: best at the edge, probing {what}")
            train(add_probes(more), None)
            chosen = carry_choices(spec, choose(spec, record["probes"], out, stage, settings), stage)
        return chosen

    def probe() -> None:
        """The probe: the value stage (``probe_key``) when there is one, then the lr stage at each size's chosen value,
        each size's choices then given to its grid points. It is what makes the grid's configs, so no budget cuts it."""
        settings: dict[str, dict[str, float]] = {}
        pending = waiting["probes"]
        if spec.probe_key:
            record["set_probe"] = settle("set", pending)
            settings = {size: {spec.probe_key: c["value"]} for size, c in record["set_probe"].items()}
            pending = add_probes(lr_probe_points(spec, settings)) if spec.lr_probe else []
        if spec.lr_probe:
            record["lr_probe"] = settle("lr", pending, settings)
        for point in record["points"]:
            if settings:
                point["set"] = settings[point["size"]]
            if spec.lr_probe:
                point["lr_scale"] = record["lr_probe"][point["size"]]["lr_scale"]
        for size, choice in record.get("set_probe", {}).items():
            progress.log(describe_choice(size, choice, spec.probe_key))
        for size, choice in record.get("lr_probe", {}).items():
            progress.log(describe_choice(size, choice))
        _save(out, record)

    with _executor(spec.workers) as pool, \
            Progress(quiet=quiet) as progress, progress.task("sweep", total=len(everything)) as bar:
        bar.update(completed=finished)
        if record["probes"]:
            probe()
        if not spec.probe_only:
            train(waiting["points"], spec.budget_s)
        bar.update(completed=len(record["probes"]) + len(record["points"]))
    record["finished"] = _now()
    record["wall_s"] = round(time.perf_counter() - t0, 2)
    invocation.update(finished=record["finished"], wall_s=record["wall_s"], complete=True)
    invocation["load_avg_1_start_end"][1] = round(os.getloadavg()[0], 2)
    _save(out, record)
    return record


def sweep_minutes(invocations: list[dict[str, Any]]) -> float:
    """Wall minutes a sweep trained, summed over the invocations in its sweep.json (a resumed sweep has several;
    a killed one counts up to its last finished point)."""
    return sum(i["wall_s"] for i in invocations) / 60


def estimate_seconds(point: dict[str, Any], timed: list[dict[str, Any]]) -> float:
    """A point's training time at the measured rate (seconds per unit of ``relative_cost``) of the timed model size
    nearest to its own in FLOPs per token: its own size once one of that size has run, else the closest one.
    The FLOP model alone leaves out what it cannot know before the data is read (a recommender's catalogue
    softmax) and that small models use the cores less well, so pooling every size's rate made budget estimates
    up to 3.9x off for the first point of a new size; the nearest size's rate carries both."""
    by_size: dict[str, list[dict[str, Any]]] = {}
    for p in timed:
        by_size.setdefault(p["size"], []).append(p)

    def distance(points: list[dict[str, Any]]) -> float:
        if points[0]["size"] == point["size"]:
            return -1.0
        return abs(math.log(_token_cost(points[0])) - math.log(_token_cost(point)))

    near = min(by_size.values(), key=distance)
    return point["relative_cost"] * sum(p["seconds"] for p in near) / sum(p["relative_cost"] for p in near)


def _token_cost(point: dict[str, Any]) -> float:
    """FLOPs per token of a point's size. Points planned before sweep.json kept it had one number of epochs for
    the whole sweep, so their cost per unit of data stands in for it."""
    return point.get("token_cost") or point["relative_cost"] / point["fraction"]


def time_left(waiting: list[dict[str, Any]], running: list[dict[str, Any]], timed: list[dict[str, Any]], workers: int) -> str:
    """' · ~N min left': the estimates of the points not started, and half of those running, spread over the
    workers; '' until a point has been timed. Points differ in cost by 100x or more, so a count of points done
    (the bar's own remaining time) says little."""
    if not timed:
        return ""
    todo = [p for p in waiting if "status" not in p]
    seconds = (sum(estimate_seconds(p, timed) for p in todo) + 0.5 * sum(estimate_seconds(p, timed) for p in running)) / workers
    return f" · ~{seconds / 60:.0f} min left" if seconds >= 90 else f" · ~{seconds:.0f} s left"


def _point_worker(spec: dict[str, Any], point: dict[str, Any], run_dir: str, template: str | None, threads: int | None) -> tuple[dict[str, Any], str | None]:
    """Train one point (in this process or a worker process): (the point's new fields, an error or None)."""
    spec_obj = SweepSpec(**spec)
    started = time.perf_counter()
    updates: dict[str, Any] = {}
    try:
        with _threads(threads):
            _run_point(spec_obj, {**point}, Path(run_dir), template, updates)
    except GuimoError as e:
        return updates, str(e)
    updates["seconds"] = round(time.perf_counter() - started, 2)
    return updates, None


@contextmanager
def _executor(workers: int) -> Iterator[Any]:
    """A process pool for workers > 1; for one worker, points run here, one after the other."""
    if workers == 1:
        yield _InlineExecutor()
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: a forked child inherits torch's OpenMP state and can hang
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        yield pool


class _InlineExecutor:
    def submit(self, fn, *args):
        from concurrent.futures import Future

        f: Future = Future()
        f.set_result(fn(*args))
        return f


def _point_config(spec: SweepSpec, point: dict[str, Any]) -> tuple[Any, str]:
    """The point's config before training is sized, and the key of its data (points with equal keys share data)."""
    base = size_overrides(point["size"], spec.scenario) + [
        f"model.max_len={spec.context}",
        f"data.fraction={point['fraction']}",
        f"seed={point['seed']}",
        f"train.batch_size={spec.batch_size}",
        f"train.lr={point_lr(spec, point):.6g}",
    ] + [f"{k}={v:g}" for k, v in point.get("set", {}).items()]  # a value probe's value (the user's --set cannot name its key)
    cfg = base_config(spec, base + spec.overrides)
    return cfg, json.dumps([to_dict(cfg)["data"], spec.context, point["seed"]], sort_keys=True)


def _reuse_data(template: Path, run_dir: Path, scenario: str, cfg: Any) -> None:
    """Start ``run_dir`` with the collect and preprocess outputs of ``template`` (same data config)."""
    import shutil

    from guimo.pipeline.rundir import RunDir

    src = RunDir.open(template)
    if not (src.stage_done("collect") and src.stage_done("preprocess")):
        return
    run = RunDir.create(run_dir, scenario, to_dict(cfg))
    shutil.copytree(template / "data", run_dir / "data", dirs_exist_ok=True)
    run.manifest["data"] = src.manifest.get("data", {})
    for stage in ("collect", "preprocess"):
        run.manifest["stages"][stage] = {**src.manifest["stages"][stage], "reused_from": str(template)}
    run.save()


def _run_point(spec: SweepSpec, point: dict[str, Any], run_dir: Path, template: str | None, updates: dict[str, Any]) -> None:
    """Preprocess (or copy ``template``'s prepared data), size the training from the run's own token count, then run the rest."""
    from guimo import scenarios
    from guimo.config import apply_overrides
    from guimo.pipeline.rundir import RunDir
    from guimo.pipeline.runner import run_pipeline

    scenario = scenarios.get(spec.scenario)
    cfg, _ = _point_config(spec, point)
    if template is not None and not (run_dir / "manifest.json").exists():
        _reuse_data(Path(template), run_dir, spec.scenario, cfg)
    run_pipeline(spec.scenario, cfg, run_dir, to_stage="preprocess", quiet=True)
    info = RunDir.open(run_dir).manifest["stages"]["preprocess"]
    # an epoch: the training tokens in rows of `context` (lm), or the training examples (recommend's windows)
    unique, per_row = (info["train_tokens"], spec.context) if "train_tokens" in info else (info.get("train_examples"), 1)
    if unique is None:
        raise GuimoError(f"{run_dir}: the {spec.scenario} scenario reports neither train_tokens nor train_examples; cannot size training by epochs")
    epochs = point_epochs(spec, point["fraction"])
    batch = point_batch(spec, epochs * unique, per_row)
    steps = max(1, round(epochs * unique / (batch * per_row)))
    lr = point_lr(spec, point) * (batch / spec.batch_size) ** spec.lr_batch_exponent
    sized = [f"train.max_steps={steps}", f"train.warmup_steps={max(1, min(50, steps // 10))}",
             f"train.batch_size={batch}", f"train.lr={lr:.6g}",
             f"train.eval_every={max(1, steps // spec.evals) if spec.evals else 0}", f"train.checkpoint_every={max(50, steps // 4)}",
             "train.max_time_s=none"]  # a point stopped by a time cap would not have its planned D
    cfg = apply_overrides(cfg, sized + spec.overrides, scenario.presets)  # the user's --set wins
    updates.update(steps=steps, unique_tokens=unique, batch_size=batch, lr=float(f"{lr:.6g}"))
    run_pipeline(spec.scenario, cfg, run_dir, quiet=True)


@contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """Tiny models train fastest on one thread when other processes share the cores; restored after."""
    if n is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# What a finished point was trained with. The other settings (sizes, fractions, seeds, budget, order, threads,
# workers) only add points or schedule them, so a re-run may change those and still resume.
POINT_SETTINGS = ("scenario", "epochs", "repeat_to_full", "context", "batch_size", "lr_ref", "d_ref", "lr_exponent", "overrides", "min_steps",
                  "lr_batch_exponent", "evals", "config", "lr_probe", "probe_fraction", "probe_extend", "probe_sizes", "probe_key",
                  "probe_values")
PROBE_SETTINGS = ("probe_fraction", "probe_extend", "probe_sizes")


def _config_digest(spec: SweepSpec) -> str | None:
    import hashlib

    return hashlib.sha256(Path(spec.config).read_bytes()).hexdigest() if spec.config else None


def _now() -> str:
    """Local time with its UTC offset (ISO 8601), so a record read on another machine says when it ran."""
    import datetime as dt

    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _load_prior(out: Path, record: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """The previous sweep record's points by run (what a re-run may skip) and its invocations. Finished points
    trained with other settings are an error: resuming would put two recipes into one fit without a trace."""
    p = out / SWEEP_FILE
    if not p.exists():
        return {}, []
    data = read_json(p)
    points = {pt["run"]: pt for pt in data.get("points", []) + data.get("probes", []) if isinstance(pt, dict) and "run" in pt}
    if any(pt.get("status") == "done" for pt in points.values()):
        import dataclasses

        defaults = {f.name: f.default for f in dataclasses.fields(SweepSpec)} | {"overrides": [], "lr_probe": [], "probe_extend": 0, "probe_sizes": [], "probe_values": []}  # keys older records lack (they never extended a probe)
        before = {**defaults, **data.get("spec", {}), "config_sha256": data.get("config_sha256")}
        now = {**record["spec"], "config_sha256": record["config_sha256"]}
        probed = bool(before.get("lr_probe") or now["lr_probe"] or before.get("probe_key") or now["probe_key"])  # the probe's settings matter only to a sweep with a probe
        changed = [k for k in (*POINT_SETTINGS, "config_sha256") if before.get(k) != now[k] and not (k == "config_sha256" and before.get(k) is None)
                   and not (k in PROBE_SETTINGS and not probed)]
        if changed:
            raise GuimoError(f"{out}: its finished points were trained with other settings ("
                             + "; ".join(f"{k}: {before.get(k)!r} -> {now[k]!r}" for k in changed)
                             + "); resuming would mix both in one fit. Re-run with the same settings, or use a new --out")
    return points, list(data.get("invocations", []))


def _save(out: Path, record: dict[str, Any]) -> None:
    atomic_write_json(out / SWEEP_FILE, record)


def read_sweep(out: str | Path) -> dict[str, Any] | None:
    """The sweep record of DIR, or None when DIR is a plain folder of runs."""
    p = Path(out) / SWEEP_FILE
    if not p.exists():
        return None
    data = read_json(p)
    if not isinstance(data, dict) or not isinstance(data.get("points"), list):
        raise GuimoError(f"{p}: not a sweep record (no 'points' list)")
    return data

