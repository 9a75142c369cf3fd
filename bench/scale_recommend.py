"""Business learning curve: NDCG@10 of the `recommend` scenario vs training data size, with the
saturating power law m(n) = a + b n^(-c), its 2x/4x predictions, and the check that the curve fitted
on <= 50% of the data predicts the full-data NDCG@10 within 10%.

    python bench/scale_recommend.py                     # synthetic marketplace: 750 .. 12,000 users
    python bench/scale_recommend.py --dataset beauty    # ../shared/data/seqrec/Beauty_bert4rec.txt, 1/16 .. all users
    python bench/scale_recommend.py --quick             # a 1-minute smoke run (nothing written to the docs)

Data size is the number of users (and so interactions): the marketplace generator draws more users
from the same distribution; for Beauty a deterministic subset of users is written per fraction.
Each point is a normal `recommend` run with the scenario's default model and training settings
(marketplace) or bench/recommend_beauty.toml (Beauty), except the number of steps: a learning curve
compares models trained to the same number of passes over their own data, so the steps scale with
the data, steps = max(min_steps, round(full_steps x scale)), with validation every steps/4 at most
and the best validation checkpoint scored on test (the scenario's early stopping). Defaults:
marketplace full_steps 1125 (12 epochs of 12,000 users at batch 128; the default run's validation
was still rising after 8.5 epochs) and min_steps 400 (the default run's length); Beauty the
recipe's max_steps and a quarter of it. The data size on the x axis is the preprocess stage's count of
training interactions. ``--seeds 2`` trains every scale twice (training seeds 0, 1; the data stay
the same) and the fit uses every run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from benchdoc import write_section  # noqa: E402  (bench/ is on sys.path when run as a script)

RESULTS = ROOT / "bench" / "results"
BEAUTY = ROOT.parent / "shared" / "data" / "seqrec" / "Beauty_bert4rec.txt"
TARGET_REL_ERROR = 0.10


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=["marketplace", "beauty"], default="marketplace")
    p.add_argument("--scales", default="0.0625,0.125,0.25,0.5,1", help="shares of the largest data size")
    p.add_argument("--users", type=int, default=12_000, help="marketplace: users at scale 1 (50 interactions each)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seeds", type=int, default=1, help="training seeds per scale (0, 1, ...)")
    p.add_argument("--seeds-up-to", type=float, default=1.0, help="train the seeds after the first only for scales <= this (the fitted half)")
    p.add_argument("--full-steps", type=int, default=None, help="training steps at scale 1 (default: marketplace 1125, Beauty the recipe's max_steps)")
    p.add_argument("--min-steps", type=int, default=None, help="floor on the steps of a small scale (default: marketplace 400, Beauty a quarter of the recipe's max_steps)")
    p.add_argument("--config", default=None, help="recipe TOML for every run (default: Beauty bench/recommend_beauty.toml, marketplace none)")
    p.add_argument("--render", action="store_true", help="only rewrite the docs section from bench/results")
    p.add_argument("--refit", action="store_true", help="refit the recorded runs of --dataset (no training) and update its record")
    p.add_argument("--bootstrap", type=int, default=200)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="config override for every run")
    p.add_argument("--out", help="folder of runs (default: runs/bench-scale-recommend-<dataset>)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-write", action="store_true", help="leave docs/BENCHMARKS.md alone")
    args = p.parse_args(argv)
    if args.render:
        write_section("scale_recommend", render_all())
        return 0
    if args.refit:
        return refit(args)

    import torch

    torch.set_num_threads(args.threads)
    from guimo.scale.report import build_report

    scales = [float(s) for s in args.scales.split(",")]
    overrides = list(args.overrides)
    if args.quick:
        args.users, args.bootstrap = 1600, 20
        overrides = QUICK_OVERRIDES + overrides
    out = Path(args.out or ROOT / "runs" / f"bench-scale-recommend-{args.dataset}{'-quick' if args.quick else ''}")
    if args.config is None and args.dataset == "beauty":
        args.config = str(ROOT / "bench" / "recommend_beauty.toml")
    recipe = recipe_train(args.config)
    if args.full_steps is None:
        args.full_steps = recipe.max_steps if args.dataset == "beauty" else (60 if args.quick else 1125)
    if args.min_steps is None:
        args.min_steps = max(1, recipe.max_steps // 4) if args.dataset == "beauty" else (30 if args.quick else 400)
    args.started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    args.steps = {}
    for seed in range(args.seeds):  # every scale once before any second seed: a cut-short run still has a whole curve
        for s in scales:
            if args.dataset == "marketplace":
                users = max(50, int(round(args.users * s)))
                data = [f"data.generator.users={users}", f"data.generator.interactions={50 * users if not args.quick else 20 * users}"]
            else:
                data = [f"data.path={beauty_subset(out / 'data', s)}"]
            steps = max(args.min_steps, round(args.full_steps * s))
            args.steps[f"{s:g}"] = steps
            if seed and s > args.seeds_up_to:
                continue
            name = f"scale-{s:g}" + (f"-s{seed}" if seed else "")
            print(f"{dt.datetime.now(dt.timezone.utc):%H:%M:%S} {name}: {steps} steps", flush=True)
            run_point(out / "runs" / name, data + steps_overrides(steps, recipe) + [f"seed={seed}"] + overrides, args.config)
    args.load = [round(x, 2) for x in (*load_before, *os.getloadavg())]
    result = build_report(out, metric="ndcg@10", n_bootstrap=args.bootstrap)
    summary = summarise(result, args, time.perf_counter() - t0, out)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"scale_recommend_{args.dataset}{'_quick' if args.quick else ''}.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    if not args.quick and not args.no_write:
        write_section("scale_recommend", render_all())
    return 0


# a marketplace small enough for a smoke run: 500 items, 20 interactions per user, 60 steps
QUICK_OVERRIDES = ["data.generator.chain_groups=50", "data.generator.items=500", "data.generator.categories=20",
                   "train.max_steps=60", "train.eval_every=30", "train.checkpoint_every=30", "train.batch_size=64",
                   "eval.sampled=0", "eval.val_cases=500"]


def refit(args) -> int:
    """Recompute the fit and its checks from the runs of a recorded sweep; the training facts stay as recorded."""
    from guimo.scale.report import build_report

    path = RESULTS / f"scale_recommend_{args.dataset}.json"
    old = json.loads(path.read_text())
    out = Path(old["report"]).parents[1]
    result = build_report(out, metric="ndcg@10", n_bootstrap=args.bootstrap)
    curve, check = result.get("curve", {}), result.get("curve_check", {})
    old.update({"curve": {k: curve.get(k) for k in ("a", "b", "c")}, "predicted_2x": curve.get("predicted_2x"), "predicted_4x": curve.get("predicted_4x"),
                "half_data_check": check, "target_met": bool(check) and check["relative_error"] <= TARGET_REL_ERROR,
                "refitted": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")})
    path.write_text(json.dumps(old, indent=2) + "\n")
    print(json.dumps(check, indent=2))
    if not args.no_write:
        write_section("scale_recommend", render_all())
    return 0


def recipe_train(config: str | None):
    """The train section every run starts from: the scenario default or the recipe TOML's."""
    return base_config(config).train


