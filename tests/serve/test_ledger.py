"""The usage ledger on SQLite and (when GUIMO_TEST_POSTGRES_URL is set) PostgreSQL: the quota
check and the insert are one serialised transaction, request ids are idempotency keys, bills
are sums over events priced from the price table. Plus two uvicorn workers over one PostgreSQL."""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from guimo.serve import ledger
from guimo.serve.billing import load_prices, price_lines
from guimo.serve.keys import authenticate, create_key

PG_URL = os.environ.get("GUIMO_TEST_POSTGRES_URL")
needs_pg = pytest.mark.skipif(not PG_URL, reason="GUIMO_TEST_POSTGRES_URL is not set (.ci/run starts a PostgreSQL server via .ci/postgres.sh)")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[needs_pg, pytest.mark.postgres])])
def any_engine(request, engine):
    if request.param == "sqlite":
        yield engine
        return
    from guimo.serve.db import make_engine
    from guimo.serve.models import Base

    pg = make_engine(PG_URL)
    Base.metadata.drop_all(pg)  # a clean ledger for each test
    Base.metadata.create_all(pg)
    yield pg
    pg.dispose()


# Every event carries an explicit time, so no test depends on the wall clock: reading the month from
# utcnow() after the writes failed whenever a month ended in between. NOW's month is MONTH.
NOW = dt.datetime(2026, 5, 14, 12, 0, tzinfo=dt.timezone.utc)
MONTH = "2026-05"


def event(p, rid: str, units: int, *, model: str = "m", endpoint: str = "completions", prompt: int = 0, completion: int = 0,
          at: dt.datetime = NOW) -> ledger.Event:
    return ledger.Event(request_id=rid, tenant_id=p.tenant_id, key_id=p.key_id, key_family=p.key_family, key_prefix=p.prefix,
                        model=model, scenario="lm", endpoint=endpoint, status="ok", prompt_tokens=prompt, completion_tokens=completion,
                        units=units, started_at=at, finished_at=at)


def test_concurrent_writers_never_overspend_the_quota(any_engine):
    p = authenticate(any_engine, create_key(any_engine, tenant="acme", monthly_quota=25)[0])

    def spend(i: int) -> str:
        try:
            ledger.record(any_engine, event(p, f"r{i}", 1), quota=25)
            return "ok"
        except ledger.QuotaExceeded:
            return "quota"

    with cf.ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(spend, range(40)))
    assert outcomes.count("ok") == 25 and outcomes.count("quota") == 15
    assert ledger.used_units(any_engine, p.key_family, MONTH) == 25


def test_request_id_is_an_idempotency_key_and_bills_are_sums(any_engine):
    p = authenticate(any_engine, create_key(any_engine, tenant="acme")[0])
    q = authenticate(any_engine, create_key(any_engine, tenant="globex")[0])
    ledger.record(any_engine, event(p, "same", 30, prompt=10, completion=20), quota=None)
    with pytest.raises(ledger.DuplicateRequest):
        ledger.record(any_engine, event(p, "same", 30, prompt=10, completion=20), quota=None)
    ledger.record(any_engine, event(q, "same", 5, prompt=5, endpoint="embeddings"), quota=None)  # other tenant, own id space
    ledger.record(any_engine, event(p, "other", 4, prompt=1, completion=3), quota=None)
    assert ledger.already_recorded(any_engine, p.tenant_id, "same") and not ledger.already_recorded(any_engine, p.tenant_id, "nope")
    rows = ledger.usage(any_engine, tenant="acme")
    assert [(r.requests, r.prompt_tokens, r.completion_tokens, r.units) for r in rows] == [(2, 11, 23, 34)]
    assert ledger.usage(any_engine, tenant="acme", month="1999-01") == []
    (line,) = price_lines(rows, load_prices())
    assert line.request_cost == pytest.approx(2 / 1000 * 1.00) and line.token_cost == pytest.approx((11 * 0.0005 + 23 * 0.0015) / 1000)
    (emb,) = price_lines(ledger.usage(any_engine, tenant="globex"), load_prices())
    assert emb.total == pytest.approx(1 / 1000 * 1.00 + 5 * 0.0001 / 1000)


