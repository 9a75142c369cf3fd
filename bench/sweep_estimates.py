"""How well a sweep's --budget predicts each point's training time, replayed on recorded sweeps.

    python bench/sweep_estimates.py runs/scale-rec-marketplace runs/bench-scale-stdlib-v2 ...

Each point, in the order the sweep ran them, is estimated from the points before it, as `run_sweep`
does before deciding to skip one: the old rule (the achieved FLOP/s of all points done) and the
current one (`guimo.scale.sweep.estimate_seconds`: the rate of the point's own model size once one
has run). Prints and writes the ratio estimate / measured (median and worst) per sweep.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchdoc import write_section  # noqa: E402  (bench/ is on sys.path when run as a script)


def replay(points: list[dict]) -> dict[str, list[float]]:
    from guimo.scale.sweep import estimate_seconds

    ratios: dict[str, list[float]] = {"all sizes": [], "own size": []}
    for i, p in enumerate(points):
        done = points[:i]
        if not done:
            continue
        flops_rate = sum(q["seconds"] for q in done) / sum(q["relative_cost"] for q in done)
        ratios["all sizes"].append(p["relative_cost"] * flops_rate / p["seconds"])
        ratios["own size"].append(estimate_seconds(p, done) / p["seconds"])
    return ratios


def main(argv: list[str]) -> int:
    rows = ["| sweep | scenario | points | estimate / measured: all sizes' FLOP/s (before) | own size's rate (now) |", "| --- | --- | ---: | --- | --- |"]
    for folder in argv:
        record = json.loads((Path(folder) / "sweep.json").read_text())
        points = [p for p in record["points"] if p.get("status") == "done" and p.get("seconds")]
        r = replay(points)
        cells = [f"median {np.median(v):.2f}, worst {max(max(v), 1 / min(v)):.2f}x" for v in r.values()]
        rows.append(f"| {folder} | {record['spec']['scenario']} | {len(points)} | {cells[0]} | {cells[1]} |")
        print(rows[-1])
    body = (f"Command: `python bench/sweep_estimates.py {' '.join(argv)}` ({dt.date.today()}, {platform.machine()}; no training: each recorded "
            "sweep's points replayed in their order, each estimated from the points before it). Worst = the largest factor either way; "
            "the first point of a new model size still falls back to the FLOP model.\n\n" + "\n".join(rows))
    write_section("sweep_estimates", body, heading="Sweep budget: time estimates (`bench/sweep_estimates.py`)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
