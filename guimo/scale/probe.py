"""The probe before the grid: per size, the lr multiplier (and optionally one config value) that scores best on the
validation split, followed past the edge of the probed range when the best sits there, and carried to unprobed sizes.
See ``spec`` for why a sweep probes (``lr_probe``, ``probe_key``, ``probe_sizes``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from guimo.errors import GuimoError
from guimo.scale.planning import size_cost
from guimo.scale.spec import SweepSpec, point_epochs

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
    d_model, cost = size_cost(spec, size)
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
    widths = {size: size_cost(spec, size)[0] for size in spec.sizes}
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

