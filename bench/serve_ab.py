"""A/B of a server-side change: the same `guimo serve` from two checkouts, side by side, interleaved.

    git worktree add /tmp/before COMMIT
    python bench/serve_ab.py --baseline /tmp/before --run RUN [--run RUN ...] [--levels 1,4] [--rounds 4]

Starts one server per checkout (each `python -m guimo serve` run from its checkout, so it imports that
checkout's guimo) over the same run, with its own SQLite ledger, and measures them in alternating order
(A B, then B A) at each concurrency: the server process's CPU per request is the figure (what a change
to the request path saves; the load generator is the same for both). Batching is off by default, where
each request pays the whole request path alone; --batching measures the batched servers instead.
Reuses bench/serve_load.py's server, client and counters. Rewrites the `serve_ab` section of docs/benchmarks/serve.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
import serve_load as sl  # noqa: E402  (bench/ is on sys.path when run as a script)
from benchdoc import page, write_section  # noqa: E402


def request(run: Path) -> tuple[str, list[dict]]:
    """The endpoint and request bodies serve_load uses for this run's scenario."""
    scenario = json.loads((run / "manifest.json").read_text())["scenario"]
    if scenario == "lm":
        return "/v1/completions", [{"model": "bench", "prompt": "def main(argv):\n    ", "max_tokens": 16, "temperature": 0}]
    return "/v1/recommendations", sl.recommend_bodies(run)


def revision(root: Path) -> str:
    out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
    return (out.stdout.strip() or "?") + ("+changes" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    from guimo.serve.db import make_engine
    from guimo.serve.keys import create_key

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", required=True, help="the other checkout (e.g. a git worktree of the commit before the change)")
    p.add_argument("--run", action="append", required=True, help="a run directory to serve (lm or recommend), repeatable")
    p.add_argument("--levels", default="1,4", help="concurrency levels")
    p.add_argument("--rounds", type=int, default=4, help="measurements per server and level, alternating the order")
    p.add_argument("--duration", type=float, default=4.0)
    p.add_argument("--batching", action="store_true", help="measure batched servers (default: batching off)")
    p.add_argument("--client-procs", type=int, default=2)
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    args.max_batch, args.max_wait_ms, args.max_requests = 64, 5.0, 4000
    levels = [int(x) for x in args.levels.split(",")]
    roots = {"baseline": Path(args.baseline).resolve(), "now": ROOT}
    for name, root in roots.items():
        if not (root / "guimo" / "__init__.py").exists():
            sys.exit(f"{root}: not a guimo checkout")
    rows = ["| run | concurrency | baseline server CPU ms/req | now | saved ms/req | baseline / now | req/s baseline / now |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    with tempfile.TemporaryDirectory(prefix="serve-ab-") as tmp_name, multiprocessing.get_context("spawn").Pool(args.client_procs) as pool:
        tmp = Path(tmp_name)
        for run in map(Path, args.run):
            path, bodies = request(run)
            servers, keys = {}, {}
            try:
                for name, root in roots.items():
                    db = f"sqlite:///{tmp / f'{run.name}-{name}.sqlite'}"
                    engine = make_engine(db)
                    keys[name] = create_key(engine, tenant="bench", max_concurrent=10_000)[0]
                    engine.dispose()
                    sl.ROOT = root  # the server process starts in (and imports guimo from) this checkout
                    servers[name] = sl.Server(run, db, args.batching, tmp / f"{name}.log", args)
                for name in roots:  # warm-up
                    sl.load_split(pool, args.client_procs, servers[name].url, keys[name], path, bodies, 4, 1.5, 200)
                for c in levels:
                    got: dict[str, list[dict]] = {name: [] for name in roots}
                    for r in range(args.rounds):
                        for name in (list(roots) if r % 2 == 0 else list(roots)[::-1]):
                            got[name].append(sl.measure(pool, servers[name], keys[name], path, bodies, c, args))
                    cpu = {n: statistics.median(m["server_cpu_ms_per_req"] for m in got[n]) for n in roots}
                    rps = {n: statistics.median(m["requests_per_s"] for m in got[n]) for n in roots}
                    rows.append(f"| {run.name} | {c} | {cpu['baseline']:.2f} | {cpu['now']:.2f} | {cpu['baseline'] - cpu['now']:.2f} | "
                                f"{cpu['baseline'] / cpu['now']:.2f}x | {rps['baseline']:.0f} / {rps['now']:.0f} |")
                    print(rows[-1], flush=True)
            finally:
                for s in servers.values():
                    s.stop()
    body = (f"Command: `python bench/serve_ab.py --baseline DIR {' '.join(f'--run {r}' for r in args.run)} --levels {args.levels} --rounds {args.rounds}"
            f"{' --batching' if args.batching else ''}` ({dt.date.today()}, {platform.machine()}, {os.cpu_count()} cores, load average "
            f"{os.getloadavg()[0]:.1f}). Baseline {revision(roots['baseline'])}, now {revision(ROOT)}; batching {'on' if args.batching else 'off'}; "
            f"one server per checkout side by side, SQLite ledgers, OMP_NUM_THREADS=1; medians of {args.rounds} runs of {args.duration:g} s "
            "per server and level, the order alternating.\n\n" + "\n".join(rows))
    if not args.no_write:
        write_section("serve_ab", body, heading="Server A/B: the request path before and after a change (`bench/serve_ab.py`)", doc=page("serve"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
