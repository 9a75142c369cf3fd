"""docs/benchmarks/text.md, from one script: the numbers of issue #23 beside their baselines, measured in one run.

    python bench/text.py                          # every part, in the order of the issue's table (hours on 2 cores)
    python bench/text.py --only banking77 scifact # some parts
    python bench/text.py --dry-run                # the commands it would run
    python bench/text.py --render                 # the page's header and summary again from bench/results (no run;
                                                  # without a whole run, the header lists each part's own date and load)

Each part is its own bench script, which measures one benchmark against its baselines in the same process,
writes its record to bench/results/ and its own section of docs/benchmarks/text.md (``benchdoc.write_section``):

| part | script | record | what |
| --- | --- | --- | --- |
| scifact | bench/text_search.py | text_search.json | SciFact nDCG@10: BM25, dense, hybrid (+ reranker), fine-tuned encoder |
| banking77 | bench/text_classify.py | text_classify.json | BANKING77 accuracy, ECE: fine-tuned encoder vs TF-IDF + SVM, MiniLM + LR; int8 |
| pricerunner | bench/text_categorize.py | text_categorize.json | PriceRunner accuracy, split grouped by product cluster |
| stackfaq | bench/text_faq.py | text_faq.json | StackFAQ nDCG@10: retrieve over question + answer, then rerank |
| throughput | bench/encoder_throughput.py | encoder_throughput.json | encoder sentences/s, batch 32, 1 and 2 threads, vs sentence-transformers |

This script runs them one after the other (each in its own process, as a user would: no thread pool or allocator
state carries from one into the next), then writes what they share: the page's header (the machine and its ISA
flags, the date, the load average before and after, the threads, how to rerun) and the issue's table with each
record's figure against its target. A part whose script has not landed, or whose record is missing, is listed as
not measured, with the command that measures it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchdoc import page, write_section  # noqa: E402  (bench/ is on sys.path when run as a script)

RESULTS = ROOT / "bench" / "results"
RUN_RECORD = RESULTS / "text.json"  # this script's own record: the invocation (machine, date, load, each part's time and status)


@dataclass(frozen=True)
class Part:
    key: str
    script: str  # bench/<script>.py
    record: str  # bench/results/<record>
    benchmark: str
    metric: str
    baselines: str  # as the issue states them, measured on these machines (and the published ones)
    target: str
    figure: Callable[[dict[str, Any]], tuple[str, bool | None]]  # (the measured figure, target met) from the record


def headline(record: dict[str, Any]) -> tuple[str, bool | None]:
    """A part record's headline: ``{"headline": {"text": "0.741 (hybrid + reranker)", "met": true}}``, the one field
    every part writes for this table (its own section says the rest); older shapes fall back to ``value``."""
    h = record.get("headline") or {}
    if "text" in h:
        return str(h["text"]), h.get("met")
    if "value" in h:
        return f"{h['value']:.4f}", h.get("met")
    if "ndcg@10" in record.get("model", {}):  # bench/text_search.py: the system validation chose, on the test queries
        value = record["model"]["ndcg@10"]
        return f"{value:.4f} ({record.get('chosen', 'chosen on validation')})", value >= 0.73
    return "see section", None


def throughput(record: dict[str, Any]) -> tuple[str, bool | None]:
    """bench/encoder_throughput.py: guimo fp32 (and bf16, int8) against sentence-transformers at each thread count."""
    if "headline" in record:
        return headline(record)
    rows = record.get("rows", [])
    fp32 = [r for r in rows if r["contender"] == "guimo fp32"]
    text = "; ".join(f"{r['threads']} thread(s): fp32 {r['ratio_vs_st']:.2f}x" for r in fp32)
    others = [r for r in rows if r["contender"] in ("guimo bf16", "guimo int8")]
    if others:
        text += " (" + ", ".join(f"{r['contender'].split()[-1]} {r['ratio_vs_st']:.2f}x at {r['threads']}" for r in others) + ")"
    return text or "see section", (all(r["ratio_vs_st"] >= 1.0 for r in fp32) if fp32 else None)


PARTS = [
    Part("scifact", "text_search", "text_search.json", "SciFact", "nDCG@10",
         "bm25s 0.676-0.686; MiniLM dense 0.6451; RRF hybrid 0.7185 (BEIR: BM25 0.665, + cross-encoder 0.688)", ">= 0.73", headline),
    Part("banking77", "text_classify", "text_classify.json", "BANKING77", "accuracy",
         "TF-IDF + SVM 0.894; MiniLM + LR 0.9305 (Casanueva et al. 2020: fine-tuned BERT 93.66)", ">= 0.937; int8 within 0.5 pt", headline),
    Part("pricerunner", "text_categorize", "text_categorize.json", "PriceRunner (split grouped by product cluster)", "accuracy",
         "TF-IDF + SVM 0.9596; MiniLM + LR 0.9690", ">= 0.975", headline),
    Part("stackfaq", "text_faq", "text_faq.json", "StackFAQ", "nDCG@10", "BM25 on question + answer 0.783", ">= 0.90", headline),
    Part("throughput", "encoder_throughput", "encoder_throughput.json", "MiniLM encoder throughput (batch 32, 1 and 2 threads)",
         "sentences/s", "sentence-transformers on the same model and CPU, interleaved", ">= 1.0x", throughput),
]
BY_KEY = {p.key: p for p in PARTS}


def machine() -> dict[str, Any]:
    """What every figure on the page was measured on."""
    import platform

    from guimo.device import cpu_info

    try:
        import torch

        torch_version, threads = torch.__version__, torch.get_num_threads()
    except ImportError:  # the page's header can be rendered without torch
        torch_version, threads = None, None
    return {"cpu": cpu_info(), "python": platform.python_version(), "torch": torch_version, "torch_threads": threads,
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}


def run_parts(keys: list[str], dry_run: bool = False) -> list[dict[str, Any]]:
    """Run each part's script in its own process; its exit status and wall time, or why it did not run."""
    out = []
    for key in keys:
        part = BY_KEY[key]
        script = ROOT / "bench" / f"{part.script}.py"
        cmd = [sys.executable, str(script.relative_to(ROOT))]
        row: dict[str, Any] = {"part": key, "command": " ".join(["python", *cmd[1:]])}
        if not script.exists():
            row.update(status="missing", reason=f"{script.relative_to(ROOT)} does not exist yet")
        elif dry_run:
            row.update(status="dry-run")
        else:
            load0, t0 = os.getloadavg()[0], time.perf_counter()
            rc = subprocess.run(cmd, cwd=ROOT).returncode
            row.update(status="done" if rc == 0 else f"exit {rc}", seconds=round(time.perf_counter() - t0, 1),
                       load_avg_1_start_end=[round(load0, 2), round(os.getloadavg()[0], 2)])
        print(f"{key}: {row['status']}" + (f" ({row['seconds']:.0f} s)" if "seconds" in row else "") + f"  {row['command']}")
        out.append(row)
    return out


