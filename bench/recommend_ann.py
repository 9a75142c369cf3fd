"""Approximate top-k for `recommend` at large catalogues: the item vector index against exact scoring.

    python bench/recommend_ann.py RUN [--threads 1] [--rounds 5] [--ef 256,512,1024] [--scales 1,3]
    python bench/recommend_ann.py --render      # re-render the doc section from bench/results/recommend_ann.json

RUN is a finished recommend run (Beauty: `bench/recommend_beauty.sh`, or `guimo run recommend --data
../shared/data/seqrec/Beauty_bert4rec.txt`). Issue #23's target: recall@10 >= 0.99 against exact scoring and
>= 5x the batched throughput of today's exact path, with test NDCG@10 unchanged to 3 decimals.

Measured, all through the code `guimo recommend` and the server call (`guimo.inference.recommend`):
- build: the HNSW index over the item vectors (``ItemIndex``: DenseIndex, MIPS -> L2), its save into the run's
  cache and the cached load (what a second server start pays);
- quality per ``ef_search``: recall@10 of the index's top-10 against the exact top-10 (seen items excluded
  both ways) and test NDCG@10 / HR@10 of both, over the run's whole test split;
- speed: rows/s of ``top_k`` (exact) and ``ann_top_k`` at batches 1, 8 and 64 (the server's max_batch), on
  10-item random histories (the serve bench's requests) and on real test histories; contenders interleaved
  round by round, medians;
- for reference, a FAISS 4-bit PQ fast-scan brute force + exact rescoring of its candidates (not a DenseIndex
  kind: what a quantised scan would give on the same rows);
- ``--scales``: the catalogue replicated s times (item vectors copied with 10% noise, the model otherwise the
  same) to find where the index starts to pay (the auto threshold, ``serve.min_items``).
Writes bench/results/recommend_ann.json and the `recommend-ann` section of docs/benchmarks/recommend.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
from benchdoc import page, write_section  # noqa: E402  (bench/ is on sys.path when run as a script)

RESULTS = ROOT / "bench" / "results" / "recommend_ann.json"
BATCHES = (1, 8, 64)


def timed(fn, reps: int) -> float:
    """Median seconds of ``fn()`` over ``reps`` calls, after one warm call."""
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved(contenders: dict, rows: int, rounds: int, reps: int) -> dict[str, float]:
    """Median rows/s of each contender, the order alternating round by round (A B, B A, ...)."""
    got: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            got[name].append(rows / timed(contenders[name], reps))
    return {name: statistics.median(v) for name, v in got.items()}


def top10_quality(ids, histories, targets) -> tuple[float, float]:
    """NDCG@10 and HR@10 of top-10 lists (B, >=10) against one target per row (the evaluate stage's formula)."""
    ids = np.asarray(ids)[:, :10]
    hit = ids == np.asarray(targets)[:, None]
    rank = np.where(hit.any(1), hit.argmax(1), -1)
    ndcg = np.where(rank >= 0, 1.0 / np.log2(np.maximum(rank, 0) + 2.0), 0.0)
    return float(ndcg.mean()), float((rank >= 0).mean())


def recall_at_10(a, b) -> float:
    a, b = np.asarray(a)[:, :10], np.asarray(b)[:, :10]
    return float(np.mean([len(set(x) & set(y)) / 10 for x, y in zip(a.tolist(), b.tolist())]))


def batched(fn, histories, k: int = 10, chunk: int = 1024):
    ids = [fn(histories[s : s + chunk], k)[0] for s in range(0, len(histories), chunk)]
    return np.concatenate([i.numpy() for i in ids])


def fastscan_index(item_index_cls, vectors: np.ndarray, settings):
    """A bench-only ``ItemIndex`` whose candidates come from a FAISS PQ 4-bit fast-scan brute force."""
    import faiss

    class FastScan(item_index_cls):
        def __init__(self) -> None:
            self.vectors, self.settings, self.key, self.build_s = vectors, settings, "fastscan", 0.0
            self.radius = 0.0
            self.k_factor = 4
            t0 = time.perf_counter()
            base = faiss.index_factory(vectors.shape[1], f"PQ{vectors.shape[1] // 2}x4fs", faiss.METRIC_INNER_PRODUCT)
            base.train(vectors[1:])
            self.index = faiss.IndexRefineFlat(base)
            self.index.add(vectors[1:])
            self.build_s = time.perf_counter() - t0

        def candidates(self, states, fetch):
            self.index.k_factor = self.k_factor
            _, labels = self.index.search(np.ascontiguousarray(states), max(fetch, 60))
            return [row[row >= 0] + 1 for row in labels]

    return FastScan()


def scaled_model(model, s: int, seed: int = 0):
    """The same SASRec over a catalogue s times larger: item vectors copied with 10% Gaussian noise."""
    import torch

    from guimo.models.sasrec import SASRec

    if s == 1:
        return model
    cfg = dataclasses.replace(model.cfg, n_items=model.cfg.n_items * s, item_categories=[], n_categories=0)
    big = SASRec(cfg).eval()
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("core.tok_emb")}
    big.load_state_dict(state, strict=False)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        w = model.core.tok_emb.weight
        copies = [w[1:] * (1 + 0.1 * torch.randn(w[1:].shape, generator=g)) for _ in range(s - 1)]
        big.core.tok_emb.weight.copy_(torch.cat([w] + copies))
    return big


