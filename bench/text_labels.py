"""Learning curves of labels on the real text benchmarks (issue #23): `guimo scale support|categorize --data-fractions`
on BANKING77 and PriceRunner, accuracy against labelled examples per class for the fine-tuned MiniLM and its two
baselines, and what 2x and 4x the labels would buy, priced.

    python bench/text_labels.py --name banking77 --data ../shared/data/banking77                  # ~15 min, 2 busy cores
    python bench/text_labels.py --name pricerunner-quarter --scenario categorize --data ../shared/data/pricerunner \
        --clusters 0.25                                                                           # ~15 min
    python bench/text_labels.py --render                                                          # rewrite the section

Each record is one `guimo scale SCENARIO` command (the product's own sweep, fit and pricing), with the settings below
so that a 2-core machine shared by several jobs trains the whole grid in about a quarter of an hour: ONE pass over
each share (the recipe ships 3; `sweep.epochs=1`), at least 60 steps per point (the recipe's min_steps), the best of
4 validations, one torch thread, and the head fitted on the frozen encoder before fine-tuning
(`model.head_init=probe`, LP-FT, the recipe bench/text_classify.py chose on BANKING77's validation split), which
makes a short fine-tuning start from the frozen-encoder baseline instead of from a random head. The sweep folder is
resumable: re-running the same command refits the finished points. `--clusters 0.25` first writes a seeded subsample
of PriceRunner's product clusters (a quarter of them, every offer of a kept cluster) to /tmp and sweeps that: the full
file's 25,000 training titles at one pass per share would take over half an hour here, and 4x the subsample's labels
is then about the whole file, whose single-run accuracies the section quotes beside the 4x prediction. Writes bench/results/text_labels_<name>.json,
copies the sweep's accuracy plot to bench/results/text_labels_<name>.png and rewrites the `text_labels` section of
docs/benchmarks/text.md.
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
HEADING = "Learning curves of labels (bench/text_labels.py)"
FRACTIONS = "0.1,0.25,0.5,1"
# The shortened recipe (see the docstring): one pass per share, LP-FT head, BANKING77's validated lr pair.
SETTINGS = ["sweep.epochs=1", "sweep.threads=1", "sweep.lr_ref=2e-4", "train.lr=2e-4", "model.encoder_lr_mult=0.25",
            "model.head_init=probe", "train.warmup_steps=10"]


def cluster_subsample(src: Path, share: float, seed: int, out: Path) -> dict:
    """Keep ``share`` of PriceRunner's product clusters (seeded), every row of a kept cluster, header unchanged: the
    scenario still recognises the file and still splits it by cluster."""
    import csv
    import hashlib
    import random

    path = src / "pricerunner_aggregate.csv" if src.is_dir() else src
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    head, body = rows[0], rows[1:]
    col = [h.strip() for h in head].index("Cluster ID")
    clusters = sorted({r[col] for r in body}, key=int)
    keep = set(random.Random(seed).sample(clusters, k=round(len(clusters) * share)))
    kept = [r for r in body if r[col] in keep]
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(head)
        w.writerows(kept)
    return {"source": str(path), "clusters": f"{len(keep)} of {len(clusters)}", "rows": f"{len(kept)} of {len(body)}", "seed": seed,
            "sha256": hashlib.sha256(out.read_bytes()).hexdigest()}


def command(scenario: str, data: str, out: str, extra: list[str]) -> list[str]:
    cmd = ["guimo", "scale", scenario, "--data", data, "--data-fractions", FRACTIONS]
    for s in SETTINGS + extra:
        cmd += ["--set", s]
    return cmd + ["--out", out, "--quiet"]


def shown(cmd: list[str]) -> str:
    return " ".join(f'"{c}"' if " " in c else c for c in cmd)


def measure(name: str, scenario: str, data: str, out: str, extra: list[str]) -> dict:
    """Run (or resume) the sweep, then read what its report fitted."""
    from guimo.device import cpu_info

    cmd = command(scenario, data, out, extra)
    load0, t0 = os.getloadavg()[0], time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    folder = Path(out)
    fit = json.loads((folder / "scale" / "fit.json").read_text())
    sweep = json.loads((folder / "sweep.json").read_text())
    plot = folder / "scale" / "plots" / "labels_accuracy.png"
    png = None
    if plot.is_file():
        png = RESULTS / f"text_labels_{name}.png"
        shutil.copyfile(plot, png)
    return {
        "name": name, "scenario": scenario, "data": data, "command": "OMP_NUM_THREADS=1 " + shown(cmd), "out": out,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "cpu": cpu_info(),
        "load_avg_1_start_end": [round(load0, 2), round(os.getloadavg()[0], 2)], "wall_s": round(time.perf_counter() - t0, 1),
        "sweep_minutes": round(sum(i["wall_s"] for i in sweep.get("invocations", [])) / 60, 1), "torch_threads_per_point": 1,
        "points": [{k: p.get(k) for k in ("run", "fraction", "seed", "per_class", "value", "baselines", "train_seconds", "steps", "best_step")}
                   for p in fit["points"]],
        "labels": fit["labels"], "check": fit.get("curve_check"), "verdict": fit["verdict"],
        "plot": str(png.relative_to(ROOT)) if png else None,
    }


def _gain(rows: list[dict], multiple: int) -> dict | None:
    return next((p for p in rows if p.get("multiple") == multiple), None)


def render_one(r: dict) -> list[str]:
    lab, cpu = r["labels"], r["cpu"]
    curves = lab["curves"]["accuracy"]
    names = ["model"] + sorted(n for n in curves if n != "model")
    label = {"model": "fine-tuned MiniLM (LP-FT)", "encoder_lr": "frozen MiniLM + LR", "tfidf_svm": "TF-IDF + SVM"}
    lines = [f"### {r['name']} (`guimo scale {r['scenario']}`)", "",
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
    per = sorted({round(x, 1) for e in curves.values() for x, _ in e["points"]})
    for x in per:
        cells = []
        for n in names:
            vals = [v for px, v in curves[n]["points"] if round(px, 1) == x]
            cells.append(f"{sum(vals) / len(vals):.4f}" if vals else "—")
        lines.append(f"| {x:.1f} | " + " | ".join(cells) + " |")
    lines += ["", "| contender | 2x labels: accuracy [95% band], gain [band], cost | 4x labels: accuracy [95% band], gain [band], cost |",
              "| --- | --- | --- |"]
    for n in names:
        rows = lab["prices"].get(n, [])
        cells = []
        for p in rows:
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
        lines += ["", f"![{r['name']}: accuracy against labelled examples per class](../../{r['plot']})"]
    return lines + [""]


def render(records: list[dict]) -> str:
    lines = ["What more labels buy, measured by the product's own `guimo scale support|categorize --data-fractions 0.1,0.25,0.5,1` "
             "on the real data: four stratified, nested shares of the labelled training split (every class keeps its share), each a "
             "MiniLM fine-tune scored beside its two baselines on the same test split; every contender fitted with "
             "err(n) = alpha n^(-beta) + gamma in labelled examples per class, 2x and 4x the labels predicted with 95% bootstrap "
             "bands and priced at `[labels] per_example` of guimo/prices.toml. The grid is shortened to fit a shared 2-core machine "
             "(one pass over each share, not the recipe's three; bench/text_labels.py says why each setting), so the full-share "
             "accuracies sit below the tuned single runs of the sections above.", ""]
    for r in records:
        lines += render_one(r)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--name", help="record name (bench/results/text_labels_NAME.json)")
    ap.add_argument("--scenario", default="support", choices=("support", "categorize"))
    ap.add_argument("--data", help="data.path")
    ap.add_argument("--out", help="sweep folder (default: runs/text-labels-NAME); a finished one is refitted, not retrained")
    ap.add_argument("--clusters", type=float, help="sweep a seeded subsample keeping this share of PriceRunner's product clusters")
    ap.add_argument("--set", action="append", default=[], dest="extra", help="one more --set for the sweep (repeatable)")
    ap.add_argument("--note", default="", help="a paragraph for the record (what the figures show, how it was sized)")
    ap.add_argument("--sweep-load", type=float, nargs=2, metavar=("LOW", "HIGH"),
                    help="the 1-minute load average's range while the sweep trained, when it trained before this invocation (which then only refits)")
    ap.add_argument("--render", action="store_true", help="only rewrite the section from bench/results/text_labels_*.json")
    args = ap.parse_args(argv)
    from guimo.io import atomic_write_json

    if not args.render:
        if not (args.name and args.data):
            ap.error("--name and --data are required to measure")
        data, subsample = args.data, None
        if args.clusters:
            data = f"/tmp/guimo-bench/pricerunner-clusters-{args.clusters:g}.csv"
            subsample = cluster_subsample(Path(args.data), args.clusters, 0, Path(data))
        record = measure(args.name, args.scenario, data, args.out or str(ROOT / "runs" / f"text-labels-{args.name}"), args.extra)
        record["note"], record["subsample"] = args.note, subsample
        if args.sweep_load:
            record["sweep_load"] = args.sweep_load
        atomic_write_json(RESULTS / f"text_labels_{args.name}.json", record)
    records = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("text_labels_*.json"))]
    write_section("text_labels", render(records), heading=HEADING, doc=page("text"))
    print(f"wrote docs/benchmarks/text.md ({len(records)} record(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