def summary(results: Path = RESULTS) -> str:
    """The issue's table with each record's figure: what the page opens with."""
    lines = ["| benchmark | metric | baselines (issue #23) | target | measured | met | measured on |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for part in PARTS:
        path = results / part.record
        if not path.exists():
            lines.append(f"| {part.benchmark} | {part.metric} | {part.baselines} | {part.target} | not measured: "
                         f"`python bench/text.py --only {part.key}` | — | — |")
            continue
        record = json.loads(path.read_text(encoding="utf-8"))
        figure, met = part.figure(record)
        when = str(record.get("date", ""))[:10]
        lines.append(f"| {part.benchmark} | {part.metric} | {part.baselines} | {part.target} | {figure} | "
                     f"{'yes' if met else 'no' if met is False else '—'} | {when} |")
    return "\n".join(lines)


def header(record: dict[str, Any]) -> str:
    """The machine, the date, the load and how to rerun: said once for the page (each section repeats its own)."""
    m = record["machine"]
    cpu = m["cpu"]
    flags = ", ".join(cpu.get("flags", [])) or "none of avx2/avx512f/avx512_bf16/amx"
    lines = [f"Last run of `python bench/text.py{' --only ' + ' '.join(record['only']) if record.get('only') else ''}`: "
             f"{record['date']} on {cpu['model']} ({cpu.get('cores', '?')} cores; ISA flags: {flags}), "
             f"Python {m['python']}, PyTorch {m['torch']}, {m['torch_threads']} torch threads"
             + (f", OMP_NUM_THREADS={m['omp_num_threads']}" if m.get("omp_num_threads") else "") + ".", ""]
    if record.get("parts"):
        lines += ["| part | status | wall time | load average (1 min) before, after | command |", "| --- | --- | ---: | --- | --- |"]
        for row in record["parts"]:
            load = row.get("load_avg_1_start_end")
            lines.append(f"| {row['part']} | {row['status']}{': ' + row['reason'] if row.get('reason') else ''} | "
                         f"{row['seconds'] / 60:.1f} min | {load[0]:.2f}, {load[1]:.2f} | `{row['command']}` |" if "seconds" in row else
                         f"| {row['part']} | {row['status']}{': ' + row['reason'] if row.get('reason') else ''} | — | — | `{row['command']}` |")
        lines.append("")
    lines.append("Rerun: `python bench/text.py` (every part, one after the other) or `python bench/text.py --only PART ...`; "
                 "each part's script also runs alone and rewrites only its own section. `--render` rewrites this header "
                 "and the table below from `bench/results/` without measuring.")
    return "\n".join(lines)


def _load(record: dict[str, Any]) -> str:
    """A part record's 1-minute load average at its start and end, whichever shape the script wrote it in."""
    pairs = (("load_start", "load_end"), ("load_avg_start", "load_avg_end"))
    for a, b in pairs:
        if a in record and b in record:
            x, y = record[a], record[b]
            x, y = (x[0] if isinstance(x, list) else x), (y[0] if isinstance(y, list) else y)
            return f"{x:.2f} -> {y:.2f}"
    if "load_avg_1_start_end" in record:
        x, y = record["load_avg_1_start_end"]
        return f"{x:.2f} -> {y:.2f}"
    vals = [x for r in record.get("rows", []) for x in (r.get("load_1min") or [])]  # bench/encoder_throughput.py: per round
    if vals:
        return f"{min(vals):.2f}-{max(vals):.2f} over its rounds"
    return "see its section"


def parts_header(results: Path = RESULTS) -> str:
    """The page's header when `bench/text.py` has not run whole: how each section was in fact measured (its own
    script, its date, its load), so the page never claims one run it did not have."""
    from guimo.device import cpu_info

    cpu = cpu_info()
    flags = ", ".join(cpu.get("flags", [])) or "none of avx2/avx512f/avx512_bf16/amx"
    lines = [f"`python bench/text.py` (every part below in one invocation, rewriting this header) has not run whole. Each section "
             f"was measured by its own script on a {cpu.get('cores', '?')}-core {cpu['model']} (ISA flags: {flags}; "
             "no GPU) shared with other work; each section gives its command, its date and the load average while it ran:", "",
             "| section | script | record | measured (UTC) | 1-minute load average, start -> end |", "| --- | --- | --- | --- | --- |"]
    extra = [(f"labels: {p.stem.removeprefix('text_labels_')}", "text_labels", p.name) for p in sorted(results.glob("text_labels_*.json"))]
    for key, script, rec in [(p.key, p.script, p.record) for p in PARTS] + extra:
        path = results / rec
        if not path.exists():
            lines.append(f"| {key} | bench/{script}.py | — | not measured | — |")
            continue
        record = json.loads(path.read_text(encoding="utf-8"))
        lines.append(f"| {key} | bench/{script}.py | bench/results/{rec} | {str(record.get('date', '?'))[:16].replace('T', ' ')} | {_load(record)} |")
    lines += ["", "Times are the shared machine's at that load. The quality figures (accuracy, nDCG) do not depend on the load "
              "as such, but a fine-tuning whose step count comes from a time budget (train.max_time_s) trains fewer steps on a "
              "busier machine: each section gives its step count. Rerun: `python bench/text.py` (every part, "
              "one after the other), `python bench/text.py --only PART ...`, or a part's own script (it rewrites only its section); "
              "`python bench/text.py --render` rewrites this header and the table from `bench/results/` without measuring."]
    return "\n".join(lines)


def write_page(record: dict[str, Any]) -> None:
    write_section("text_header", header(record), heading="How these were measured", doc=page("text"))
    write_section("text_summary", summary(), heading="The issue's numbers", doc=page("text"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", choices=list(BY_KEY), metavar="PART", help=f"parts to run: {', '.join(BY_KEY)}")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run nothing, write nothing")
    ap.add_argument("--render", action="store_true", help="rewrite the header and summary from bench/results without running")
    args = ap.parse_args(argv)
    from guimo.io import atomic_write_json

    if args.render:
        if RUN_RECORD.exists():
            write_page(json.loads(RUN_RECORD.read_text(encoding="utf-8")))
        else:  # the parts ran on their own: the header says so, part by part, and the table comes from their records
            write_section("text_header", parts_header(), heading="How these were measured", doc=page("text"))
            write_section("text_summary", summary(), heading="The issue's numbers", doc=page("text"))
            print(f"{RUN_RECORD.relative_to(ROOT)} not found (bench/text.py itself has not run): rewrote the header from each part's record, and the table")
        return 0
    keys = args.only or list(BY_KEY)
    record = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "machine": machine(), "only": args.only or [],
              "command": "python bench/text.py" + (f" --only {' '.join(args.only)}" if args.only else "")}
    record["cpu"] = record["machine"]["cpu"]
    record["parts"] = run_parts(keys, dry_run=args.dry_run)
    if args.dry_run:
        return 0
    atomic_write_json(RUN_RECORD, record)
    write_page(record)
    print(f"wrote {RUN_RECORD.relative_to(ROOT)} and docs/benchmarks/text.md")
    return 0 if all(r["status"] == "done" for r in record["parts"]) else 1


if __name__ == "__main__":
    sys.exit(main())
