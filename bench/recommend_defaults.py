"""The plain `guimo run recommend --data FILE` against the tuned recipe on the same file.

    python bench/recommend_defaults.py [--data beauty ml-100k marketplace ...] [--runs runs/recommend_defaults]
                                       [--render] [--loss-timing]

For each data set it runs two commands, one after the other, each on one intra-op thread with the
allocator settings of bench/recommend_beauty.sh:

- plain: ``guimo run recommend --data FILE --out RUNS/<data>-plain --quiet`` (no other flag: the
  settings are chosen from the data, guimo/scenarios/recommend_defaults.py);
- recipe: ``guimo run recommend --config RECIPE --out RUNS/<data>-recipe --quiet``. The marketplace's
  recipe is its default config, so its plain run is its recipe run.

A run folder that holds a finished run is read, not re-run (the same command resumes a stopped
one), so long runs can be started early in the background with the same commands. The target:
the plain command's test NDCG@10 within 10% of the recipe's (ratio >= 0.9). Writes
bench/results/recommend_defaults.json and the `recommend_defaults` section of docs/benchmarks/recommend.md.

``--loss-timing`` times one training step of the full and the sampled softmax at several catalogue
sizes (SASRec 2 x 64, batch 512 windows of Beauty's length distribution, one thread): the basis of
``auto.full_softmax_max_items``.
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
from benchdoc import page, write_section  # noqa: E402  (bench/ is on sys.path when run as a script)

SHARED = ROOT.parent / "shared" / "data"
DATA = {  # name -> (file for --data, recipe for --config); None: the embedded marketplace / its default config
    "beauty": (SHARED / "seqrec" / "Beauty_bert4rec.txt", ROOT / "bench" / "recommend_beauty.toml"),
    "ml-100k": (SHARED / "movielens-100k" / "ml-100k.inter", ROOT / "bench" / "recommend_ml100k.toml"),
    "marketplace": (None, None),
}
RESULTS = ROOT / "bench" / "results" / "recommend_defaults.json"
ENV = {"OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "17179869184",
       "MALLOC_TOP_PAD_": "1073741824"}
TARGET = 0.9
# A recipe's figure measured before, used only when its re-run here did not finish (the shared machine's CPU).
REFERENCE = {
    "beauty": {"ndcg@10": 0.0337, "hr@10": 0.0548, "val_curve": [[316, 0.0283], [632, 0.0402], [948, 0.0420], [1264, 0.0411], [1580, 0.0426], [1896, 0.0423]],
               "source": "bench/recommend_beauty.sh seed 0 on 2026-11-28 (docs/benchmarks/recommend.md, 'Amazon Beauty')"},
}


def command(name: str, kind: str, runs: Path) -> list[str]:
    path, recipe = DATA[name]
    out = runs / (f"{name}-{kind}" if path is not None else name)
    cmd = [str(ROOT / ".venv" / "bin" / "guimo"), "run", "recommend", "--out", str(out), "--quiet"]
    if kind == "plain" and path is not None:
        cmd += ["--data", os.path.relpath(path, ROOT)]
    elif kind == "recipe" and recipe is not None:
        cmd += ["--config", os.path.relpath(recipe, ROOT)]
    return cmd


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run_one(name: str, kind: str, runs: Path, read_only: bool = False) -> dict:
    """Run (or read) one command's run folder; its figures and how long it took."""
    cmd = command(name, kind, runs)
    out = Path(cmd[cmd.index("--out") + 1])
    record = {"command": " ".join(["guimo", *cmd[1:]]).replace(str(runs), "RUNS"), "run": str(out.relative_to(ROOT) if out.is_absolute() else out)}
    done = out / "metrics.json"
    if not done.exists() and not read_only:
        load0, t0 = loadavg(), time.time()
        proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **ENV}, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        record.update(wall_s=round(time.time() - t0, 1), load_start=load0, load_end=loadavg())
    return {**record, **read_run(out)}


def val_curve(out: Path) -> list[list]:
    """[[step, validation NDCG@10], ...] from a run's train_log.jsonl (finished or not)."""
    log = out / "train_log.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
    return [[r["step"], round(r["eval"]["ndcg@10"], 4)] for r in rows if "eval" in r]


def read_run(out: Path) -> dict:
    manifest = json.loads((out / "manifest.json").read_text())
    st = manifest["stages"]
    auto = st.get("preprocess", {}).get("auto_settings", {})
    curve = val_curve(out)
    if not (out / "metrics.json").exists():  # stopped before the end (a re-run of its command resumes it)
        log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines() if line.strip()]
        return {"finished": False, "steps_so_far": max((r.get("step", 0) for r in log), default=0), "val_curve": curve,
                "auto": {k: v["value"] for k, v in auto.items()}, "started": manifest.get("created"),
                "users": st["preprocess"]["users"], "items": st["preprocess"]["items"]}
    m = json.loads((out / "metrics.json").read_text())
    best_base = max(m["baselines"].items(), key=lambda kv: kv[1]["ndcg@10"])
    return {
        "test": {k: m["model"][k] for k in ("ndcg@10", "hr@10", "mrr")},
        "val_ndcg@10": m["val"]["ndcg@10"],
        "best_baseline": {"name": best_base[0], "ndcg@10": best_base[1]["ndcg@10"]},
        "users": st["preprocess"]["users"], "items": st["preprocess"]["items"],
        "steps": st["train"]["steps"], "best_step": st["train"]["best_step"], "stopped_early": st["train"]["stopped_early"],
        "train_s": round(st["train"]["seconds"], 1), "evaluate_s": round(st["evaluate"]["seconds"], 1),
        "auto": {k: v["value"] for k, v in auto.items()},
        "started": manifest.get("created"), "finished": True, "val_curve": curve,
    }


