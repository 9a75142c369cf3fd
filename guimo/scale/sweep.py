"""Sweeps over model size x data fraction x seed; every point is a normal run directory.

``run_sweep`` schedules; the parts it schedules live one job per module:

- ``spec``: what a sweep trains (``SweepSpec``, sizes, the lr rule) and why the knobs look as they do;
- ``planning``: the points, their order, and the budget's time estimates;
- ``probe``: the lr (and value) probe before the grid;
- ``execute``: one point's training, and the executors (inline, process pool, Ray);
- ``record``: DIR/sweep.json, resuming, and what a resume may not change.

A budget (``budget_s``) only chooses which points run, never how long one trains, so each point's numbers are
reproducible whatever the clock said.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from guimo.scale.execute import executor, point_config, point_threads, train_point
from guimo.scale.planning import estimate_seconds, order_points, plan_points, sweep_minutes, time_left  # noqa: F401  (re-exported)
from guimo.scale.probe import (  # noqa: F401  (re-exported)
    carry_choices, choose, describe_choice, lr_probe_points, probe_extensions, probe_point, probe_points,
)
from guimo.scale.record import SWEEP_FILE, config_digest, load_prior, now_iso, read_sweep, save_record  # noqa: F401  (re-exported)
from guimo.scale.spec import (  # noqa: F401  (re-exported: bench/ and older callers import them from here)
    ORDERS, SWEEP_KEYS, SweepSpec, base_config, default_heads, learning_rate, mup_overrides, point_batch, point_epochs, point_lr,
    size_overrides,
)


def run_sweep(spec: SweepSpec, out: str | Path, *, quiet: bool = False, recipe: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run (or resume) every point, after the lr probe when there is one; returns the sweep record also written
    to DIR/sweep.json."""
    from concurrent.futures import FIRST_COMPLETED, wait

    from guimo.pipeline.progress import Progress

    out = Path(out).resolve() if spec.ray else Path(out)  # a Ray task may start in another folder, or on another node
    out.mkdir(parents=True, exist_ok=True)
    record = {"spec": asdict(spec), "config_sha256": config_digest(spec), "started": now_iso(),
              "probes": probe_points(spec), "points": plan_points(spec)}
    if recipe is not None:  # what `guimo scale fit DIR` fits and judges the sweep by
        record["recipe"] = recipe
    # every invocation that trained points is kept across resumes (the record's wall_s is only the last one's)
    prior, record["invocations"] = load_prior(out, record)
    everything = record["probes"] + record["points"]
    keys = {p["run"]: point_config(spec, p)[1] for p in everything}  # points with equal keys share their data
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
            while len(in_flight) < pool.capacity:
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
                        save_record(out, record)
                        continue
                if key not in templates:
                    preparing.add(key)
                future = pool.submit(train_point, asdict(spec), dict(point), str(out / point["run"]), templates.get(key), threads)
                in_flight[future] = point
                bar.update(completed=finished, info=", ".join(p["run"] for p in in_flight.values())
                           + time_left(waiting["probes"] + waiting["points"], list(in_flight.values()), timed, pool.capacity))
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
                    invocation.update(points_trained=invocation["points_trained"] + 1, finished=now_iso(),
                                      wall_s=round(time.perf_counter() - t0, 2))
                finished += 1
                bar.update(completed=finished)
                save_record(out, record)

    def add_probes(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Join probe points decided during the probe (an edge followed, the lr stage after a value probe) to the record;
        the ones still to train. A point that already is a probe run of this sweep (the lr stage's x1) is not added twice."""
        nonlocal finished
        have = {p["run"] for p in record["probes"]}
        points = [p for p in points if p["run"] not in have]
        for point in points:
            keys[point["run"]] = point_config(spec, point)[1]
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
        save_record(out, record)

    threads = point_threads(spec)
    with executor(spec.workers, spec.ray, threads or 1) as pool, \
            Progress(quiet=quiet) as progress, progress.task("sweep", total=len(everything)) as bar:
        bar.update(completed=finished)
        if record["probes"]:
            probe()
        if not spec.probe_only:
            train(waiting["points"], spec.budget_s)
        bar.update(completed=len(record["probes"]) + len(record["points"]))
    record["finished"] = now_iso()
    record["wall_s"] = round(time.perf_counter() - t0, 2)
    invocation.update(finished=record["finished"], wall_s=record["wall_s"], complete=True)
    invocation["load_avg_1_start_end"][1] = round(os.getloadavg()[0], 2)
    save_record(out, record)
    return record

