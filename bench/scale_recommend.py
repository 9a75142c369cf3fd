"""Business learning curves: NDCG@10 of `recommend` vs training data, measured with the product's own
`guimo scale recommend`, and the issue's check that the curve fitted on <= 50% of the data predicts
the full-data NDCG@10 within 10% (for every model size of the sweep).

    python bench/scale_recommend.py --dataset marketplace   # embedded marketplace, 3 model sizes x 4 shares x 2 seeds (~30 min)
    python bench/scale_recommend.py --dataset beauty        # Beauty, recipe bench/recommend_beauty.toml, 1 size x 4 x 2 (~27 min)
    python bench/scale_recommend.py --render                # rewrite the docs block from bench/results

Each dataset is one `guimo scale recommend` command (printed in the record). Its sweep folder is
resumable, so re-running the script refits the finished points instead of training them again, and
a folder trained with other settings is refused by the sweep itself. Data shares are users, in an
order hashed from their ids, holding that share of the interactions; the catalogue stays whole, so
the x axis measures data and not an easier ranking task. Every point keeps the best of its
validations (``--evals``), as a practitioner would train it.
Writes bench/results/scale_recommend_<dataset>.json and the scale_recommend block of docs/benchmarks/scale.md;
the records of the fourth session's own training loop are in bench/results/history/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchdoc import page, write_section  # noqa: E402  (bench/ is on sys.path when run as a script)

RESULTS = ROOT / "bench" / "results"
TARGET = 0.10
# One intra-op thread per worker, and glibc keeping freed memory for reuse instead of returning it after every step
# (the sampled softmax's large temporaries; halved a Beauty step here, docs/FACTS.md, as bench/recommend_beauty.sh sets).
ENV = {"OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "17179869184", "MALLOC_TOP_PAD_": "1073741824"}
# Each dataset's design is a scale recipe (sizes, shares, seeds, epochs, lr, validations, bootstrap): the marketplace's
# is the one `guimo scale recommend` runs by default, Beauty's starts from the tuned run recipe bench/recommend_beauty.toml.
DATASETS = {
    "marketplace": ["--config", "guimo/recipes/scale/recommend.toml"],
    "beauty": ["--config", "bench/scale_recommend_beauty.toml"],
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=list(DATASETS), default="marketplace")
    p.add_argument("--out", help="sweep folder (default: runs/scale-rec-<dataset>)")
    p.add_argument("--render", action="store_true", help="only rewrite the docs block from bench/results")
    p.add_argument("--no-write", action="store_true", help="leave bench/results and docs/benchmarks/scale.md alone")
    args = p.parse_args(argv)
    if not args.render:
        record = measure(args.dataset, args.out or f"runs/scale-rec-{args.dataset}")
        print(json.dumps({k: record[k] for k in ("dataset", "command", "wall_min", "train_min")}, indent=1))
        for size, c in record["curves"].items():
            print(f"{size}: half-data check {c['check']['relative_error']:.1%}" if c.get("check") else f"{size}: no check")
        if args.no_write:
            return 0
        (RESULTS / f"scale_recommend_{args.dataset}.json").write_text(json.dumps(record, indent=1) + "\n")
    write_section("scale_recommend", render_all(), heading="Recommender learning curves (`bench/scale_recommend.py`)", doc=page("scale"))
    return 0


def measure(dataset: str, out: str) -> dict:
    """Run (or resume) the dataset's sweep through the CLI, then collect what the report fitted."""
    os.environ.update(ENV)  # before torch is imported; the sweep's worker processes inherit it
    from guimo.cli import main as guimo
    from guimo.scale.sweep import sweep_minutes

    argv = ["scale", "recommend", *DATASETS[dataset], "--out", out]
    if guimo([*argv, "--quiet"]) != 0:
        raise SystemExit(f"guimo {' '.join(argv)} failed")
    sweep = json.loads((ROOT / out / "sweep.json").read_text())
    fit = json.loads((ROOT / out / "scale" / "fit.json").read_text())
    # one curve per model size when the sweep has several, else the one curve of the report
    curves = fit.get("curves") or {fit["points"][0]["size"]: {**fit["curve"], "check": fit.get("curve_check")}}
    runs = sweep.get("invocations") or []  # the invocations that trained points, across resumes (local time of the machine)
    if not runs:
        raise SystemExit(f"{out}/sweep.json records no invocation that trained points (a sweep from before they were recorded): use a new --out")
    from guimo.device import cpu_info

    return {
        "dataset": dataset, "command": " ".join(f"{k}={v}" for k, v in ENV.items()) + " guimo " + shlex.join(argv), "date": runs[0]["started"][:10],
        "started": [i["started"].replace("T", " ") for i in runs], "load_avg_1_start_end": [runs[0]["load_avg_1_start_end"][0], runs[-1]["load_avg_1_start_end"][1]],
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}", "cpu": cpu_info(),
        "wall_min": round(sweep_minutes(runs), 1), "invocations": len(runs),
        "train_min": round(sum(q.get("seconds", 0.0) for q in sweep["points"]) / 60, 1),  # every point's own wall time, summed
        "runs": [{k: q[k] for k in ("size", "n", "fraction", "seed", "unique", "value", "baselines")} for q in fit["points"]],
        "curves": curves, "report": f"{out}/scale/report.md",
    }


