"""How well a sweep's --budget predicts each point's training time, replayed on recorded sweeps.

    python bench/sweep_estimates.py runs/scale-rec-marketplace runs/bench-scale-stdlib-v2 ...

Each point, in the order the sweep ran them, is estimated from the points before it, as `run_sweep`
does before deciding to skip one, by three rules: the first one (the achieved FLOP/s of all points
done), session 8's (the rate of the point's own model size once one has run, else the first rule)
and the current one (`guimo.scale.sweep.estimate_seconds`: the rate of the timed size nearest in
FLOPs per token, its own size first). Prints and writes the ratio estimate / measured (median and
worst, over all points and over the first point of each new size) per sweep.
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
from benchdoc import page, write_section  # noqa: E402  (bench/ is on sys.path when run as a script)


def _rate(points: list[dict]) -> float:
    return sum(q["seconds"] for q in points) / sum(q["relative_cost"] for q in points)


def replay(points: list[dict]) -> dict[str, dict[str, list[float]]]:
    """Estimate / measured per rule, for every point and for the first point of each new size."""
    from guimo.scale.sweep import estimate_seconds

    rules = {
        "all sizes' FLOP/s": lambda p, done: p["relative_cost"] * _rate(done),
        "own size, else all": lambda p, done: p["relative_cost"] * _rate([q for q in done if q["size"] == p["size"]] or done),
        "nearest size (now)": estimate_seconds,
    }
    ratios: dict[str, dict[str, list[float]]] = {name: {"all": [], "new size": []} for name in rules}
    for i, p in enumerate(points):
        done = points[:i]
        if not done:
            continue
        new_size = not any(q["size"] == p["size"] for q in done)
        for name, rule in rules.items():
            r = rule(p, done) / p["seconds"]
            ratios[name]["all"].append(r)
            if new_size:
                ratios[name]["new size"].append(r)
    return ratios


def _cell(v: list[float]) -> str:
    return f"{np.median(v):.2f} ({max(max(v), 1 / min(v)):.2f}x)" if v else "-"


def main(argv: list[str]) -> int:
    names = ["all sizes' FLOP/s", "own size, else all", "nearest size (now)"]
    rows = ["| sweep | scenario | points | " + " | ".join(f"{n}: all points | {n}: first of a new size" for n in names) + " |",
            "| --- | --- | ---: |" + " --- | --- |" * len(names)]
    for folder in argv:
        record = json.loads((Path(folder) / "sweep.json").read_text())
        points = [p for p in record["points"] if p.get("status") == "done" and p.get("seconds")]
        r = replay(points)
        cells = [_cell(r[n][part]) for n in names for part in ("all", "new size")]
        rows.append(f"| {folder} | {record['spec']['scenario']} | {len(points)} | " + " | ".join(cells) + " |")
        print(rows[-1])
    body = (f"Command: `python bench/sweep_estimates.py {' '.join(argv)}` ({dt.date.today()}, {platform.machine()}; no training: each recorded "
            "sweep's points replayed in their order, each estimated from the points before it). Cells: median estimate / measured "
            "(worst factor either way). The first point of the second size can only use the first size's rate under any rule, "
            "so the worst case stays for it; the nearest-size rule fixes the later new sizes, which the pooled rate (dominated "
            "by the small models' poor use of the cores) overestimated up to 3.9x.\n\n" + "\n".join(rows))
    write_section("sweep_estimates", body, heading="Sweep budget: time estimates (`bench/sweep_estimates.py`)", doc=page("scale"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