def measure(names: list[str], runs: Path, read_only: bool = False) -> dict:
    from guimo.device import cpu_info

    rows = {}
    for name in names:
        plain = run_one(name, "plain", runs, read_only)
        recipe = plain if DATA[name][0] is None else run_one(name, "recipe", runs, read_only)
        if not recipe["finished"] and name in REFERENCE:
            recipe = {**recipe, "test": {k: REFERENCE[name][k] for k in ("ndcg@10", "hr@10")}, "reference": REFERENCE[name]["source"],
                      "val_curve": REFERENCE[name]["val_curve"], "rerun_val_curve": recipe["val_curve"]}
        row = {"plain": plain, "recipe": recipe}
        if plain["finished"] and "test" in recipe:
            ratio = plain["test"]["ndcg@10"] / recipe["test"]["ndcg@10"]
            row.update(ratio=round(ratio, 4), met=ratio >= TARGET)
            print(f"{name}: plain {plain['test']['ndcg@10']:.4f} vs recipe {recipe['test']['ndcg@10']:.4f} = {ratio:.3f}")
        else:
            row.update(ratio=None, met=None)
            print(f"{name}: unfinished (plain at step {plain.get('steps_so_far', plain.get('steps'))})")
        rows[name] = row
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_info(), "threads": 1, "load_end": loadavg(),
        "command": "python bench/recommend_defaults.py --data " + " ".join(names),
        "target": f"plain test NDCG@10 >= {TARGET} x the recipe's", "data": rows,
    }


def loss_timing(sizes=(3_000, 10_000, 20_000, 54_542), reps: int = 5) -> dict:
    """Median seconds of one forward + backward + AdamW step, full vs sampled softmax, per catalogue size."""
    import numpy as np
    import torch

    from guimo.models.sasrec import SASRec, SASRecConfig

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    lengths = np.minimum(rng.geometric(1 / 6.0, size=512) + 1, 50)  # ~Beauty's training windows (mean ~6 targets)
    out = {}
    for n in sizes:
        seq = torch.zeros(512, int(lengths.max()), dtype=torch.long)
        for i, L in enumerate(lengths):
            seq[i, :L] = torch.from_numpy(rng.integers(1, n + 1, size=L))
        tgt = torch.roll(seq, -1, 1) * (seq > 0)
        tgt[:, -1] = 0
        freq = torch.bincount(tgt[tgt > 0], minlength=n + 1).float() / int((tgt > 0).sum())
        row = {}
        for loss in ("ce", "sampled"):
            torch.manual_seed(0)
            m = SASRec(SASRecConfig(n_items=n, loss=loss, in_batch_negatives=loss == "sampled", dropout=0.2))
            opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
            times = []
            for _ in range(reps + 1):
                t0 = time.perf_counter()
                opt.zero_grad()
                m(seq, tgt, freq).backward()
                opt.step()
                times.append(time.perf_counter() - t0)
            row[loss] = round(float(np.median(times[1:])), 4)
        row["ratio"] = round(row["ce"] / row["sampled"], 2)
        out[str(n)] = row
        print(f"{n:>6} items: full {row['ce']:.3f} s, sampled {row['sampled']:.3f} s, {row['ratio']:.2f}x")
    return {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "load": loadavg(), "steps": out,
            "setup": "SASRec 2 blocks x 64, 512 windows with geometric lengths (mean ~6 targets, Beauty-like), AdamW, 1 thread, median of 5 steps"}


