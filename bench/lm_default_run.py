"""The default language-model run end to end: `guimo run lm --set model=tiny`, timed per stage.

The issue's bar: on 2 cores the whole run (collect, preprocess, init, train, evaluate, optimize)
finishes in under 3 minutes and the transformer's bits per byte beat the bigram baseline's. Each
repeat runs the real command in a fresh process (so the CLI's OpenMP setting applies) into a
temporary run directory and reads the manifest and metrics it leaves. The load average is
recorded because these cores are shared: a training step's wall time moves with it, and the
default `train.max_time_s` budget stops training early on a busy machine (the table says when).

    python bench/lm_default_run.py                 # 1 repeat (~1-2.5 min); rewrites its docs section
    python bench/lm_default_run.py --repeats 3 --no-write
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from benchdoc import page, write_section  # noqa: E402  (bench/ is on sys.path when run as a script)

COMMAND = ["run", "lm", "--set", "model=tiny", "--quiet"]
LIMIT_S = 180.0


def one_run(out: Path) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "guimo", *COMMAND, "--out", str(out)], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"guimo run failed ({proc.returncode}):\n{proc.stderr}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    manifest = json.loads((out / "manifest.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    stages = manifest["stages"]
    train_cfg = manifest["config"]["train"]
    bpb = {"transformer": metrics["model"]["bits_per_byte"], **{k: v["bits_per_byte"] for k, v in metrics["baselines"].items()}}
    return {
        "wall_s": wall,
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "load": (load0, os.getloadavg()[0]),
        "stages": {k: v["seconds"] for k, v in stages.items()},
        "steps": stages["train"]["steps"],
        "max_steps": train_cfg["max_steps"],
        "max_time_s": train_cfg["max_time_s"],
        "bpb": bpb,
        "margin": 1 - bpb["transformer"] / bpb["bigram"],
        "eval_tokens": metrics["eval_tokens"],
    }


def report(runs: list[dict]) -> str:
    import torch

    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    stage_names = list(runs[0]["stages"])
    lines = [
        f"Command: `guimo {' '.join(COMMAND[:-1])}` via `python bench/lm_default_run.py` — {now} — "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, Python {platform.python_version()}.",
        f"Defaults: tiny model (2 layers, width 64, untied head), BPE vocabulary 2,048, batch 16 x 128 tokens, "
        + (f"{runs[0]['max_steps']} steps or `train.max_time_s` = {runs[0]['max_time_s']:.0f} s of training, whichever comes first; "
           if runs[0]["max_time_s"] else f"{runs[0]['max_steps']} steps (fixed: no time budget, the same weights on every run); ") +
        f"test bits per byte on {runs[0]['eval_tokens']:,} tokens of held-out standard-library files.",
        "",
        "| repeat | load avg (start-end) | " + " | ".join(f"{s} s" for s in stage_names) + " | total wall s | CPU s | steps | transformer bpb | bigram bpb | unigram bpb | margin vs bigram |",
        "| ---: | ---: | " + " | ".join("---:" for _ in stage_names) + " | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for i, r in enumerate(runs, 1):
        lines.append(
            f"| {i} | {r['load'][0]:.1f}-{r['load'][1]:.1f} | " + " | ".join(f"{r['stages'][s]:.1f}" for s in stage_names)
            + f" | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['steps']}/{r['max_steps']} | {r['bpb']['transformer']:.4f} | "
            f"{r['bpb']['bigram']:.4f} | {r['bpb']['unigram']:.4f} | {100 * r['margin']:.1f}% |"
        )
    walls = [r["wall_s"] for r in runs]
    ok_time = all(w < LIMIT_S for w in walls)
    ok_quality = all(r["margin"] > 0 for r in runs)
    lines += [
        "",
        f"Targets: whole run under {LIMIT_S:.0f} s: {'met' if ok_time else 'NOT met'} (median {statistics.median(walls):.0f} s, max {max(walls):.0f} s); "
        f"transformer below the bigram's bits per byte: {'met' if ok_quality else 'NOT met'} "
        f"(smallest margin {100 * min(r['margin'] for r in runs):.1f}%).",
        "CPU s is the user + system time of the run's process, about what the run needs from one idle core; on a "
        "busy machine the wall time is far above it, and `train.max_time_s` stops training early (steps below the "
        "maximum) with the final weights validated. Stopped harder by hand (`--set train.max_time_s=60`, load ~6.5, "
        "2026-11-28), the run ended at step 330 of 500 with 1.696 bpb, still below the bigram's 1.725.",
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=1, help="full runs, one after another (default 1)")
    ap.add_argument("--no-write", action="store_true", help="print the table, leave docs/benchmarks/lm.md alone")
    args = ap.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="guimo-lm-bench-") as tmp:
        for i in range(args.repeats):
            runs.append(one_run(Path(tmp) / f"run-{i}"))
            print(json.dumps(runs[-1]), flush=True)
    body = report(runs)
    print(body)
    if not args.no_write:
        write_section("lm_default_run", body, heading="LM default run (`guimo run lm --set model=tiny`)", doc=page("lm"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
