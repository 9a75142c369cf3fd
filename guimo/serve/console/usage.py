"""Usage per day and per model for the console: sums over the ledger's events, priced by the same
``billing.price_lines`` that /v1/usage and `guimo usage` use, so a day's cost here adds up to the
month's bill there.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from guimo.serve.billing import price_lines
from guimo.serve.ledger import UsageRow
from guimo.serve.models import Tenant, UsageEvent


@dataclass(frozen=True)
class DayLine:
    day: str  # YYYY-MM-DD (UTC)
    tenant: str
    row: UsageRow
    cost: float


def current_month() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m")


def daily(engine: Engine, prices, *, month: str, tenant_id: int | None = None) -> list[DayLine]:
    """One line per (day, tenant, model, endpoint) of ``month``; every tenant's when ``tenant_id`` is None."""
    day = _utc_day(engine)
    q = (select(day, Tenant.name, UsageEvent.model, UsageEvent.scenario, UsageEvent.endpoint, func.count(UsageEvent.id),
                func.sum(UsageEvent.prompt_tokens), func.sum(UsageEvent.completion_tokens), func.sum(UsageEvent.units))
         .join(Tenant, Tenant.id == UsageEvent.tenant_id).where(UsageEvent.month == month)
         .group_by(day, Tenant.name, UsageEvent.model, UsageEvent.scenario, UsageEvent.endpoint)
         .order_by(day, Tenant.name, UsageEvent.model, UsageEvent.endpoint))
    if tenant_id is not None:
        q = q.where(UsageEvent.tenant_id == tenant_id)
    with engine.connect() as conn:
        groups = [(d, t, UsageRow(m, sc, e, int(n), int(p or 0), int(c or 0), int(u or 0))) for d, t, m, sc, e, n, p, c, u in conn.execute(q)]
    lines = price_lines([r for _, _, r in groups], prices)
    return [DayLine(d, t, r, ln.total) for (d, t, r), ln in zip(groups, lines)]


def _utc_day(engine: Engine):
    """The event's UTC day as 'YYYY-MM-DD': SQLite stores UTC timestamps as ISO text; PostgreSQL converts."""
    if engine.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", UsageEvent.started_at), "YYYY-MM-DD")
    return func.substr(UsageEvent.started_at, 1, 10)


def series(lines: list[DayLine], month: str, measure: str) -> tuple[list[str], dict[str, list[float]]]:
    """(every day of ``month``, {model: value per day}) for ``measure`` in requests | tokens | cost."""
    first = dt.date.fromisoformat(month + "-01")
    days = [(first + dt.timedelta(days=i)).isoformat() for i in range(31) if (first + dt.timedelta(days=i)).month == first.month]
    index = {d: i for i, d in enumerate(days)}
    out: dict[str, list[float]] = {}
    for ln in lines:
        values = out.setdefault(ln.row.model, [0.0] * len(days))
        if ln.day in index:
            values[index[ln.day]] += _value(ln, measure)
    return days, dict(sorted(out.items()))


def _value(ln: DayLine, measure: str) -> float:
    if measure == "requests":
        return float(ln.row.requests)
    if measure == "tokens":
        return float(ln.row.prompt_tokens + ln.row.completion_tokens)
    return ln.cost


def to_csv(lines: list[DayLine], currency: str) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["day", "tenant", "model", "scenario", "endpoint", "requests", "prompt_tokens", "completion_tokens", "units", f"cost_{currency}"])
    for ln in lines:
        r = ln.row
        w.writerow([ln.day, ln.tenant, r.model, r.scenario, r.endpoint, r.requests, r.prompt_tokens, r.completion_tokens, r.units,
                    f"{ln.cost:.6f}"])
    return buf.getvalue()
