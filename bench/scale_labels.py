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
import shutil
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


def command(scenario: str, out: str, data: str | None, settings: list[str] = (), fractions: str | None = None) -> list[str]:
    """The `guimo scale` command line: the scenario's shipped recipe unless ``settings`` (``--set`` values) say otherwise."""
    cmd = ["guimo", "scale", scenario, *(["--data", data] if data else []), *(["--data-fractions", fractions] if fractions else [])]
    for s in ["sweep.threads=1", *settings]:
        cmd += ["--set", s]
    return cmd + ["--out", out, "--quiet"]


def shown(cmd: list[str]) -> str:
    return " ".join(f'"{c}"' if " " in c else c for c in cmd)


def measure(name: str, scenario: str, out: str, data: str | None, settings: list[str] = (), fractions: str | None = None,
            prefix: str = "scale_labels") -> dict:
    """Run (or resume) the sweep on one torch thread per point, then read what its report fitted; its accuracy plot is
    copied to bench/results/<prefix>_<name>.png."""
    from guimo.device import cpu_info

    cmd = command(scenario, out, data, list(settings), fractions)
    load0, t0 = os.getloadavg()[0], time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    folder = Path(out) if Path(out).is_absolute() else ROOT / out
    fit = json.loads((folder / "scale" / "fit.json").read_text())
    sweep = json.loads((folder / "sweep.json").read_text())
    plot, png = folder / "scale" / "plots" / "labels_accuracy.png", None
    if plot.is_file():
        png = RESULTS / f"{prefix}_{name}.png"
        shutil.copyfile(plot, png)
    return {
        "name": name, "scenario": scenario, "data": data or "embedded", "command": "OMP_NUM_THREADS=1 " + shown(cmd), "out": out,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "cpu": cpu_info(),
        "load_avg_1_start_end": [round(load0, 2), round(os.getloadavg()[0], 2)], "wall_s": round(time.perf_counter() - t0, 1),
        "sweep_minutes": round(sum(i["wall_s"] for i in sweep.get("invocations", [])) / 60, 1), "torch_threads_per_point": 1,
        "points": [{k: p.get(k) for k in ("run", "fraction", "seed", "per_class", "value", "baselines", "train_seconds", "steps", "best_step")}
                   for p in fit["points"]],
        "labels": fit["labels"], "check": fit.get("curve_check"), "verdict": fit["verdict"],
        "plot": str(png.relative_to(ROOT)) if png else None,
    }


