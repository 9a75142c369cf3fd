"""What a sweep's --budget buys under each point order, replayed on recorded LM sweeps (no training).

    python bench/sweep_budget.py runs/bench-scale-stdlib-v2 runs/bench-scale-zh-poetry-v2 ... [--shares 0.25,0.5,0.75]

For each recorded sweep and each budget (a share of the time its points took), the points are
replayed in each order of `guimo.scale.sweep.order_points`, as `run_sweep` decides: the first point
always runs, every later one is estimated by `estimate_seconds` from the points replayed before it
and skipped when it would overrun, and a trained point costs the seconds it really took. The
replay is sequential (one worker), so the budget is in summed point-seconds.

What the kept points give, per order:
- the sizes and the span of N they cover, and the extrapolation check they allow (the largest kept
  model held out: its ratio to the next and the max relative error, as `guimo scale` reports it);
- **grid error**: L(N, D) fitted on the kept points alone, scored against every cell of the whole
  grid (seed mean, kept or not): the median and max relative error. This is the question a budget
  answers for a user: how close is the picture it buys to the one the whole sweep would give.
- **largest cell**: the error at the grid's largest model on all the data, the run a user
  plans from a sweep (trained under one order, predicted under the other).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchdoc import page, write_section  # noqa: E402  (bench/ is on sys.path when run as a script)


def replay(points: list[dict], order: str, fractions: list[float], first_seed: int, budget: float) -> list[dict]:
    """The points a budget keeps under ``order``, deciding as run_sweep does with perfect hindsight of each
    trained point's real time."""
    from guimo.scale.sweep import estimate_seconds, order_points

    kept: list[dict] = []
    used = 0.0
    for p in order_points([dict(q) for q in points], order, fractions, first_seed):
        if kept and used + estimate_seconds(p, kept) > budget:
            continue
        kept.append(p)
        used += p["seconds"]
    return kept


def outcome(kept: list[dict], by_run: dict, cells: dict) -> dict:
    from guimo.errors import GuimoError
    from guimo.scale.extrapolate import holdout_checks
    from guimo.scale.fit import fit_law

    pts = [by_run[Path(p["run"]).name] for p in kept]
    n = np.array([q.n for q in pts], float)
    d = np.array([q.d for q in pts], float)
    loss = np.array([q.value for q in pts], float)
    out = {"points": len(pts), "sizes": len({q.n for q in pts}), "n_span": float(n.max() / n.min()),
           "fractions": len({q.fraction for q in pts})}
    (check,) = holdout_checks(n, d, loss, axes=("N",), n_bootstrap=0)
    out["check"] = None if check.skipped else (check.ratio, check.max_relative_error)
    try:
        law = fit_law(n, d, loss, n_bootstrap=0).law
    except GuimoError:
        out["grid"] = None
        return out
    cn, cd, cl = (np.array(v, float) for v in zip(*[(k[0], k[1], v) for k, v in cells.items()]))
    err = np.abs(law.loss(cn, cd) - cl) / cl
    top = np.flatnonzero((cn == cn.max()) & (cd == cd[cn == cn.max()].max()))[0]
    out["grid"] = (float(np.median(err)), float(err.max()), float(err[top]))
    return out


def main(argv: list[str] | None = None) -> int:
    from guimo.scale.points import collect_points, mean_by_cell
    from guimo.scale.sweep import ORDERS, read_sweep

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweeps", nargs="+", help="recorded lm sweep folders (with sweep.json)")
    ap.add_argument("--shares", default="0.25,0.5,0.75", help="budgets as shares of the time the recorded points took")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    shares = [float(s) for s in args.shares.split(",")]
    rows = ["| sweep | budget | order | points | sizes (N span) | data fractions | extrapolation check: ratio, max error | "
            "grid error: median / max | largest cell error |",
            "| --- | ---: | --- | ---: | --- | ---: | --- | --- | ---: |"]
    summary: dict[tuple[float, str], list[dict]] = {}
    for folder in args.sweeps:
        record = read_sweep(folder)
        points = [p for p in record["points"] if p.get("status") == "done" and p.get("seconds")]
        found, _ = collect_points(folder)
        by_run = {Path(q.run).name: q for q in found}
        cells = mean_by_cell(found)
        total = sum(p["seconds"] for p in points)
        n_sizes = len({q.n for q in found})
        spec = record["spec"]
        for share in shares:
            for order in ORDERS:
                kept = replay(points, order, spec["fractions"], spec.get("seed", 0), share * total)
                o = outcome(kept, by_run, cells) | {"grid_sizes": n_sizes}
                summary.setdefault((share, order), []).append(o)
                check = f"{o['check'][0]:.1f}x, {o['check'][1]:.2%}" if o["check"] else "not possible"
                grid = f"{o['grid'][0]:.2%} / {o['grid'][1]:.2%}" if o["grid"] else "no fit"
                top = f"{o['grid'][2]:.2%}" if o["grid"] else "-"
                rows.append(f"| {Path(folder).name} | {share:.0%} | {order} | {o['points']} of {len(points)} | {o['sizes']} of {n_sizes} "
                            f"({o['n_span']:.0f}x) | {o['fractions']} | {check} | {grid} | {top} |")
                print(rows[-1], flush=True)
    lines = ["| budget | order | sweeps with every size kept | median grid error (median over sweeps) | max grid error (median over sweeps) | "
             "largest cell error (median over sweeps) |", "| ---: | --- | ---: | ---: | ---: | ---: |"]
    for (share, order), outs in summary.items():
        fitted = [o for o in outs if o["grid"]]
        med = lambda i: f"{np.median([o['grid'][i] for o in fitted]):.2%}" if fitted else "-"  # noqa: E731
        lines.append(f"| {share:.0%} | {order} | {sum(o['sizes'] == o['grid_sizes'] for o in outs)} of {len(outs)} | "
                     f"{med(0)} | {med(1)} | {med(2)} |")
    print("\n".join(lines))
    body = (f"Command: `python bench/sweep_budget.py {' '.join(args.sweeps)} --shares {args.shares}` ({dt.date.today()}, {platform.machine()}; "
            "no training: each recorded sweep replayed under a budget that is a share of the time its points took, sequentially, "
            "each point estimated by `estimate_seconds` from those kept before it and skipped when it would overrun). "
            "Grid error: L(N, D) fitted (Huber 1e-2, E free, no bootstrap) on the kept points only, scored against the seed mean of every "
            "cell of the whole recorded grid; largest cell: the grid's largest model on all the data.\n\n"
            + "\n".join(lines) + "\n\n" + "\n".join(rows))
    if not args.no_write:
        write_section("sweep_budget", body, heading="Sweep budget: what each point order keeps (`bench/sweep_budget.py`)", doc=page("scale"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
