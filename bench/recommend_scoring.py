"""Catalogue scoring precision of a recommend run: fp32 vs bf16 (`model.score_precision`), speed and quality.

    python bench/recommend_scoring.py RUN [--threads 1] [--rounds 7]

Speed: `guimo.inference.recommend.top_k` (what the server and `guimo recommend` call) on batches of 1, 8
and 64 histories of 10 items, both precisions interleaved, median ms per batch. Quality: the run's test
split scored both ways with the evaluate stage's own ranking (full catalogue, seen items filtered):
NDCG@10, HR@10, and how many of the top-10 items change. Writes the `recommend_scoring` section of
docs/benchmarks/device.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
from benchdoc import page, write_section  # noqa: E402  (bench/ is on sys.path when run as a script)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--baseline", metavar="DIR", help="also time another checkout's top_k (its guimo/inference/recommend.py) at batch 64, interleaved")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from guimo import scenarios
    from guimo.config import from_dict
    from guimo.device import cpu_info
    from guimo.inference.recommend import top_k
    from guimo.pipeline.rundir import RunDir
    from guimo.scenarios.recommend import load_data, rank_model

    run = RunDir.open(args.run)
    scenario = scenarios.get("recommend")
    model = scenario.load_predictor(run).model
    cfg = from_dict(scenario.config_cls, run.config)
    prep = load_data(run)
    n = model.cfg.n_items
    rng = np.random.default_rng(0)
    histories = [rng.integers(1, n + 1, size=10) for _ in range(64)]

    rows = ["| batch | fp32 ms | bf16 ms | fp32 / bf16 |", "| ---: | ---: | ---: | ---: |"]
    for b in (1, 8, 64):
        times: dict[str, list[float]] = {"fp32": [], "bf16": []}
        for _ in range(args.rounds):
            for precision in times:
                model.cfg.score_precision = precision
                top_k(model, histories[:b], 10)  # warm (and the bf16 table built once)
                t0 = time.perf_counter()
                for _ in range(5):
                    top_k(model, histories[:b], 10)
                times[precision].append((time.perf_counter() - t0) / 5 * 1e3)
        f, h = statistics.median(times["fp32"]), statistics.median(times["bf16"])
        rows.append(f"| {b} | {f:.2f} | {h:.2f} | {f / h:.2f}x |")
        print(rows[-1], flush=True)

    ab = ""
    if args.baseline:  # the same model and histories through the other checkout's top_k
        import importlib.util

        src = Path(args.baseline) / "guimo" / "inference" / "recommend.py"
        spec = importlib.util.spec_from_file_location("baseline_recommend", src)
        base = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(base)
        abrows = ["| precision | baseline ms | now ms | baseline / now | same top-10 |", "| --- | ---: | ---: | ---: | --- |"]
        for precision in ("fp32", "bf16"):
            model.cfg.score_precision = precision
            got: dict[str, list[float]] = {"baseline": [], "now": []}
            for r in range(args.rounds * 2):
                pair = [("baseline", base.top_k), ("now", top_k)]
                for name, fn in (pair if r % 2 == 0 else pair[::-1]):
                    fn(model, histories, 10)
                    t0 = time.perf_counter()
                    for _ in range(5):
                        fn(model, histories, 10)
                    got[name].append((time.perf_counter() - t0) / 5 * 1e3)
            b, w = statistics.median(got["baseline"]), statistics.median(got["now"])
            same = all(torch.equal(x, y) for x, y in zip(base.top_k(model, histories, 10), top_k(model, histories, 10)))
            abrows.append(f"| {precision} | {b:.2f} | {w:.2f} | {b / w:.2f}x | {'yes' if same else 'NO'} |")
            print(abrows[-1], flush=True)
        import subprocess

        rev = subprocess.run(["git", "-C", args.baseline, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip() or "?"
        ab = (f"\n\n`top_k` at batch 64 against another checkout's (`--baseline`, commit {rev}), interleaved, median of {args.rounds * 2} "
              "rounds:\n\n" + "\n".join(abrows))

    test_h, test_t = prep.cases("test")
    cpu = cpu_info()
    quality, tops = {}, {}
    for precision in ("fp32", "bf16"):
        model.cfg.score_precision = precision
        quality[precision] = rank_model(model, test_h, test_t, prep.n_items, cfg.eval, sampled=False, seed=cfg.seed)["full"]
        tops[precision] = top_k(model, [np.asarray(h) for h in test_h[:5000]], 10)[0]
    changed = float((tops["fp32"].unsqueeze(2) != tops["bf16"].unsqueeze(1)).all(2).float().mean())
    qrows = ["| precision | test NDCG@10 | test HR@10 |", "| --- | ---: | ---: |"]
    for precision, q in quality.items():
        qrows.append(f"| {precision} | {q['ndcg@10']:.4f} | {q['hit@10'] if 'hit@10' in q else q.get('hr@10', float('nan')):.4f} |")
        print(qrows[-1])
    print(f"top-10 items that change: {changed:.2%} (first {min(5000, len(test_h))} test users)")
    body = (f"Command: `python bench/recommend_scoring.py {args.run} --threads {args.threads} --rounds {args.rounds}` ({dt.date.today()}, "
            f"CPU {cpu['model']} ({' '.join(cpu['flags']) or 'no avx2/avx512/amx flags'}), {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, {args.threads} torch thread(s); "
            f"the run: data {run.config['data'].get('path') or 'the synthetic marketplace'}, {n:,} items, SASRec {model.cfg.n_blocks} x "
            f"{model.cfg.d_model}, {run.manifest['stages']['train'].get('steps')} steps, git {run.manifest.get('environment', {}).get('git_revision', '?')[:7]}). Speed: `top_k` (encode, score the catalogue, mask seen items, top 10) on random "
            f"10-item histories, median of {args.rounds} interleaved rounds. The bf16 table is converted once and kept while the weights "
            "stay put, so a batch of 1 does not pay for it.\n\n" + "\n".join(rows)
            + f"\n\nQuality on the run's test split ({len(test_h):,} users, full catalogue, seen items filtered); "
            f"{changed:.2%} of the top-10 items change between the two precisions (first {min(5000, len(test_h)):,} users):\n\n" + "\n".join(qrows)
            + ab)
    if not args.no_write:
        write_section("recommend_scoring", body, heading="Recommender: catalogue scoring in bf16 (`bench/recommend_scoring.py`)", doc=page("device"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
