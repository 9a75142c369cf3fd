"""The usage ledger: append one event per served request; quotas and bills are sums over events.

``record`` checks the monthly quota and inserts the event in one transaction that serialises
with every other writer of the same key family (``BEGIN IMMEDIATE`` on SQLite, ``SELECT ... FOR
UPDATE`` on the family's first key row in PostgreSQL), so two replicas cannot both spend the
last units. The (tenant, request id) pair is unique: a retried request is recorded once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from guimo.serve.db import write_session
from guimo.serve.models import ApiKey, Tenant, UsageEvent


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


def month_of(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m")


def used_units(engine: Engine, key_family: int, month: str) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(_used_query(key_family, month)) or 0)


def already_recorded(engine: Engine, tenant_id: int, request_id: str) -> bool:
    with engine.connect() as conn:
        q = select(UsageEvent.id).where(UsageEvent.tenant_id == tenant_id, UsageEvent.request_id == request_id)
        return conn.scalar(q) is not None


def record(engine: Engine, event: Event, *, quota: int | None, enforce: bool = True) -> int:
    """Insert ``event`` unless the quota was already spent; returns the units used before it (0 without a quota).

    ``enforce=False`` records even over the quota: a stream already delivered its tokens, so they
    are billed. Raises ``QuotaExceeded`` or ``DuplicateRequest`` (nothing is written then).
    """
    month = month_of(event.started_at)
    try:
        with write_session(engine) as s:
            used = 0
            if quota is not None:  # no quota: nothing to sum (the sum is a scan of this month's events)
                # Serialise writers of this key family (no-op on SQLite, which IMMEDIATE already locked).
                s.execute(select(ApiKey.id).where(ApiKey.id == event.key_family).with_for_update())
                used = int(s.scalar(_used_query(event.key_family, month)) or 0)
                if enforce and used >= quota:
                    raise QuotaExceeded(used, quota)
            s.add(UsageEvent(month=month, **event.__dict__))
            s.flush()
    except IntegrityError:
        raise DuplicateRequest(event.request_id) from None
    return used


def _used_query(key_family: int, month: str):
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
