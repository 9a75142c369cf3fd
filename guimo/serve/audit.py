"""The audit log: one append-only row per key or admin action, whoever made it.

``add`` writes into the caller's transaction (the same ``write_session`` that creates, revokes or
rotates the key), so an action and its audit row commit together or not at all. The CLI passes
``actor="cli"``; the console passes who is signed in (``console_actor``), so `guimo keys revoke`
and the console's revoke button leave the same row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from guimo.serve.models import AuditEvent, Tenant, utcnow


def add(session: Session, *, actor: str, action: str, tenant_id: int | None = None, target: str | None = None,
        detail: dict[str, Any] | None = None) -> None:
    """Append one audit row inside ``session``'s transaction. Never pass a secret in ``detail``."""
    session.add(AuditEvent(at=utcnow(), actor=actor[:200], action=action, tenant_id=tenant_id, target=target, detail=detail))


def record(engine: Engine, **kw: Any) -> None:
    """``add`` in a transaction of its own, for actions that change nothing else (sign-in, sign-out)."""
    from guimo.serve.db import write_session

    with write_session(engine) as s:
        add(s, **kw)


def console_actor(role: str, prefix: str, tenant: str | None = None) -> str:
    """How the console names the signed-in user in the log: the key's display prefix, never the key."""
    return f"console:operator {prefix}" if role == "operator" else f"console:{tenant} {prefix}"


@dataclass(frozen=True)
class AuditRow:
    at: dt.datetime
    actor: str
    action: str
    tenant: str | None
    target: str | None
    detail: dict[str, Any] | None


def entries(engine: Engine, *, tenant_id: int | None = None, limit: int = 100) -> list[AuditRow]:
    """The newest ``limit`` rows, of one tenant when ``tenant_id`` is given (else of every tenant and the platform)."""
    q = (select(AuditEvent, Tenant.name).outerjoin(Tenant, Tenant.id == AuditEvent.tenant_id)
         .order_by(AuditEvent.id.desc()).limit(limit))
    if tenant_id is not None:
        q = q.where(AuditEvent.tenant_id == tenant_id)
    with Session(engine) as s:
        return [AuditRow(e.at, e.actor, e.action, name, e.target, e.detail) for e, name in s.execute(q).all()]
