"""Usage-ledger write speed: one `ledger.record_many` transaction per served request (unbatched server)
or per group of events (the ledger writer's group commit), on SQLite and, with --postgres URL, PostgreSQL.

    python bench/ledger_speed.py                       # SQLite in a temporary folder; rewrites its docs section
    python bench/ledger_speed.py --postgres postgresql://postgres@127.0.0.1:54329/guimo_test
    python bench/ledger_speed.py --baseline /tmp/old   # beside another checkout's guimo (git worktree add /tmp/old COMMIT)

Each figure: median over --repeats rounds (contenders interleaved, each round a fresh process) of --n
transactions, wall and CPU time per transaction (CPU is what the server's ledger thread takes from the
cores; wall adds fsync and lock waits).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from benchdoc import page, write_section  # noqa: E402  (bench/ is on sys.path when run as a script)


def measure(url: str, group: int, n: int, repeats: int) -> tuple[float, float]:
    """(median wall ms, median CPU ms) per transaction of ``group`` events."""
    from guimo.serve import db, ledger
    from guimo.serve.keys import create_key

    engine = db.make_engine(url)
    _, key = create_key(engine, tenant=f"bench-{time.time_ns()}", monthly_quota=10**12)
    now = dt.datetime.now(dt.timezone.utc)
    counter = iter(range(10**9))

    def writes() -> list:
        return [ledger.Write(ledger.Event(request_id=f"r{next(counter)}", tenant_id=key.tenant_id, key_id=key.id,
                                          key_family=key.family_id or key.id, key_prefix=key.prefix, model="m", scenario="lm",
                                          endpoint="completions", status="ok", prompt_tokens=3, completion_tokens=5, units=8,
                                          started_at=now, finished_at=now), 10**12) for _ in range(group)]

    for _ in range(20):  # warm: statement caches, the totals row
        ledger.record_many(engine, writes())
    walls, cpus = [], []
    for _ in range(repeats):
        batches = [writes() for _ in range(n)]
        w0, c0 = time.perf_counter(), time.process_time()
        for b in batches:
            ledger.record_many(engine, b)
        walls.append((time.perf_counter() - w0) / n * 1e3)
        cpus.append((time.process_time() - c0) / n * 1e3)
    engine.dispose()
    return statistics.median(walls), statistics.median(cpus)


def one_round(args: argparse.Namespace) -> dict[str, list[float]]:
    """Every (database, group) once with the guimo that is on sys.path: {"db|group": [wall ms, CPU ms]}."""
    urls = {"SQLite (WAL)": f"sqlite:///{tempfile.mkdtemp()}/ledger.db"}
    if args.postgres:
        urls["PostgreSQL"] = args.postgres
    return {f"{name}|{g}": list(measure(url, g, args.n, 1)) for name, url in urls.items() for g in (int(x) for x in args.groups.split(","))}


def main(argv: list[str] | None = None) -> int:
    import json
    import subprocess

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--postgres", help="also measure this PostgreSQL URL")
    p.add_argument("--n", type=int, default=300, help="transactions per round")
    p.add_argument("--repeats", type=int, default=5, help="rounds per contender, interleaved")
    p.add_argument("--groups", default="1,32", help="events per transaction")
    p.add_argument("--baseline", metavar="DIR", help="also measure the guimo of another checkout (e.g. a git worktree of an older commit), interleaved")
    p.add_argument("--one", metavar="SRC", help=argparse.SUPPRESS)  # a child process: one round with guimo from SRC, JSON out
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--note", default="")
    args = p.parse_args(argv)
    if args.one:
        sys.path.insert(0, args.one)
        import guimo

        if not Path(guimo.__file__).resolve().is_relative_to(Path(args.one).resolve()):
            sys.exit(f"imported {guimo.__file__}, not the guimo under {args.one}")
        print(json.dumps(one_round(args)))
        return 0
    contenders = {"now": str(ROOT)}
    if args.baseline:
        contenders = {"baseline": str(Path(args.baseline).resolve()), **contenders}
    child = [a for a in (argv if argv is not None else sys.argv[1:])]
    results: dict[str, list[dict]] = {c: [] for c in contenders}
    for _ in range(args.repeats):  # A B A B ...: the machines are shared, neighbours come and go
        for name, src in contenders.items():
            out = subprocess.run([sys.executable, __file__, *child, "--one", src], capture_output=True, text=True, check=True).stdout
            results[name].append(json.loads(out))
    keys = list(results["now"][0])
    med = {c: {k: [statistics.median(r[k][i] for r in results[c]) for i in (0, 1)] for k in keys} for c in contenders}
    head = "| database | events per transaction | contender | wall ms per transaction | CPU ms per transaction | CPU ms per event |"
    rows = [head + (" CPU vs baseline |" if args.baseline else ""), "| --- | ---: | --- | ---: | ---: | ---: |" + (" ---: |" if args.baseline else "")]
    for k in keys:
        db, g = k.split("|")
        for c in contenders:
            wall, cpu = med[c][k]
            ratio = f" {med['baseline'][k][1] / cpu:.2f}x less |" if args.baseline and c == "now" else (" |" if args.baseline else "")
            rows.append(f"| {db} | {g} | {c} | {wall:.3f} | {cpu:.3f} | {cpu / int(g):.3f} |{ratio}")
            print(rows[-1], flush=True)
    body = (f"Command: `python bench/ledger_speed.py{' --postgres URL' if args.postgres else ''}{' --baseline DIR' if args.baseline else ''}` "
            f"({dt.date.today()}, {platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; medians of "
            f"{args.repeats} interleaved rounds of {args.n} transactions, each round a fresh process and database). {args.note}\n\n" + "\n".join(rows))
    if not args.no_write:
        write_section("ledger_speed", body, heading="Usage ledger: write speed (`bench/ledger_speed.py`)", doc=page("serve"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
