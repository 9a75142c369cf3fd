"""The usage ledger: append one event per served request; quotas and bills are sums over events.

``record_many`` writes a group of events in one transaction (the server's ledger writer thread
hands it every event queued while the previous transaction ran: group commit). The transaction
serialises with every other writer of the same key families (``BEGIN IMMEDIATE`` on SQLite,
``SELECT ... FOR UPDATE`` on the families' ``usage_totals`` rows in PostgreSQL), decides each
event's quota in order against the family's month total, appends the events and advances the
totals, so two replicas can never both spend the last units and a request is answered only after
its event is durable. The (tenant, request id) pair is unique: a retried request is recorded once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, bindparam, func, literal, select
from sqlalchemy.exc import IntegrityError

from guimo.serve.db import write_connection
from guimo.serve.models import Tenant, UsageEvent, UsageTotal


class QuotaExceeded(Exception):
    def __init__(self, used: int, quota: int) -> None:
        super().__init__(f"monthly quota of {quota} units used up ({used} used)")
        self.used, self.quota = used, quota


class DuplicateRequest(Exception):
    """This tenant's request id is already in the ledger (the request was served and billed)."""


@dataclass(frozen=True)
class Event:
    request_id: str
    tenant_id: int
    key_id: int
    key_family: int
    key_prefix: str
    model: str
    scenario: str
    endpoint: str
    status: str
    prompt_tokens: int
    completion_tokens: int
    units: int
    started_at: dt.datetime
    finished_at: dt.datetime


@dataclass(frozen=True)
class Write:
    """One event to append. ``quota``: the family's monthly quota (None: unlimited); ``enforce=False``
    records even over the quota (a stream already delivered its tokens, so they are billed)."""

    event: Event
    quota: int | None
    enforce: bool = True


Outcome = int | QuotaExceeded | DuplicateRequest  # units used before the event, or why it was not written


