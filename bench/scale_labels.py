"""Learning curves of labels: a classifier's accuracy against labelled examples per class, measured with the
product's own `guimo scale support|categorize`, and what 2x and 4x the labels would buy, priced.

    python bench/scale_labels.py                              # support on its embedded queries: the shipped recipe (~15 min)
    python bench/scale_labels.py --scenario categorize        # categorize on its generated catalogue
    python bench/scale_labels.py --scenario support --data ../shared/data/banking77 --out runs/scale-banking77
    python bench/scale_labels.py --render                     # rewrite the docs section from bench/results

Each run is one `guimo scale SCENARIO` command with the scenario's shipped recipe (guimo/recipes/scale/SCENARIO.toml:
four stratified, nested shares of the labelled training split, one seed, the best of 4 validations per point), on one
torch thread per point (a shared machine). The sweep folder is resumable: re-running the script refits the finished
points instead of training them again. The check is the recipe's own: the curve fitted on the runs with <= 50% of the
labels predicts the full-label accuracy (criterion: within 3%). Writes bench/results/scale_labels_<scenario>.json
and the scale_labels section of docs/benchmarks/scale.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from benchdoc import page, write_section  # noqa: E402  (bench/ is on sys.path when run as a script)

RESULTS = ROOT / "bench" / "results"
HEADING = "Learning curves of labels (bench/scale_labels.py)"


def command(scenario: str, out: str, data: str | None) -> list[str]:
    return ["guimo", "scale", scenario, "--out", out, "--set", "sweep.threads=1", "--quiet", *(["--data", data] if data else [])]


def measure(scenario: str, out: str, data: str | None) -> dict:
    """Run (or resume) the sweep, then read what its report fitted."""
    from guimo.device import cpu_info

    cmd = command(scenario, out, data)
    load0, t0 = os.getloadavg()[0], time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    fit = json.loads((Path(out) if Path(out).is_absolute() else ROOT / out).joinpath("scale", "fit.json").read_text())
    sweep = json.loads((Path(out) if Path(out).is_absolute() else ROOT / out).joinpath("sweep.json").read_text())
    return {
        "scenario": scenario, "data": data or "embedded", "command": " ".join(cmd), "out": out,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "cpu": cpu_info(),
        "load_avg_1_start_end": [round(load0, 2), round(os.getloadavg()[0], 2)], "wall_s": round(time.perf_counter() - t0, 1),
        "sweep_minutes": round(sum(i["wall_s"] for i in sweep.get("invocations", [])) / 60, 1), "torch_threads_per_point": 1,
        "points": [{k: p[k] for k in ("run", "fraction", "seed", "per_class", "value", "baselines", "train_seconds")} for p in fit["points"]],
        "labels": fit["labels"], "curve": fit["curve"], "check": fit.get("curve_check"), "verdict": fit["verdict"],
    }


def render(records: list[dict]) -> str:
    lines = ["What more labels buy a classifier, measured by `guimo scale support|categorize` itself: accuracy against labelled "
             "examples per class for the fine-tuned MiniLM and its baselines, each fitted with err(n) = alpha n^(-beta) + gamma, "
             "2x and 4x the labels predicted with 95% bootstrap bands and priced at `[labels] per_example` of guimo/prices.toml. "
             "The check: the curve fitted on <= 50% of the labels predicts the full-label accuracy (criterion 3%).", ""]
    for r in records:
        lab, cpu = r["labels"], r["cpu"]
        lines += [f"### {r['scenario']} ({r['data']})", "",
                  f"`{r['command']}` — {r['date'][:16]} UTC — {cpu['model']} ({cpu['cores']} cores; ISA flags: {', '.join(cpu['flags']) or 'none'}), "
                  f"one torch thread per point; load average {r['load_avg_1_start_end'][0]:.1f} at the start, {r['load_avg_1_start_end'][1]:.1f} "
                  f"at the end (a shared machine); the sweep trained for {r['sweep_minutes']:.1f} min. {lab['classes']} classes, "
                  f"{lab['labelled']:,.0f} labelled training examples at the full share ({lab['per_class']:.1f} per class).", "",
                  "| labels per class | " + " | ".join(sorted(lab["curves"]["accuracy"])) + " |",
                  "| ---: | " + " | ".join("---:" for _ in lab["curves"]["accuracy"]) + " |"]
        per = sorted({round(x, 1) for e in lab["curves"]["accuracy"].values() for x, _ in e["points"]})
        for x in per:
            cells = []
            for name in sorted(lab["curves"]["accuracy"]):
                vals = [v for px, v in lab["curves"]["accuracy"][name]["points"] if round(px, 1) == x]
                cells.append(f"{sum(vals) / len(vals):.4f}" if vals else "—")
            lines.append(f"| {x:.1f} | " + " | ".join(cells) + " |")
        lines += ["", "| contender | 2x labels: accuracy [95% band], gain, cost | 4x labels: accuracy [95% band], gain, cost |", "| --- | --- | --- |"]
        for name, rows in lab["prices"].items():
            lines.append(f"| {name} | " + " | ".join(
                f"{p['predicted']:.4f} [{p['band'][0]:.4f}, {p['band'][1]:.4f}], {100 * p['gain']:+.2f} pt, {p['cost']:,.0f} {lab['currency']}"
                for p in rows) + " |")
        chk = r.get("check")
        lines += ["", (f"Half-label check: predicted {chk['predicted']:.4f} vs observed {chk['actual']:.4f}, "
                       f"{100 * chk['relative_error']:.1f}% relative error (criterion 3%: {'met' if chk['relative_error'] <= 0.03 else 'NOT met'})."
                       if chk else "Half-label check: did not run (fewer than 3 label counts at <= 50%).")
                  + (f" {r['note']}" if r.get("note") else ""), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="support", choices=("support", "categorize"))
    ap.add_argument("--data", help="data.path (default: the scenario's embedded data)")
    ap.add_argument("--out", help="sweep folder (default: runs/scale-labels-SCENARIO); a finished one is refitted, not retrained")
    ap.add_argument("--render", action="store_true", help="rewrite the docs section from bench/results/scale_labels_*.json")
    ap.add_argument("--note", default="", help="a sentence for the section (what the figures show, how busy the machine was)")
    args = ap.parse_args(argv)
    from guimo.io import atomic_write_json

    if not args.render:
        name = args.scenario if not args.data else f"{args.scenario}-{Path(args.data).name}"
        record = measure(args.scenario, args.out or f"runs/scale-labels-{name}", args.data)
        record["note"] = args.note
        atomic_write_json(RESULTS / f"scale_labels_{name}.json", record)
    records = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("scale_labels_*.json"))]
    write_section("scale_labels", render(records), heading=HEADING, doc=page("scale"))
    print(f"wrote docs/benchmarks/scale.md ({len(records)} record(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