def render_all() -> str:
    lines = [
        "Command: `python bench/scale_recommend.py --dataset marketplace|beauty`, which runs the `guimo scale recommend` command in each row "
        "(2 seeds; every point keeps its best of `--evals` validations; data shares: users holding that share of the interactions, catalogue whole). "
        "Fit m(n) = a + b n^(-c), weighted by each run's test cases, per model size; check: fitted on the runs with <= 50% of the data, predict "
        "the full-data NDCG@10 (mean over seeds) within 10%, with the check's noise floor (the curve of all runs taken as exact, every run "
        "redrawn with the seed noise: what noise alone gives).\n",
        "| data | command | started (machine clock; one per invocation that trained), load | wall / train min | test NDCG@10 by model (rows) and training interactions (mean of seeds) "
        "| best baseline | half-data check per model: error (noise floor median / p90) | target |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for path in sorted(RESULTS.glob("scale_recommend_*.json")):
        r = json.loads(path.read_text())
        if "curves" not in r:  # a record of the old training loop (bench/results/history/)
            continue
        table, base = _by_size(r["runs"])
        checks = {s: c.get("check") for s, c in r["curves"].items()}
        ok = [s for s, c in checks.items() if c and c["relative_error"] <= TARGET]
        verdict = "met" if len(ok) == len(checks) else f"met for {', '.join(ok) or 'none'}; NOT met for " + ", ".join(s for s in checks if s not in ok)
        lines.append(f"| {r['dataset']} | `{r['command']}` | {', '.join(r['started'])}, load {r['load_avg_1_start_end'][0]} -> {r['load_avg_1_start_end'][1]} "
                     f"| {r['wall_min']} / {r['train_min']} | {table} | {base} | "
                     + "; ".join(f"{s} {_check(c)}" for s, c in checks.items()) + f" | {verdict} |")
    return "\n".join(lines)


def _by_size(runs: list[dict]) -> tuple[str, str]:
    """'size (N params): v1 / v2 / ...' per model size, columns in increasing data; and the best baseline per data size."""
    sizes = sorted({(r["n"], r["size"]) for r in runs})
    data = sorted({r["unique"] for r in runs})
    cells = {}
    for r in runs:
        cells.setdefault((r["size"], r["unique"]), []).append(r["value"])
    rows = [f"{name} ({n:,}): " + " / ".join(f"{sum(cells[name, u]) / len(cells[name, u]):.4f}" for u in data if (name, u) in cells)
            for n, name in sizes]
    best = {}
    for r in runs:
        best[r["unique"]] = max(r["baselines"].values(), default=float("nan"))
    head = " / ".join(f"{u / 1000:.0f}k" for u in data)
    return f"at {head}: " + "; ".join(rows), " / ".join(f"{best[u]:.4f}" for u in data)


def _check(c: dict | None) -> str:
    if not c:
        return "no check"
    nf = c.get("noise_floor") or {}
    floor = f" ({nf['median']:.1%} / {nf['p90']:.1%})" if nf.get("sims") else ""
    return f"{c['relative_error']:.1%}{floor}"


if __name__ == "__main__":
    sys.exit(main())