def month_of(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m")


def used_units(engine: Engine, key_family: int, month: str) -> int:
    """The family's units this month: its ``usage_totals`` row (one read), the events' sum when it has none."""
    with engine.connect() as conn:
        total = conn.scalar(select(UsageTotal.units).where(UsageTotal.key_family == key_family, UsageTotal.month == month))
        return int(total) if total is not None else int(conn.scalar(_sum_query(key_family, month)))


def summed_units(engine: Engine, key_family: int, month: str) -> int:
    """The family's units this month as the sum over its events (what bills use)."""
    with engine.connect() as conn:
        return int(conn.scalar(_sum_query(key_family, month)))


def verify_totals(engine: Engine) -> list[tuple[int, str, int, int]]:
    """(family, month, total, sum) for every ``usage_totals`` row that differs from its events' sum."""
    sums = (select(UsageEvent.key_family, UsageEvent.month, func.sum(UsageEvent.units).label("units"))
            .group_by(UsageEvent.key_family, UsageEvent.month).subquery())
    q = (select(UsageTotal.key_family, UsageTotal.month, UsageTotal.units, func.coalesce(sums.c.units, 0))
         .outerjoin(sums, (sums.c.key_family == UsageTotal.key_family) & (sums.c.month == UsageTotal.month)))
    with engine.connect() as conn:
        return [(f, m, int(t), int(u)) for f, m, t, u in conn.execute(q) if int(t) != int(u)]


def already_recorded(engine: Engine, tenant_id: int, request_id: str) -> bool:
    with engine.connect() as conn:
        q = select(UsageEvent.id).where(UsageEvent.tenant_id == tenant_id, UsageEvent.request_id == request_id)
        return conn.scalar(q) is not None


def record(engine: Engine, event: Event, *, quota: int | None, enforce: bool = True) -> int:
    """Append one event; returns the family's units before it. Raises ``QuotaExceeded`` or
    ``DuplicateRequest`` (nothing is written then)."""
    (out,) = record_many(engine, [Write(event, quota, enforce)])
    if isinstance(out, Exception):
        raise out
    return out


def record_many(engine: Engine, writes: list[Write]) -> list[Outcome]:
    """Append ``writes`` in one transaction, deciding each in order as ``record`` would.

    Returns one outcome per write. If another replica inserted one of these request ids between
    the duplicate check and the insert (PostgreSQL only), the group is retried one event per
    transaction, so that race costs time, never a wrong answer.
    """
    try:
        with write_connection(engine) as conn:
            return _append(conn, writes)
    except IntegrityError:
        if len(writes) == 1:
            return [DuplicateRequest(writes[0].event.request_id)]
        return [record_many(engine, [w])[0] for w in writes]


# The write path's statements, built once: Core on a plain connection, their compiled forms cached by the
# engine. Through an ORM session the same four statements cost ~1.6 ms of CPU per transaction, mostly
# statement construction and the session's bookkeeping (py-spy, bench/ledger_speed.py).
_EVENTS, _TOTALS = UsageEvent.__table__, UsageTotal.__table__
_RECORDED = select(_EVENTS.c.request_id).where(_EVENTS.c.tenant_id == bindparam("tenant"),
                                               _EVENTS.c.request_id.in_(bindparam("ids", expanding=True)))
_LOCK_TOTAL = (select(_TOTALS.c.units).where(_TOTALS.c.key_family == bindparam("family"), _TOTALS.c.month == bindparam("in_month"))
               .with_for_update())
_ADD_TO_TOTAL = (_TOTALS.update().where(_TOTALS.c.key_family == bindparam("family"), _TOTALS.c.month == bindparam("in_month"))
                 .values(units=_TOTALS.c.units + bindparam("add_units"), events=_TOTALS.c.events + bindparam("add_events")))
_INSERT_EVENTS = _EVENTS.insert()


def _append(conn: Connection, writes: list[Write]) -> list[Outcome]:
    seen = _recorded_ids(conn, writes)
    families = sorted({(w.event.key_family, month_of(w.event.started_at)) for w in writes})
    used = {fm: _lock_total(conn, *fm) for fm in families}  # one order for every writer: no deadlocks between replicas
    added: dict[tuple[int, str], list[int]] = {}
    rows, out = [], []
    for w in writes:
        e, fm = w.event, (w.event.key_family, month_of(w.event.started_at))
        if (e.tenant_id, e.request_id) in seen:
            out.append(DuplicateRequest(e.request_id))
            continue
        if w.quota is not None and w.enforce and used[fm] >= w.quota:
            out.append(QuotaExceeded(used[fm], w.quota))
            continue
        seen.add((e.tenant_id, e.request_id))
        out.append(used[fm])
        used[fm] += e.units
        tally = added.setdefault(fm, [0, 0])
        tally[0] += e.units
        tally[1] += 1
        rows.append({**e.__dict__, "month": fm[1]})
    if rows:
        conn.execute(_INSERT_EVENTS, rows)
        conn.execute(_ADD_TO_TOTAL, [{"family": f, "in_month": m, "add_units": u, "add_events": n} for (f, m), (u, n) in added.items()])
    return out


def _recorded_ids(conn: Connection, writes: list[Write]) -> set[tuple[int, str]]:
    """The (tenant, request id) pairs of ``writes`` already in the ledger (an index lookup per tenant)."""
    by_tenant: dict[int, set[str]] = {}
    for w in writes:
        by_tenant.setdefault(w.event.tenant_id, set()).add(w.event.request_id)
    found: set[tuple[int, str]] = set()
    for tenant_id, ids in by_tenant.items():
        found.update((tenant_id, rid) for rid in conn.scalars(_RECORDED, {"tenant": tenant_id, "ids": sorted(ids)}))
    return found


def _lock_total(conn: Connection, family: int, month: str) -> int:
    """The family's month total, row-locked until commit; created from the events' sum when missing."""
    params = {"family": family, "in_month": month}
    total = conn.scalar(_LOCK_TOTAL, params)
    if total is None:
        # Concurrent creators (other replicas) meet on the primary key: one inserts, the others wait for
        # its commit and then read its row, which already counts its own events.
        src = select(literal(family), literal(month), func.coalesce(func.sum(UsageEvent.units), 0), func.count(UsageEvent.id)).where(
            UsageEvent.key_family == family, UsageEvent.month == month)
        conn.execute(_insert_ignore(conn, _TOTALS).from_select(["key_family", "month", "units", "events"], src))
        total = conn.scalar(_LOCK_TOTAL, params)
    return int(total)


def _insert_ignore(conn: Connection, table):
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing()


def _sum_query(key_family: int, month: str):
    return select(func.coalesce(func.sum(UsageEvent.units), 0)).where(UsageEvent.key_family == key_family, UsageEvent.month == month)


@dataclass(frozen=True)
class UsageRow:
    model: str
    scenario: str
    endpoint: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    units: int


def usage(engine: Engine, *, tenant_id: int | None = None, tenant: str | None = None, month: str | None = None) -> list[UsageRow]:
    """Per (model, endpoint) sums of one tenant's events, optionally for one month ("YYYY-MM")."""
    q = (
        select(UsageEvent.model, UsageEvent.scenario, UsageEvent.endpoint, func.count(UsageEvent.id),
               func.sum(UsageEvent.prompt_tokens), func.sum(UsageEvent.completion_tokens), func.sum(UsageEvent.units))
        .group_by(UsageEvent.model, UsageEvent.scenario, UsageEvent.endpoint)
        .order_by(UsageEvent.model, UsageEvent.endpoint)
    )
    if tenant_id is not None:
        q = q.where(UsageEvent.tenant_id == tenant_id)
    if tenant is not None:
        q = q.join(Tenant, Tenant.id == UsageEvent.tenant_id).where(Tenant.name == tenant)
    if month is not None:
        q = q.where(UsageEvent.month == month)
    with engine.connect() as conn:
        return [UsageRow(m, sc, e, int(n), int(p or 0), int(c or 0), int(u or 0)) for m, sc, e, n, p, c, u in conn.execute(q)]


def tenant_id(engine: Engine, name: str) -> int | None:
    with engine.connect() as conn:
        return conn.scalar(select(Tenant.id).where(Tenant.name == name))