def base_config(config: str | None):
    from guimo.scenarios.recommend import SCENARIO

    if config is None:
        return SCENARIO.config_cls()
    from guimo.config import load_file, merge

    return merge(SCENARIO.config_cls(), load_file(config), SCENARIO.presets)


def steps_overrides(steps: int, recipe) -> list[str]:
    """Train for ``steps``: validation (and checkpoints) at least 4 times, warm-up at most a tenth."""
    every = max(10, min(recipe.eval_every or steps, steps // 4))
    warmup = max(1, min(recipe.warmup_steps, steps // 10))
    return [f"train.max_steps={steps}", f"train.eval_every={every}", f"train.checkpoint_every={every}", f"train.warmup_steps={warmup}"]


def run_point(run_dir: Path, overrides: list[str], config: str | None = None) -> None:
    """One `recommend` run (resumed if it exists)."""
    from guimo.config import apply_overrides
    from guimo.pipeline.runner import run_pipeline
    from guimo.scenarios.recommend import SCENARIO

    cfg = apply_overrides(base_config(config), overrides, SCENARIO.presets)
    run_pipeline("recommend", cfg, run_dir, quiet=True)


def beauty_subset(folder: Path, share: float) -> Path:
    """Beauty restricted to a deterministic share of users (by a hash of the user id)."""
    if not BEAUTY.exists():
        sys.exit(f"{BEAUTY} not found (the shared datasets live beside the project as ../shared/data)")
    out = folder / f"beauty-{share:g}.txt"
    if out.exists():
        return out
    folder.mkdir(parents=True, exist_ok=True)
    keep = []
    for line in BEAUTY.read_text(encoding="utf-8").splitlines():
        user = line.split(maxsplit=1)[0] if line.strip() else ""
        if user and int(hashlib.sha256(user.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < share:
            keep.append(line)
    out.write_text("\n".join(keep) + "\n", encoding="utf-8")
    return out


def summarise(result: dict, args, seconds: float, out: Path) -> dict:
    curve, check = result.get("curve", {}), result.get("curve_check", {})
    pts = sorted(result["points"], key=lambda p: p["unique"] or 0)
    return {
        "dataset": args.dataset,
        "command": "python bench/scale_recommend.py " + " ".join(sys.argv[1:]),
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {args.threads} torch threads",
        "started_utc": getattr(args, "started", None),
        "load_avg_1_5_15_start_end": getattr(args, "load", None),
        "threads": args.threads, "seeds": args.seeds, "seeds_up_to": args.seeds_up_to, "config": args.config, "steps_by_scale": getattr(args, "steps", None),
        "minutes": round(seconds / 60, 1),
        "points": [{"run": Path(p["run"]).name, "train_interactions": p["unique"], "ndcg@10": round(p["value"], 4), "seed": p["seed"],
                    "test_cases": p.get("cases"), **_run_facts(Path(p["run"])),
                    **{b: round(v, 4) for b, v in p["baselines"].items()}} for p in pts],
        "curve": {k: curve.get(k) for k in ("a", "b", "c")},
        "predicted_2x": curve.get("predicted_2x"), "predicted_4x": curve.get("predicted_4x"),
        "half_data_check": check,
        "target_met": bool(check) and check["relative_error"] <= TARGET_REL_ERROR,
        "report": str(out / "scale" / "report.md"),
    }


def _run_facts(run: Path) -> dict:
    """Catalogue size (the ranking is over it, so it matters for NDCG) and training length of a run."""
    m = json.loads((run / "manifest.json").read_text())
    pre, train = m["stages"].get("preprocess", {}), m["stages"].get("train", {})
    return {"items": pre.get("items"), "users": pre.get("users"), "steps": train.get("steps"), "best_step": train.get("best_step")}


def render_all() -> str:
    rows, notes = [], []
    for f in sorted(RESULTS.glob("scale_recommend_*.json")):
        if f.stem.endswith("_quick"):
            continue
        s = json.loads(f.read_text())
        pts = s["points"]
        chk = s["half_data_check"]
        curve = "; ".join(f"{p['train_interactions']:,.0f}" + (f" ({p['users']:,} users, {p['items']:,} items, best step {p['best_step']}/{p['steps']})" if p.get("items") else "")
                          + f": {p['ndcg@10']}" for p in pts)
        pred = (f"{chk['predicted']:.4f} vs {chk['actual']:.4f} ({chk['relative_error']:.1%}; {chk['n_fitted']} runs fitted, "
                f"inside 95% band: {chk.get('inside_band')}"
                + (f"; inside 95% prediction interval [{chk['interval'][0]:.4f}, {chk['interval'][1]:.4f}]: {chk['inside_interval']}" if chk.get("interval") else "")
                + (f"; noise alone: median {nf['median']:.1%}, p90 {nf['p90']:.1%}, observed at the {nf['observed_percentile']:.0f}th percentile"
                   if (nf := chk.get("noise_floor")) else "")
                + ")" if chk else "not enough points")
        load = s.get("load_avg_1_5_15_start_end")
        when = f"{s.get('started_utc') or s['date']}" + (f", load {load[0]:.1f} -> {load[3]:.1f}" if load else "")
        seeds = s.get("seeds", 1)
        seeds = f"{seeds} seeds" + (f" at scales <= {s['seeds_up_to']:g} (1 above)" if seeds > 1 and s.get("seeds_up_to", 1) < 1 else "")
        method = f"{seeds}, steps {s.get('steps_by_scale') or 'default'}, {s.get('threads', '?')} thread(s)"
        rows.append(f"| {s['dataset']} | {when} | {method} | {s['minutes']} | {curve} | a={s['curve']['a']:.4f}, c={s['curve']['c']:.3f}; "
                    f"4x data: {s['predicted_4x']['value']:.4f} | {pred} | {'met' if s['target_met'] else 'NOT met'} |")
        if s.get("note"):
            notes.append(f"- {s['dataset']}: {s['note']}")
    head = ("Command: `python bench/scale_recommend.py [--dataset marketplace|beauty] --threads 1 --seeds 2` (marketplace: the default "
            "recommend model; Beauty: bench/recommend_beauty.toml; steps = max(min_steps, full_steps x scale), best validation "
            "checkpoint scored on test; data size = training interactions; x86_64, OMP_NUM_THREADS=1). Fit m(n) = a + b n^(-c) by "
            "least squares weighted by each run's number of test cases (inverse variance), every seed a point; target: fitted on "
            f"the runs with <= 50% of the data, predict the full-data NDCG@10 (mean over seeds) within {TARGET_REL_ERROR:.0%}.\n\n"
            "| data | started (UTC), load avg | method | minutes | test NDCG@10 by training interactions (one entry per run) | fit (all runs) "
            "| half-data prediction of full-data NDCG@10 | target |\n"
            "| --- | --- | --- | ---: | --- | --- | --- | --- |\n")
    return head + ("\n".join(rows) if rows else "(no full run recorded yet)") + ("\n\n" + "\n".join(notes) if notes else "")


if __name__ == "__main__":
    sys.exit(main())