def test_streams_are_billed_past_the_quota_when_enforce_is_off(any_engine):
    p = authenticate(any_engine, create_key(any_engine, tenant="acme", monthly_quota=5)[0])
    ledger.record(any_engine, event(p, "a", 5), quota=5)
    with pytest.raises(ledger.QuotaExceeded):
        ledger.record(any_engine, event(p, "b", 5), quota=5)
    ledger.record(any_engine, event(p, "c", 7), quota=5, enforce=False)  # tokens already streamed are billed
    assert ledger.used_units(any_engine, p.key_family, MONTH) == 12


@needs_pg
@pytest.mark.postgres
def test_two_uvicorn_workers_share_one_postgres_ledger(tiny_lm_run, tmp_path):
    from guimo.serve.db import make_engine
    from guimo.serve.models import Base
    from tests.serve.conftest import free_port

    pg = make_engine(PG_URL)
    Base.metadata.drop_all(pg)
    Base.metadata.create_all(pg)
    secret, _ = create_key(pg, tenant="acme", monthly_quota=150)
    port = free_port()
    log = tmp_path / "server.log"
    proc = subprocess.Popen([sys.executable, "-m", "guimo", "serve", str(tiny_lm_run), "--port", str(port), "--db", PG_URL, "--workers", "2"],
                            stdout=subprocess.DEVNULL, stderr=open(log, "wb"), env={**os.environ, "OMP_NUM_THREADS": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while log.read_text().count("guimo.serve\", \"msg\": \"ready") < 2:  # both workers loaded
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.3)

        def one(i: int) -> int:
            r = httpx.post(url + "/v1/completions", timeout=60, headers={"Authorization": f"Bearer {secret}"},
                           json={"model": "tiny-lm", "prompt": "def f(", "max_tokens": 8, "temperature": 0})
            return r.status_code if r.status_code != 429 else (429 if r.json()["error"]["code"] == "insufficient_quota" else -1)

        with cf.ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(one, range(40)))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert set(codes) <= {200, 429} and codes.count(200) >= 5 and 429 in codes
    workers = {ln.split('"worker": ')[1].split("}")[0].split(",")[0] for ln in log.read_text().splitlines() if '"status": 200' in ln}
    assert len(workers) == 2  # both processes served requests ...
    (row,) = ledger.usage(pg, tenant="acme")
    assert row.requests == codes.count(200)  # ... every 200 is in the one ledger ...
    per_request = row.units / row.requests
    assert 150 <= row.units < 150 + per_request  # ... and the quota held across workers (one crossing request at most)
    pg.dispose()


def test_group_of_writes_is_decided_in_order_in_one_transaction(any_engine):
    p = authenticate(any_engine, create_key(any_engine, tenant="acme", monthly_quota=10)[0])
    q = authenticate(any_engine, create_key(any_engine, tenant="globex")[0])
    ledger.record(any_engine, event(p, "before", 4), quota=10)
    writes = [ledger.Write(event(p, "a", 3), 10), ledger.Write(event(q, "a", 50), None), ledger.Write(event(p, "a", 3), 10),
              ledger.Write(event(p, "before", 1), 10), ledger.Write(event(p, "b", 5), 10), ledger.Write(event(p, "c", 1), 10),
              ledger.Write(event(p, "d", 2), 10, enforce=False)]
    out = ledger.record_many(any_engine, writes)
    assert out[0] == 4 and out[1] == 0 and out[4] == 7 and out[6] == 12  # units used before each written event
    assert isinstance(out[2], ledger.DuplicateRequest) and isinstance(out[3], ledger.DuplicateRequest)  # same id twice; already billed
    assert isinstance(out[5], ledger.QuotaExceeded) and out[5].used == 12  # "b" crossed the quota; "c" is refused
    assert ledger.used_units(any_engine, p.key_family, MONTH) == ledger.summed_units(any_engine, p.key_family, MONTH) == 14
    assert ledger.used_units(any_engine, q.key_family, MONTH) == 50
    assert ledger.verify_totals(any_engine) == []