def measure(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    from guimo.device import cpu_info
    from guimo.inference.recommend import AnnSettings, ItemIndex, RecPredictor, ann_top_k, load_item_index, top_k
    from guimo.pipeline.rundir import RunDir
    from guimo.scenarios.recommend import load_data

    run = RunDir.open(args.run)
    exact = RecPredictor.from_run(run, topk="exact")
    model = exact.model
    n = model.cfg.n_items
    prep = load_data(run)
    test_h, test_t = prep.cases("test")
    test_h = [np.asarray(h) for h in test_h]
    rng = np.random.default_rng(0)
    rand10 = [rng.integers(1, n + 1, size=10) for _ in range(64)]
    real64 = [test_h[i] for i in rng.choice(len(test_h), 64, replace=False)]
    base = AnnSettings(topk="ann", m=args.m, ef_construction=args.ef_construction, ef_search=args.ef[0], cache=True)
    load0 = os.getloadavg()
    out: dict = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="minutes"), "cpu": cpu_info(),
                 "cores": os.cpu_count(), "threads": args.threads, "run": str(args.run), "items": n,
                 "model": f"SASRec {model.cfg.n_blocks} x {model.cfg.d_model}", "test_cases": len(test_h),
                 "metrics_json_ndcg10": (run.path / "metrics.json").exists()
                 and json.loads((run.path / "metrics.json").read_text())["model"]["ndcg@10"],
                 "hnsw": {"m": args.m, "ef_construction": args.ef_construction}, "rounds": args.rounds}
    # build, save into a cache, read it back (a second server start)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        index, _ = load_item_index(model, base, Path(tmp))
        build_and_save = time.perf_counter() - t0
        t0 = time.perf_counter()
        cached, source = load_item_index(model, base, Path(tmp))
        out["build"] = {"build_s": round(index.build_s, 2), "build_and_save_s": round(build_and_save, 2),
                        "cached_load_s": round(time.perf_counter() - t0, 2), "cached_source": source.split(" from")[0],
                        "cache_mb": round(sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file()) / 2**20, 1)}
    print("build", out["build"], flush=True)

    def ann_fn(idx):
        return lambda hs, k: ann_top_k(model, idx, hs, k, True)

    def exact_fn(hs, k):
        return top_k(model, hs, k, True)

    t0 = time.perf_counter()
    ex_ids = batched(exact_fn, test_h)
    exact_s = time.perf_counter() - t0
    ndcg, hr = top10_quality(ex_ids, test_h, test_t)
    out["exact"] = {"ndcg@10": ndcg, "hr@10": hr, "all_test_s": round(exact_s, 1)}
    print("exact", out["exact"], flush=True)
    out["ef"] = []
    for ef in args.ef:
        index.index.hnsw = dataclasses.replace(index.index.hnsw, ef_search=ef)
        index.settings = dataclasses.replace(index.settings, ef_search=ef)
        t0 = time.perf_counter()
        ids = batched(ann_fn(index), test_h)
        secs = time.perf_counter() - t0
        ndcg, hr = top10_quality(ids, test_h, test_t)
        row = {"ef_search": ef, "recall@10": recall_at_10(ids, ex_ids), "ndcg@10": ndcg, "hr@10": hr, "all_test_s": round(secs, 1)}
        out["ef"].append(row)
        print(row, flush=True)
    fast = fastscan_index(ItemIndex, index.vectors, base)
    ids = batched(ann_fn(fast), test_h)
    ndcg, hr = top10_quality(ids, test_h, test_t)
    out["fastscan"] = {"what": f"PQ{model.cfg.d_model // 2}x4fs + exact rescoring, k_factor {fast.k_factor}, at least 60 fetched",
                       "recall@10": recall_at_10(ids, ex_ids), "ndcg@10": ndcg, "hr@10": hr, "build_s": round(fast.build_s, 2)}
    print("fastscan", out["fastscan"], flush=True)

    # speed: exact vs the index at --speed-ef and at the smallest ef_search that reached recall@10 0.99 (else the largest)
    reached = [row["ef_search"] for row in out["ef"] if row["recall@10"] >= 0.99]
    out["speed_efs"] = sorted({args.speed_ef, min(reached) if reached else max(args.ef)})
    out["speed"] = []

    def hnsw_at(ef, part):
        def fn():
            index.index.hnsw = dataclasses.replace(index.index.hnsw, ef_search=ef)
            return ann_top_k(model, index, part, 10)
        return fn

    for label, hs in (("random 10-item histories", rand10), ("test histories", real64)):
        for b in BATCHES:
            part = hs[:b]
            reps = max(3, 64 // b)
            contenders = {"exact": lambda: top_k(model, part, 10)}
            contenders.update({f"hnsw_ef{ef}": hnsw_at(ef, part) for ef in out["speed_efs"]})
            contenders["fastscan"] = lambda: ann_top_k(model, fast, part, 10)
            r = interleaved(contenders, b, args.rounds, reps)
            row = {"histories": label, "batch": b, "rows_per_s": {k: round(v, 1) for k, v in r.items()}}
            out["speed"].append(row)
            print(row, flush=True)
    index.index.hnsw = dataclasses.replace(index.index.hnsw, ef_search=args.speed_ef)

    out["scales"] = []
    for s in args.scales:
        big = scaled_model(model, s)
        t0 = time.perf_counter()
        ef = out["speed_efs"][-1]
        idx = ItemIndex(big.item_vectors().detach().float().numpy(), dataclasses.replace(base, ef_search=ef, cache=False))
        build = time.perf_counter() - t0
        sample = [test_h[i] for i in rng.choice(len(test_h), 2000, replace=False)]
        e_ids = batched(lambda hs, k: top_k(big, hs, k), sample)
        a_ids = batched(lambda hs, k: ann_top_k(big, idx, hs, k), sample)
        part = rand10[:64]
        r = interleaved({"exact": lambda: top_k(big, part, 10), "hnsw": lambda: ann_top_k(big, idx, part, 10)}, 64, args.rounds, 3)
        row = {"scale": s, "items": big.cfg.n_items, "ef_search": ef, "build_s": round(build, 1), "recall@10": recall_at_10(a_ids, e_ids),
               "exact_rows_per_s": round(r["exact"], 1), "hnsw_rows_per_s": round(r["hnsw"], 1)}
        out["scales"].append(row)
        print(row, flush=True)
        del big, idx
    out["load"] = [round(x, 2) for x in load0], [round(x, 2) for x in os.getloadavg()]
    return out


def render(r: dict) -> str:
    cpu = r["cpu"]
    flags = " ".join(cpu.get("flags", [])) or "no avx2/avx512/amx flags"
    head = (f"Command: `{r['command']}` "
            f"({r['date']} UTC, CPU {cpu.get('model')} ({flags}), {r['cores']} cores, {r['threads']} thread(s), load average "
            f"{r['load'][0][0]} before / {r['load'][1][0]} after). RUN: {r['run']}; {r['items']:,} items, {r['model']}, "
            f"{r['test_cases']:,} test users (metrics.json test NDCG@10 {r['metrics_json_ndcg10']:.4f}). Index: "
            f"`guimo.inference.recommend.ItemIndex` = `guimo.index.dense.DenseIndex(kind='hnsw')` over the item vectors "
            f"with one extra coordinate (MIPS -> L2), M {r['hnsw']['m']}, ef_construction {r['hnsw']['ef_construction']}; "
            f"candidates (k + the history's distinct items) rescored exactly.")
    b = r["build"]
    build = (f"Build {b['build_s']} s; build + atomic save into RUN/ann_index/ {b['build_and_save_s']} s ({b['cache_mb']} MB); "
             f"a later load reads the cache in {b['cached_load_s']} s.")
    q = ["| top-k | ef_search | recall@10 vs exact | test NDCG@10 | test HR@10 | whole test split, s |",
         "| --- | ---: | ---: | ---: | ---: | ---: |",
         f"| exact | - | 1 | {r['exact']['ndcg@10']:.4f} | {r['exact']['hr@10']:.4f} | {r['exact']['all_test_s']} |"]
    for row in r["ef"]:
        q.append(f"| HNSW | {row['ef_search']} | {row['recall@10']:.4f} | {row['ndcg@10']:.4f} | {row['hr@10']:.4f} | {row['all_test_s']} |")
    f = r["fastscan"]
    q.append(f"| reference: {f['what']} | - | {f['recall@10']:.4f} | {f['ndcg@10']:.4f} | {f['hr@10']:.4f} | - |")
    names = list(r["speed"][0]["rows_per_s"])
    label = {"exact": "exact", "fastscan": "fast-scan ref.", **{n: f"HNSW ef {n[7:]}" for n in names if n.startswith("hnsw_ef")}}
    s = [f"Rows/s (median of {r['rounds']} interleaved rounds; in brackets: against exact at the same batch, then against "
         "exact at batch 64, today's batched throughput):", "",
         "| histories | batch | " + " | ".join(label[n] for n in names) + " |", "| --- | ---: |" + " ---: |" * len(names)]
    ex64 = {row["histories"]: row["rows_per_s"]["exact"] for row in r["speed"] if row["batch"] == 64}
    for row in r["speed"]:
        v = row["rows_per_s"]
        cells = [f"{v['exact']:,.0f}"] + [f"{v[n]:,.0f} ({v[n] / v['exact']:.2f}x; {v[n] / ex64[row['histories']]:.2f}x)"
                                          for n in names if n != "exact"]
        s.append(f"| {row['histories']} | {row['batch']} | " + " | ".join(cells) + " |")
    sc = []
    if r["scales"]:
        sc = ["", "Catalogue replicated (item vectors copied with 10% noise; 2,000 test histories for recall, batch 64 of "
              "random 10-item histories for speed):", "",
              "| items | ef_search | build s | recall@10 | exact rows/s | HNSW rows/s | HNSW / exact |",
              "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for row in r["scales"]:
            sc.append(f"| {row['items']:,} | {row['ef_search']} | {row['build_s']} | {row['recall@10']:.4f} | {row['exact_rows_per_s']:,.0f} | "
                      f"{row['hnsw_rows_per_s']:,.0f} | {row['hnsw_rows_per_s'] / row['exact_rows_per_s']:.2f}x |")
    return "\n".join([head, "", build, "", *q, "", *s, *sc])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", nargs="?")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--ef", default="256,512,1024", help="ef_search values for the quality table")
    p.add_argument("--speed-ef", type=int, default=128, help="ef_search of the speed table (beside the smallest that reached recall 0.99)")
    p.add_argument("--m", type=int, default=32)
    p.add_argument("--ef-construction", type=int, default=200)
    p.add_argument("--scales", default="", help="catalogue multiples for the crossover, e.g. 3 (1 is the run itself)")
    p.add_argument("--render", action="store_true", help="re-render the section from bench/results/recommend_ann.json")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    if args.render:
        result = json.loads(RESULTS.read_text(encoding="utf-8"))
    else:
        if not args.run:
            p.error("RUN is required unless --render")
        args.ef = [int(x) for x in args.ef.split(",") if x]
        args.scales = [int(x) for x in args.scales.split(",") if x]
        result = measure(args)
        result["command"] = "python bench/recommend_ann.py " + " ".join(sys.argv[1:] if argv is None else argv)
        if not args.no_write:
            sys.path.insert(0, str(ROOT))
            from guimo.io import atomic_write_json

            atomic_write_json(RESULTS, result)
    body = render(result)
    print(body)
    if not args.no_write:
        write_section("recommend-ann", body, heading="Recommend at large catalogues: approximate top-k (`bench/recommend_ann.py`)",
                      doc=page("recommend"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
