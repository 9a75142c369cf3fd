"""Scale recipes: the research knobs of a sweep, its fit and its verdict, in one TOML file per design.

`guimo scale lm --budget 30m` runs the recipe shipped for the scenario (guimo/recipes/scale/<scenario>.toml):
the design the benchmarks validated, so that a user gets it without knowing its twenty knobs. Another design
is another file (``--config FILE``, e.g. the bench records' recipes under bench/scale/), and one-off changes
are ``--set KEY=VALUE``, type-checked as `guimo run`'s are. A recipe has four tables:

- ``[sweep]``: the fields of ``spec.SweepSpec`` (sizes, fractions, seeds, the lr rule, the probe, ...);
- ``[run]``: the run config every point starts from, in `guimo run`'s keys (``data.vocab_size = 300`` or
  ``[run.data]`` tables); the sweep then sets each point's size, data fraction, seed, batch, lr and steps;
- ``[fit]``: how the report fits the points (``FitSettings``);
- ``[verdict]``: the criterion the sweep's own held-out check is judged by (``Criterion``).

``--set`` keys that start with ``sweep.``, ``fit.`` or ``verdict.`` change the recipe; any other key is a run
config key for every point, as in `guimo run --set`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from guimo.config import apply_overrides, from_dict, load_file, parse_scalar
from guimo.errors import GuimoError

RECIPES = Path(__file__).resolve().parents[1] / "recipes" / "scale"
SECTIONS = ("sweep", "fit", "verdict")  # --set prefixes that change the recipe rather than every point's run config
# SweepSpec fields a recipe may not set: the scenario is the command's, the run config is the [run] table,
# and how long and where the sweep runs are the command line's (--budget, --ray)
NOT_IN_RECIPE = ("scenario", "overrides", "budget_s", "ray")


@dataclass
class FitSettings:
    """How `guimo scale` (and `guimo scale fit DIR`) fits the points; see guimo.scale.report.build_report."""

    metric: str | None = field(default=None, metadata={"help": "metrics.json key to fit (None: loss for lm, the scenario's headline otherwise)"})
    correction: str | None = field(default=None, metadata={"help": "muennighoff: D as effective tokens for repeated data (None: set by the sweep's repeat_to_full)"})
    bootstrap: int = field(default=100, metadata={"help": "bootstrap refits for the intervals"})
    huber_delta: float | None = field(default=None, metadata={"help": "Huber threshold on log residuals (None: guimo.scale.fit.HUBER_DELTA)"})
    form: str = field(default="chinchilla", metadata={"help": "chinchilla (additive) or kaplan (joint); the other is reported beside it"})
    params: str = field(default="total", metadata={"help": "what N counts: total or non_embedding"})
    fix_E: float | None = field(default=None, metadata={"help": "hold the irreducible loss at this value (0: a pure power law) instead of fitting it"})
    noise_sims: int = field(default=50, metadata={"help": "simulations for the held-out check's noise floor (0: off)"})
    allow_missing: bool = field(default=False, metadata={"help": "fit even when runs listed in sweep.json are missing or unfinished"})
    prices: str | None = field(default=None, metadata={"help": "price table merged over guimo/prices.toml"})


@dataclass
class Criterion:
    """What the sweep's own held-out check must meet for the verdict to call it passed. For a loss (lm): the largest
    model, held out, predicted by the fit of the others within ``max_relative_error`` from at least ``min_ratio``x
    beyond them. For a business metric (recommend): the curve fitted on <= 50% of the data predicts the full-data
    value within ``max_relative_error`` (a 2x step, so ``min_ratio`` is not used)."""

    max_relative_error: float = field(default=0.03, metadata={"help": "largest relative error of the held-out check that passes"})
    min_ratio: float = field(default=4.0, metadata={"help": "loss fits: the held-out model must be at least this many times the largest fitted one"})

    def __post_init__(self) -> None:
        if not self.max_relative_error > 0:
            raise GuimoError(f"verdict.max_relative_error must be positive; got {self.max_relative_error}")


@dataclass
class Recipe:
    scenario: str
    source: str  # the file it came from, or "(defaults)" for a scenario without a shipped recipe
    description: str = ""
    sweep: dict[str, Any] = field(default_factory=dict)  # SweepSpec fields, checked when the spec is built
    run: list[str] = field(default_factory=list)  # the [run] table as --set overrides, in file order
    fit: FitSettings = field(default_factory=FitSettings)
    verdict: Criterion = field(default_factory=Criterion)

    def as_dict(self) -> dict[str, Any]:
        """What sweep.json keeps, so that `guimo scale fit DIR` fits and judges the sweep by the recipe it ran."""
        return {"scenario": self.scenario, "source": self.source, "description": self.description, "sweep": self.sweep, "run": self.run,
                "fit": dataclasses.asdict(self.fit), "verdict": dataclasses.asdict(self.verdict)}


def shipped(scenario: str) -> Path:
    """The recipe `guimo scale SCENARIO` runs without --config."""
    return RECIPES / f"{scenario}.toml"


def load_recipe(scenario: str, path: str | Path | None = None) -> Recipe:
    """The recipe in ``path``, else the scenario's shipped one, else the scenario's defaults (every model preset, the
    sweep's defaults). Errors name the file and the key."""
    path = Path(path) if path is not None else shipped(scenario)
    if not path.is_file():
        if path == shipped(scenario):
            return Recipe(scenario, "(defaults: no shipped recipe)")
        raise GuimoError(f"{path}: recipe not found")
    data = load_file(path)
    if unknown := set(data) - {"scenario", "description", *SECTIONS, "run"}:
        raise GuimoError(f"{path}: unknown recipe key '{sorted(unknown)[0]}'; a recipe has scenario, description and the tables "
                         "[sweep], [run], [fit], [verdict]")
    if data.get("scenario", scenario) != scenario:
        raise GuimoError(f"{path}: a recipe for '{data['scenario']}', not '{scenario}'")
    return from_data(scenario, data, str(path))


def from_data(scenario: str, data: dict[str, Any], source: str) -> Recipe:
    """A recipe from its tables (a file's, or the copy sweep.json keeps), every key checked."""
    sweep = dict(data.get("sweep") or {})
    _check_sweep_keys(sweep, source)
    if isinstance(sweep.get("config"), str):
        sweep["config"] = _beside(sweep["config"], source)
    run = data.get("run") or []
    run = list(run) if isinstance(run, list) else flatten(run)
    _check_run(scenario, run, source)
    try:
        fit = from_dict(FitSettings, data.get("fit") or {}, _prefix="fit.")
        verdict = from_dict(Criterion, data.get("verdict") or {}, _prefix="verdict.")
    except GuimoError as e:
        raise GuimoError(f"{source}: {e}") from None
    return Recipe(scenario, source, str(data.get("description", "")), sweep, run, fit, verdict)


def with_sets(recipe: Recipe, sets: list[str]) -> Recipe:
    """The recipe with ``--set`` applied in order: sweep.*, fit.* and verdict.* keys change the recipe's tables (typed
    like the fields they name), every other key joins the run config of every point (after the recipe's own)."""
    sweep, run, fit, verdict = dict(recipe.sweep), list(recipe.run), recipe.fit, recipe.verdict
    for item in sets:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise GuimoError(f"bad --set '{item}': expected key=value")
        section, _, name = key.partition(".")
        if section == "sweep":
            _check_sweep_keys({name: None}, "--set")
            sweep[name] = parse_scalar(raw, get_type_hints(_spec_cls())[name])
        elif section in ("fit", "verdict"):
            holder = apply_overrides(_Tables(fit, verdict), [f"{key}={raw}"])
            fit, verdict = holder.fit, holder.verdict
        else:
            run.append(f"{key}={raw}")
    _check_run(recipe.scenario, run, "--set")
    return dataclasses.replace(recipe, sweep=sweep, run=run, fit=fit, verdict=verdict)


def sweep_spec(recipe: Recipe, **command_line: Any):
    """The ``SweepSpec`` the recipe describes; ``command_line`` (budget_s, workers, threads, ray) is what the command
    sets beside it, a value of None leaving the recipe's."""
    from guimo.scale.spec import SweepSpec

    values = {**recipe.sweep, **{k: v for k, v in command_line.items() if v is not None}}
    return from_dict(SweepSpec, {"scenario": recipe.scenario, **values, "overrides": list(recipe.run)}, _prefix="sweep.")


def flatten(table: dict[str, Any], prefix: str = "") -> list[str]:
    """A nested [run] table as ``key=value`` overrides in the text `--set` reads (lists as JSON, booleans lower case)."""
    out = []
    for key, value in table.items():
        if isinstance(value, dict):
            out += flatten(value, f"{prefix}{key}.")
        elif isinstance(value, bool):
            out.append(f"{prefix}{key}={'true' if value else 'false'}")
        elif isinstance(value, list):
            out.append(f"{prefix}{key}={json.dumps(value)}")
        else:
            out.append(f"{prefix}{key}={value}")
    return out


@dataclass
class _Tables:
    """The typed tables, so that fit.* and verdict.* --set keys go through the same checks as `guimo run --set`."""

    fit: FitSettings
    verdict: Criterion


def _spec_cls():
    from guimo.scale.spec import SweepSpec

    return SweepSpec


def _check_sweep_keys(sweep: dict[str, Any], source: str) -> None:
    allowed = [f.name for f in dataclasses.fields(_spec_cls()) if f.name not in NOT_IN_RECIPE]
    for key in sweep:
        if key not in allowed:
            raise GuimoError(f"{source}: unknown sweep key '{key}'; valid keys: {', '.join('sweep.' + k for k in allowed)}"
                             + (" (the run config of every point goes in [run], or --set KEY=VALUE without 'sweep.')" if key in NOT_IN_RECIPE else ""))


def _check_run(scenario: str, run: list[str], source: str) -> None:
    """Refuse an unknown or mistyped run key now, naming where it came from, not when the first point starts."""
    from guimo import scenarios

    sc = scenarios.get(scenario)
    try:
        apply_overrides(sc.config_cls(), run, sc.presets)
    except GuimoError as e:
        raise GuimoError(f"{source}: [run] {e}") from None


def _beside(path: str, source: str) -> str:
    """A run config named by a recipe: as given when it exists from here, else beside the recipe file."""
    if Path(path).exists() or not Path(source).is_file():
        return path
    near = Path(source).parent / path
    return str(near) if near.exists() else path
