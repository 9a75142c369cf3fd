"""Console sessions and CSRF tokens.

The session cookie holds 256 random bits; the ledger database stores only their SHA-256 (table
``console_sessions``), so sessions survive a restart, work across uvicorn workers and replicas, and
a copy of the database opens none. The cookie is HttpOnly, SameSite=Strict, path /console, and
Secure when the request came over https. A session ends at its expiry (``console_session_s``), at
sign-out, or when the key it was opened with is revoked or expires: every request re-reads the key.

CSRF: each session has its own random token (the synchronizer-token pattern); every form carries it
in a hidden field and every console POST must send it (form field or ``X-CSRF-Token`` header) or is
refused with 403. The sign-in form, which has no session yet, uses a double-submit cookie instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from guimo.serve.db import write_session
from guimo.serve.keys import AuthError, Principal, principal_by_id
from guimo.serve.models import ConsoleSession, utcnow

COOKIE = "guimo_console"
SIGNIN_COOKIE = "guimo_console_signin"
PATH = "/console"


@dataclass(frozen=True)
class Viewer:
    """Who is signed in: an operator (every tenant) or one tenant, through the key they signed in with."""

    role: str  # "operator" | "tenant"
    prefix: str  # the sign-in key's display prefix
    csrf: str
    expires_at: dt.datetime
    tenant_id: int | None = None
    tenant: str | None = None
    principal: Principal | None = None  # tenant view: the sign-in key, for the playground's metered calls

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(engine: Engine, *, role: str, ttl_s: float, tenant_id: int | None = None, key_id: int | None = None,
          admin_key_id: int | None = None) -> str:
    """Open a session; returns the cookie value (shown to nobody else, stored only as a hash)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with write_session(engine) as s:
        s.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= now))  # expired ones are useless: drop them here
        s.add(ConsoleSession(id_hash=_digest(token), role=role, tenant_id=tenant_id, key_id=key_id, admin_key_id=admin_key_id,
                             csrf=secrets.token_urlsafe(32), created_at=now, expires_at=now + dt.timedelta(seconds=ttl_s)))
    return token


def load(engine: Engine, token: str | None) -> Viewer | None:
    """The viewer of a live session, else None (no cookie, unknown, expired, or its key revoked: then it is deleted)."""
    if not token or len(token) > 100:
        return None
    with Session(engine) as s:
        row = s.get(ConsoleSession, _digest(token))
    if row is None:
        return None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=dt.timezone.utc)
    if expires <= utcnow():
        end(engine, token)
        return None
    try:
        if row.role == "operator":
            from guimo.serve.console.operators import operator_by_id

            op = operator_by_id(engine, row.admin_key_id)
            return Viewer("operator", op.prefix, row.csrf, expires)
        p = principal_by_id(engine, row.key_id)
    except AuthError:
        end(engine, token)
        return None
    return Viewer("tenant", p.prefix, row.csrf, expires, tenant_id=p.tenant_id, tenant=p.tenant, principal=p)


def end(engine: Engine, token: str | None) -> None:
    if token:
        with write_session(engine) as s:
            s.execute(delete(ConsoleSession).where(ConsoleSession.id_hash == _digest(token)))


def count(engine: Engine) -> int:
    """Sessions stored (tests check that sign-out removes the row)."""
    with Session(engine) as s:
        return len(s.scalars(select(ConsoleSession.id_hash)).all())


def same_token(sent: str | None, expected: str | None) -> bool:
    """Constant-time comparison; a missing or empty token never matches."""
    return bool(sent) and bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())


def new_signin_token() -> str:
    return secrets.token_urlsafe(32)