def render(r: dict) -> str:
    cpu = r["cpu"]
    lines = [
        f"Command: `{r['command']}` — {r['date']} — {cpu['model']} ({', '.join(cpu['flags']) or 'no listed ISA flags'}; "
        f"kernels {cpu['capability']}), {r['threads']} thread per run, the shared machine's other jobs running "
        f"(load average per run below). Target: {r['target']}.",
        "",
        "Each data set runs two commands: **plain** `guimo run recommend --data FILE` with no other flag (the settings "
        "below are chosen from the data, `guimo/scenarios/recommend_defaults.py`) and **recipe** `guimo run recommend "
        "--config bench/<recipe>.toml`. The marketplace's recipe is its default config. Test = leave-one-out, full "
        "ranking, seen items filtered." + (f" {r['note']}" if r.get("note") else ""),
        "",
        "| data | users x items | plain NDCG@10 | recipe NDCG@10 | plain / recipe | plain HR@10 | best baseline | plain steps (best, early stop) | plain train |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | --- | ---: |",
    ]
    for name, d in r["data"].items():
        p, q = d["plain"], d["recipe"]
        if not p["finished"]:
            q_test = f"{q['test']['ndcg@10']:.4f}" if "test" in q else "unfinished"
            lines.append(f"| {name} | {p['users']:,} x {p['items']:,} | unfinished (step {p['steps_so_far']:,} of "
                         f"{p['auto'].get('train.max_steps', '?')}) | {q_test} | not measured | | | | |")
            continue
        bb = p["best_baseline"]
        lines.append(
            f"| {name} | {p['users']:,} x {p['items']:,} | **{p['test']['ndcg@10']:.4f}** | {q['test']['ndcg@10']:.4f} | "
            f"**{d['ratio']:.2f}** ({'met' if d['met'] else 'not met'}) | {p['test']['hr@10']:.4f} | {bb['name']} {bb['ndcg@10']:.4f} | "
            f"{p['steps']:,} ({p['best_step']:,}, {'yes' if p['stopped_early'] else 'no'}) | {p['train_s'] / 60:.1f} min"
            + (f" (load {p['load_start']} -> {p['load_end']})" if "load_start" in p else "") + " |")
    refs = [f"{n}: {d['recipe']['reference']}" for n, d in r["data"].items() if d["recipe"].get("reference")]
    if refs:
        lines += ["", "Recipe figures not re-run to the end here (the re-run was stopped for CPU): " + "; ".join(refs) + "."]
    lines += ["", "Validation NDCG@10 (the same validation users for both commands; best so far, and at the steps where both validated):", ""]
    for name, d in r["data"].items():
        if d["plain"] is d["recipe"]:
            continue
        plain, recipe = dict(map(tuple, d["plain"]["val_curve"])), dict(map(tuple, d["recipe"].get("val_curve", [])))
        best = lambda c: max(c.items(), key=lambda kv: kv[1]) if c else (0, float("nan"))  # noqa: E731
        (ps, pv), (rs, rv) = best(plain), best(recipe)
        both = sorted(set(plain) & set(recipe))
        lines.append(f"- {name}: best plain {pv:.4f} (step {ps:,} of {max(plain, default=0):,} run), best recipe {rv:.4f} (step {rs:,} of {max(recipe, default=0):,})"
                     + ("; " + ", ".join(f"step {s:,}: {plain[s]:.4f} / {recipe[s]:.4f}" for s in both) if both else ""))
    lines += ["", "Settings the plain command chose (`manifest.json` -> `stages.preprocess.auto_settings`, with the reason of each):", ""]
    for name, d in r["data"].items():
        auto = ", ".join(f"{k.split('.', 1)[1]}={v}" for k, v in d["plain"]["auto"].items())
        lines.append(f"- {name}: {auto or 'none'}")
    if "loss_timing" in r:
        t = r["loss_timing"]
        lines += ["", f"Loss cost by catalogue size ({t['setup']}; {t['date']}, load {t['load']}): "
                  + "; ".join(f"{int(n):,} items: full {v['ce']:.2f} s, sampled {v['sampled']:.2f} s ({v['ratio']:.1f}x)" for n, v in t["steps"].items())
                  + ". `auto.full_softmax_max_items` (20,000) keeps the exact full softmax while it costs at most a few times the sampled one."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", nargs="+", default=list(DATA), choices=list(DATA))
    ap.add_argument("--runs", default="runs/recommend_defaults", help="run folders (finished ones are read, not re-run)")
    ap.add_argument("--render", action="store_true", help="re-render the docs section from the results JSON")
    ap.add_argument("--loss-timing", action="store_true", help="time the full and sampled softmax steps and store them")
    ap.add_argument("--read-only", action="store_true", help="start no run: read the run folders as they are (unfinished ones too)")
    ap.add_argument("--note", default="", help="a line for the docs section (e.g. how busy the machine was)")
    args = ap.parse_args(argv)
    from guimo.io import atomic_write_json

    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if args.loss_timing:
        old["loss_timing"] = loss_timing()
        if "data" not in old:
            atomic_write_json(RESULTS, old)
            return 0
    if args.render:
        r = old
    else:
        r = measure(args.data, (ROOT / args.runs).resolve(), args.read_only)
        r["note"] = args.note
        if "loss_timing" in old:
            r["loss_timing"] = old["loss_timing"]
    atomic_write_json(RESULTS, r)
    write_section("recommend_defaults", render(r), heading="The plain command on your data vs the tuned recipes", doc=page("recommend"))
    print(f"wrote {RESULTS.relative_to(ROOT)} and docs/benchmarks/recommend.md")
    return 0 if all(d["met"] for d in r["data"].values()) else 1  # unfinished (None) counts as not met


if __name__ == "__main__":
    sys.exit(main())
