"""The order a sweep trains its points in, and the time a budget expects each one to take.

A budget only chooses which points run: it skips a point whose estimate would overrun it, and never
cuts a point's training short (every point trains its planned steps, so its numbers do not depend on
the wall clock). The estimates come from the points this invocation has already timed.
"""

from __future__ import annotations

import math
from typing import Any

from guimo.scale.spec import SweepSpec, base_config, check_order, context_overrides, point_epochs, relative_cost, run_name, size_overrides

def size_cost(spec: SweepSpec, size: str) -> tuple[int, float]:
    """A size's width (for the lr rule) and training FLOPs per position (for ordering and the budget)."""
    cfg = base_config(spec, size_overrides(size, spec.scenario) + context_overrides(spec))
    return getattr(cfg.model, "d_model", None), relative_cost(cfg.model, spec.context)


def plan_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every (size, fraction, seed), in the order ``spec.order`` trains them (``order_points``)."""
    points = []
    for size in spec.sizes:
        d_model, cost = size_cost(spec, size)
        for f in spec.fractions:
            for s in range(spec.seed, spec.seed + spec.seeds):
                points.append({"run": f"runs/{run_name(size, f, s)}", "size": size, "fraction": f, "seed": s,
                               "d_model": d_model, "token_cost": cost, "relative_cost": cost * f * point_epochs(spec, f)})
    return order_points(points, spec.order, spec.fractions, spec.seed)


def order_points(points: list[dict[str, Any]], order: str, fractions: list[float], first_seed: int) -> list[dict[str, Any]]:
    """The order a sweep trains its points in, which under ``--budget`` decides what is left out.

    ``cheapest``: by estimated FLOPs, so a budget buys the most points, but it cuts the grid's
    expensive corner first: the largest models go, and with them the range of N a fit needs and
    the held-out model of the extrapolation check. ``span`` (the default) trains in tiers, cheapest
    first within each: every size at the smallest and the largest data fraction (one seed), then
    the fractions between, then the other seeds. A budget then thins the grid from inside and
    drops replicates before it gives up a size or an end of the data axis.
    """
    check_order(order)
    ends = {min(fractions), max(fractions)}

    def tier(p: dict[str, Any]) -> int:
        return 0 if order == "cheapest" else 2 * (p["seed"] != first_seed) + (p["fraction"] not in ends)

    return sorted(points, key=lambda p: (tier(p), p["relative_cost"], p["seed"]))


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