def render_one(r: dict) -> list[str]:
    """One sweep's section: its command, machine and load, accuracy per share, the priced 2x/4x predictions, the check."""
    lab, cpu = r["labels"], r["cpu"]
    curves = lab["curves"]["accuracy"]
    names = ["model"] + sorted(n for n in curves if n != "model")
    lpft = "model.head_init=probe" in r["command"]
    label = {"model": "fine-tuned MiniLM" + (" (LP-FT)" if lpft else ""), "encoder_lr": "frozen MiniLM + LR", "tfidf_svm": "TF-IDF + SVM"}
    title = r.get("name") or (r["scenario"] if r["data"] == "embedded" else f"{r['scenario']}-{Path(r['data']).name}")
    lines = [f"### {title} (`guimo scale {r['scenario']}`)", "",
             f"`{r['command']}`", "",
             *([f"Data: a seeded subsample of PriceRunner's product clusters ({r['subsample']['clusters']} clusters, "
                f"{r['subsample']['rows']} offers, seed {r['subsample']['seed']}, sha256 {r['subsample']['sha256'][:12]}...), "
                "written by the script's `--clusters`; the scenario splits it by cluster as it does the whole file.", ""]
              if r.get("subsample") else []),
             f"{r['date'][:16].replace('T', ' ')} UTC — {cpu['model']} ({cpu['cores']} cores; ISA flags: {', '.join(cpu['flags']) or 'none'}), "
             "one torch thread per point; "
             + (f"1-minute load average {r['sweep_load'][0]:.1f}-{r['sweep_load'][1]:.1f} while the sweep trained (sampled about once a "
                "minute; a machine shared with other jobs)" if r.get("sweep_load") else
                f"1-minute load average {r['load_avg_1_start_end'][0]:.1f} at the start, {r['load_avg_1_start_end'][1]:.1f} at the end "
                "(a shared machine)")
             + f"; the sweep trained for {r['sweep_minutes']:.1f} min. {lab['classes']} classes, "
             f"{lab['labelled']:,.0f} labelled training examples at the full share ({lab['per_class']:.1f} per class); every share "
             "is scored on the same test split.", "",
             "| labels per class | " + " | ".join(label.get(n, n) for n in names) + " |",
             "| ---: | " + " | ".join("---:" for _ in names) + " |"]
    for x in sorted({round(x, 1) for e in curves.values() for x, _ in e["points"]}):
        cells = []
        for n in names:
            vals = [v for px, v in curves[n]["points"] if round(px, 1) == x]
            cells.append(f"{sum(vals) / len(vals):.4f}" if vals else "—")
        lines.append(f"| {x:.1f} | " + " | ".join(cells) + " |")
    lines += ["", "| contender | 2x labels: accuracy [95% band], gain [band], cost | 4x labels: accuracy [95% band], gain [band], cost |",
              "| --- | --- | --- |"]
    for n in names:
        cells = []
        for p in lab["prices"].get(n, []):
            gb = p.get("gain_band")
            cells.append(f"{p['predicted']:.4f} [{p['band'][0]:.4f}, {p['band'][1]:.4f}], {100 * p['gain']:+.2f} pt"
                         + (f" [{100 * gb[0]:+.2f}, {100 * gb[1]:+.2f}]" if gb else "") + f", {p['cost']:,.0f} {lab['currency']}")
        lines.append(f"| {label.get(n, n)} | " + " | ".join(cells) + " |")
    chk = r.get("check")
    lines += ["", (f"Half-label check (the curve fitted on the shares <= 50% predicts the full share): predicted {chk['predicted']:.4f}, "
                   f"observed {chk['actual']:.4f}, {100 * chk['relative_error']:.2f}% relative error (criterion 3%: "
                   f"{'met' if chk['relative_error'] <= 0.03 else 'NOT met'})." if chk else "Half-label check: did not run.")
              + f" Labels priced at {lab['price_source']}."]
    if r.get("note"):
        lines += ["", r["note"]]
    if r.get("plot"):
        lines += ["", f"![{title}: accuracy against labelled examples per class](../../{r['plot']})"]
    return lines + [""]


def render(records: list[dict], intro: str) -> str:
    return "\n".join([intro, "", *(line for r in records for line in render_one(r))]).rstrip() + "\n"


def publish(prefix: str, doc: str, heading: str, intro: str, record: dict | None = None) -> None:
    """Write ``record`` (if any) as bench/results/<prefix>_<name>.json, then rewrite the ``prefix`` section of
    docs/benchmarks/<doc>.md from every such record."""
    from guimo.io import atomic_write_json

    if record is not None:
        atomic_write_json(RESULTS / f"{prefix}_{record['name']}.json", record)
    records = [json.loads(p.read_text()) for p in sorted(RESULTS.glob(f"{prefix}_*.json"))]
    write_section(prefix, render(records, intro), heading=heading, doc=page(doc))
    print(f"wrote docs/benchmarks/{doc}.md ({len(records)} record(s))")


INTRO = ("What more labels buy a classifier, measured by `guimo scale support|categorize` itself with the scenario's shipped "
         "recipe: accuracy against labelled examples per class for the fine-tuned MiniLM and its baselines, each fitted with "
         "err(n) = alpha n^(-beta) + gamma, 2x and 4x the labels predicted with 95% bootstrap bands and priced at "
         "`[labels] per_example` of guimo/prices.toml. The check: the curve fitted on <= 50% of the labels predicts the "
         "full-label accuracy (criterion 3%).")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="support", choices=("support", "categorize"))
    ap.add_argument("--data", help="data.path (default: the scenario's embedded data)")
    ap.add_argument("--out", help="sweep folder (default: runs/scale-labels-SCENARIO); a finished one is refitted, not retrained")
    ap.add_argument("--render", action="store_true", help="rewrite the docs section from bench/results/scale_labels_*.json")
    ap.add_argument("--note", default="", help="a sentence for the section (what the figures show, how busy the machine was)")
    args = ap.parse_args(argv)
    record = None
    if not args.render:
        name = args.scenario if not args.data else f"{args.scenario}-{Path(args.data).name}"
        record = measure(name, args.scenario, args.out or f"runs/scale-labels-{name}", args.data)
        record["note"] = args.note
    publish("scale_labels", "scale", HEADING, INTRO, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