def test_month_totals_are_rebuilt_from_the_events_when_missing(any_engine):
    from sqlalchemy import delete

    from guimo.serve.models import UsageTotal

    p = authenticate(any_engine, create_key(any_engine, tenant="acme", monthly_quota=20)[0])
    for i in range(3):
        ledger.record(any_engine, event(p, f"r{i}", 5), quota=20)
    with any_engine.begin() as conn:  # e.g. a ledger written before the totals existed
        conn.execute(delete(UsageTotal))
    assert ledger.used_units(any_engine, p.key_family, MONTH) == 15  # falls back to the sum
    assert ledger.record(any_engine, event(p, "r3", 5), quota=20) == 15
    with pytest.raises(ledger.QuotaExceeded):
        ledger.record(any_engine, event(p, "r4", 1), quota=20)
    assert ledger.verify_totals(any_engine) == []
    with any_engine.begin() as conn:  # a total that disagrees with its events is reported
        conn.execute(UsageTotal.__table__.update().values(units=3))
    assert ledger.verify_totals(any_engine) == [(p.key_family, MONTH, 3, 20)]


def test_writer_thread_commits_concurrent_requests_in_groups(any_engine):
    import asyncio

    from guimo.serve.ledger_writer import LedgerWriter

    p = authenticate(any_engine, create_key(any_engine, tenant="acme", monthly_quota=150)[0])
    groups = []
    writer = LedgerWriter(any_engine, on_group=lambda n, s: groups.append(n))

    async def spend(i: int):
        try:
            return await writer.record(ledger.Write(event(p, f"r{i}", 2), 150))
        except ledger.QuotaExceeded:
            return "quota"

    async def main():
        return await asyncio.gather(*(spend(i) for i in range(100)))

    outcomes = asyncio.run(main())
    writer.close()
    assert outcomes.count("quota") == 25 and sorted(o for o in outcomes if o != "quota") == list(range(0, 150, 2))
    assert sum(groups) == 100 and len(groups) < 100  # fewer transactions than requests
    assert ledger.summed_units(any_engine, p.key_family, MONTH) == 150 and ledger.verify_totals(any_engine) == []


def test_an_event_counts_in_the_month_it_started_and_a_new_month_has_a_fresh_quota(any_engine):
    """Around midnight UTC at a month's end: the quota and the bill follow each event's start time,
    one group of writes may straddle the boundary, and a local-time zone does not move the month."""
    p = authenticate(any_engine, create_key(any_engine, tenant="acme", monthly_quota=5)[0])
    last = dt.datetime(2026, 5, 31, 23, 59, 59, 999999, tzinfo=dt.timezone.utc)
    first = dt.datetime(2026, 6, 1, 0, 0, tzinfo=dt.timezone.utc)
    beijing = dt.timezone(dt.timedelta(hours=8))  # 08:00 on June 1st there is still May 31st in UTC
    ledger.record(any_engine, event(p, "may", 5, at=(last - dt.timedelta(hours=1)).astimezone(beijing)), quota=5)
    out = ledger.record_many(any_engine, [ledger.Write(event(p, "late", 1, at=last), 5), ledger.Write(event(p, "june", 4, at=first), 5),
                                          ledger.Write(event(p, "june2", 3, at=first), 5)])
    assert isinstance(out[0], ledger.QuotaExceeded) and out[0].used == 5  # May is used up ...
    assert out[1:] == [0, 4]  # ... June starts from zero (and "june2" crosses its quota, as the first crossing request may)
    assert ledger.used_units(any_engine, p.key_family, "2026-05") == 5 and ledger.used_units(any_engine, p.key_family, "2026-06") == 7
    assert [r.units for r in ledger.usage(any_engine, tenant="acme", month="2026-05")] == [5]
    assert [r.units for r in ledger.usage(any_engine, tenant="acme", month="2026-06")] == [7]
    assert ledger.verify_totals(any_engine) == []
