"""bf16 autocast against fp32 on this CPU: the product's training steps and its catalogue scoring.

    python bench/device_bf16.py [--rounds 3] [--lm-steps 150] [--rec-steps 150] [--beauty-steps 8] [--threads 1]
    python bench/device_bf16.py --render bench/results/device_bf16.json   # only rewrite the docs section

What `precision=auto` should pick on a CPU depends on these figures (guimo.device.CPU_BF16_EVIDENCE). Each
workload is what `guimo run` trains, through bench/product.py (the scenario's data stages, model, dataset,
loss and validation metric, ``guimo.train.loop.fit``):

- LM: `guimo run lm --set model=tiny` (the stdlib corpus);
- recommender, default: `guimo run recommend` (the synthetic marketplace);
- recommender, Beauty: `guimo run recommend --config bench/recommend_beauty.toml --data Beauty` (54,542 items,
  where the full softmax dominates a step), skipped when ../shared/data is absent;
- catalogue scoring: `guimo.inference.recommend.top_k` (what the server calls) at batch 64 with the Beauty
  model, ``model.score_precision`` fp32 against bf16.

Speed: fp32 and bf16 train the same steps from the same initial weights and seed, in interleaved rounds
(fp32 bf16, bf16 fp32, ...); a step's time is the median gap between the loop's progress calls after 3 warm-up
steps; the figure is the median over rounds. Quality: the validation metric of the first round's two runs, at
equal steps. Writes bench/results/device_bf16.json and the `device_bf16` section of docs/benchmarks/device.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchdoc import page, write_section  # noqa: E402  (bench/ is on sys.path when run as a script)
from product import prepare  # noqa: E402

BEAUTY = ROOT.parent / "shared" / "data" / "seqrec" / "Beauty_bert4rec.txt"
RESULT = ROOT / "bench" / "results" / "device_bf16.json"
# "Equal quality": bf16's validation metric within this relative distance of fp32's at the same step. Not
# calibrated against seed noise: the LM's loss is smooth (1%); NDCG@10 on a few thousand validation users moves
# by a few percent between seeds, so 5% there.
TOLERANCE = {"loss": 0.01, "ndcg@10": 0.05}


def speed(times: dict[str, list[float]]) -> dict:
    """Medians of each precision's times (seconds, in round order) and the bf16 speed-up: the median of each round's
    own fp32/bf16 ratio, as the two ran back to back under the same load (the load here moves several-fold
    between rounds, so a ratio of medians across rounds would mix unlike moments)."""
    ratios = [f / b for f, b in zip(times["fp32"], times["bf16"])]
    return {"fp32_ms": statistics.median(times["fp32"]) * 1e3, "bf16_ms": statistics.median(times["bf16"]) * 1e3,
            "bf16_speedup": statistics.median(ratios), "bf16_speedup_each": ratios,
            "fp32_ms_each": [t * 1e3 for t in times["fp32"]], "bf16_ms_each": [t * 1e3 for t in times["bf16"]]}


def training_workload(key: str, what: str, prep, steps: int, rounds: int, tmp: Path, quality: bool = True) -> tuple[dict, object]:
    """Interleaved fp32/bf16 trainings of ``steps`` steps; returns the record and the fp32-trained model.

    ``quality=False``: speed only (a workload too slow here to train far enough for its metric to mean much)."""
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    metric: dict[str, float] = {}
    fp32_model = None
    for r in range(rounds):
        for precision in (("fp32", "bf16") if r % 2 == 0 else ("bf16", "fp32")):
            result, model, step_s = prep.train(steps, tmp / f"{key}-{precision}-{r}", precision=precision, evaluate=quality and r == 0)
            assert result.precision == precision, (result.precision, precision)
            times[precision].append(step_s)
            if r == 0:
                if quality:
                    metric[precision] = float(result.best_metric)
                fp32_model = model if precision == "fp32" else fp32_model
            print(f"{key} round {r} {precision}: {step_s * 1e3:.1f} ms/step", flush=True)
    record = {
        "key": key, "what": what, "steps": steps, "rounds": rounds, "batch_size": prep.cfg.train.batch_size, **speed(times),
        "metric": prep.inputs.metric, "quality": f"not compared (speed only, {steps} steps)", "equal_quality": None,
    }
    if quality:
        name, tol = prep.inputs.metric, TOLERANCE.get(prep.inputs.metric, 0.05)
        rel = (metric["bf16"] - metric["fp32"]) / abs(metric["fp32"])
        record.update(fp32_metric=metric["fp32"], bf16_metric=metric["bf16"], relative_change=rel, tolerance=tol,
                      equal_quality=abs(rel) <= tol,
                      quality=f"val {name} {rel:+.2%} at step {steps} ({'equal' if abs(rel) <= tol else 'NOT equal'}, tolerance {tol:.0%})")
    return record, fp32_model


def scoring_workload(model, n_items: int, rounds: int) -> dict:
    """``top_k`` at batch 64 over the whole catalogue, fp32 against bf16 scoring, interleaved."""
    import numpy as np

    from guimo.inference.recommend import top_k

    rng = np.random.default_rng(0)
    histories = [rng.integers(1, n_items + 1, size=10) for _ in range(64)]
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    tops = {}
    for r in range(rounds * 3):
        for precision in (("fp32", "bf16") if r % 2 == 0 else ("bf16", "fp32")):
            model.cfg.score_precision = precision
            tops[precision] = top_k(model, histories, 10)[0]  # warm (the bf16 table is built once)
            t0 = time.perf_counter()
            for _ in range(5):
                top_k(model, histories, 10)
            times[precision].append((time.perf_counter() - t0) / 5)
    model.cfg.score_precision = "fp32"
    changed = float((tops["fp32"].unsqueeze(2) != tops["bf16"].unsqueeze(1)).all(2).float().mean())
    return {"key": "scoring", "what": f"catalogue scoring, top-10 of {n_items:,} items, batch 64", "rounds": rounds * 3,
            **speed(times), "top10_changed": changed,
            "quality": (f"{changed:.1%} of top-10 items change with this barely trained model (near-tied scores); "
                        "1.3% with a trained one, NDCG@10 -0.3% (bench/recommend_scoring.py)")}


def markdown(r: dict) -> str:
    cpu = r["cpu"]
    head = (f"Command: `{r['command']}` — {r['date']} — CPU {cpu['model']}, {cpu['cores']} cores, flags "
            f"{' '.join(cpu['flags']) or 'none'}, torch kernels {cpu['capability']}; {r['threads']} torch thread(s); torch "
            f"{r['torch']}; 1-minute load average {min(r['load_avg_1min']):.1f}-{max(r['load_avg_1min']):.1f} on the shared cores.")
    rows = ["| workload | fp32 ms | bf16 ms | bf16 speed-up (rounds) | quality at equal steps |", "| --- | ---: | ---: | ---: | --- |"]
    for w in r["workloads"]:
        unit = "per step" if "steps" in w else "per batch"
        each = w.get("bf16_speedup_each")
        spread = f" ({min(each):.2f}-{max(each):.2f})" if each else ""
        rows.append(f"| {w['what']} ({unit}) | {w['fp32_ms']:.1f} | {w['bf16_ms']:.1f} | {w['bf16_speedup']:.2f}x{spread} | {w['quality']} |")
    trainings = [w for w in r["workloads"] if "steps" in w]
    detail = "; ".join(f"{w['key']}: {w['steps']} steps of batch {w['batch_size']}"
                       + (f", val {w['metric']} fp32 {w['fp32_metric']:.4f}, bf16 {w['bf16_metric']:.4f}" if "fp32_metric" in w else "")
                       for w in trainings)
    low = min((w["bf16_speedup"] for w in trainings), default=float("nan"))
    verdict = (f"Speed-up: fp32 time / bf16 time of the two runs of one round (back to back, same load), median over the "
               f"rounds, range in brackets. The slowest training step runs at {low:.2f}x fp32's speed in bf16 on this CPU; "
               "the rule for `precision=auto` asks >= 1.5x at equal quality, on a CPU with AMX (above).")
    return "\n".join([head, "", *rows, "", f"Steps and quality: {detail}.", "", verdict])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3, help="interleaved fp32/bf16 rounds per workload")
    p.add_argument("--lm-steps", type=int, default=150)
    p.add_argument("--rec-steps", type=int, default=150)
    p.add_argument("--beauty-steps", type=int, default=8, help="speed only (a step takes seconds here); 0: skip the Beauty workloads")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-write", action="store_true", help="print only; leave bench/results and the docs alone")
    p.add_argument("--render", metavar="JSON", help="only rewrite the docs section from a saved result")
    args = p.parse_args(argv)
    if args.render:
        write_section("device_bf16", markdown(json.loads(Path(args.render).read_text())), heading=HEADING, doc=page("device"))
        return 0
    import torch

    from guimo.device import cpu_info

    torch.set_num_threads(args.threads)
    command = "python bench/device_bf16.py " + " ".join(argv if argv is not None else sys.argv[1:])
    load = [os.getloadavg()[0]]
    workloads = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        plans = [("lm", "LM training step, `model=tiny`", "lm", ["model=tiny"], None, None, args.lm_steps),
                 ("recommend", "recommender training step, default (marketplace)", "recommend", [], None, None, args.rec_steps)]
        if args.beauty_steps and BEAUTY.exists():
            plans.append(("beauty", "recommender training step, Beauty recipe (54k items)", "recommend", [], str(BEAUTY),
                          str(ROOT / "bench" / "recommend_beauty.toml"), args.beauty_steps))
        for key, what, scenario, overrides, data, config, steps in plans:
            # on the CPU even where a GPU is visible (an AMX host of a GPU machine is where this needs to run)
            prep = prepare(scenario, [*overrides, "train.device=cpu"], tmp / f"run-{key}", data=data, config_file=config)
            record, model = training_workload(key, what, prep, steps, args.rounds, tmp, quality=key != "beauty")
            workloads.append(record)
            load.append(os.getloadavg()[0])
            if key == "beauty":
                workloads.append(scoring_workload(model, model.cfg.n_items, args.rounds))
                load.append(os.getloadavg()[0])
    result = {"command": command.strip(), "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "cpu": cpu_info(), "threads": args.threads, "torch": torch.__version__, "python": platform.python_version(),
              "load_avg_1min": load, "workloads": workloads}
    print(json.dumps(result, indent=2))
    if not args.no_write:
        sys.path.insert(0, str(ROOT))
        from guimo.io import atomic_write_json

        atomic_write_json(RESULT, result)
        write_section("device_bf16", markdown(result), heading=HEADING, doc=page("device"))
    return 0


HEADING = "bf16 against fp32 on this CPU (`bench/device_bf16.py`)"

if __name__ == "__main__":
    sys.exit(main())
