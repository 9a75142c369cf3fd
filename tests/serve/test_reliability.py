"""A real `guimo serve` process: SIGKILL in the middle of a load run, restart, retry. Every request
that got a 2xx has exactly one usage event; retried request ids are never billed twice. Then a
SIGTERM drains the requests in flight: they finish, are recorded, and the process exits cleanly."""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.serve.conftest import free_port


def start_server(run, db_url: str, log_path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "guimo", "serve", str(run), "--port", str(port), "--db", db_url, "--max-wait-ms", "2"],
                            stdout=subprocess.DEVNULL, stderr=open(log_path, "ab"), env={**os.environ, "OMP_NUM_THREADS": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {open(log_path).read()[-2000:]}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not become ready")


def fire(url: str, key: str, ids: list[str], *, stop_after: int | None = None, on_enough=None, threads: int = 6) -> dict[str, int]:
    """POST one completion per request id; returns id -> status (0 = no response)."""
    statuses: dict[str, int] = {}
    lock = threading.Lock()

    def one(rid: str) -> None:
        try:
            r = httpx.post(url + "/v1/completions", timeout=60, json={"model": "tiny-lm", "prompt": f"def f{rid[-2:]}(", "max_tokens": 6, "temperature": 0},
                           headers={"Authorization": f"Bearer {key}", "X-Request-ID": rid})
            code = r.status_code
        except httpx.TransportError:
            code = 0
        with lock:
            statuses[rid] = code
            if on_enough and stop_after and sum(c == 200 for c in statuses.values()) == stop_after:
                on_enough()

    with cf.ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, ids))
    return statuses


def events_by_id(engine) -> Counter:
    from guimo.serve.models import UsageEvent

    with Session(engine) as s:
        return Counter(s.scalars(select(UsageEvent.request_id)).all())


def test_sigkill_restart_retry_bills_every_2xx_exactly_once(tiny_lm_run, ledger_url, engine, new_key, tmp_path):
    key = new_key()
    log = tmp_path / "server.log"
    proc, url = start_server(tiny_lm_run, ledger_url, log)
    ids = [f"load-{i:02d}" for i in range(40)]
    first = fire(url, key, ids, stop_after=6, on_enough=lambda: proc.send_signal(signal.SIGKILL))
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    ok_first = {i for i, c in first.items() if c == 200}
    assert 6 <= len(ok_first) < len(ids) and set(first.values()) <= {0, 200}, first

    proc, url = start_server(tiny_lm_run, ledger_url, log)
    try:
        retry = [i for i in ids if i not in ok_first] + sorted(ok_first)[:3]  # retry the failed ones, and a few that succeeded
        second = fire(url, key, retry)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert set(second.values()) <= {200, 409}, second
    assert all(second[i] == 409 for i in sorted(ok_first)[:3])  # served and billed already
    served = ok_first | {i for i, c in second.items() if c in (200, 409)}
    counts = events_by_id(engine)
    assert set(counts) == served == set(ids)  # every id ends up served, none is lost or invented
    assert max(counts.values()) == 1  # and none is billed twice


def test_sigterm_drains_in_flight_requests(tiny_lm_run, ledger_url, engine, new_key, tmp_path):
    key = new_key()
    proc, url = start_server(tiny_lm_run, ledger_url, tmp_path / "server.log")
    ids = [f"drain-{i:02d}" for i in range(12)]
    statuses = fire(url, key, ids, stop_after=2, on_enough=lambda: proc.send_signal(signal.SIGTERM), threads=12)
    assert proc.wait(timeout=60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after its graceful shutdown
    ok = {i for i, c in statuses.items() if c == 200}
    assert len(ok) >= 2 and set(events_by_id(engine)) == ok  # what was answered is recorded, nothing else
    assert "ledger flushed" in (tmp_path / "server.log").read_text()
