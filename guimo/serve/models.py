"""Tables: tenants, their API keys, and the append-only usage ledger.

Bills are sums over ``usage_events``, which are only ever appended. A key row changes only when it
is revoked or expires early (rotation), never to count usage. The request id is the idempotency
key: unique per tenant, so a retried request is never billed twice. ``usage_totals`` is a derived
index for the quota check only: one row per (key family, month) holding the sum of that month's
event units, updated in the same transaction that appends the events (so it always equals the
sum; ``ledger.verify_totals`` checks), and rebuilt from the events when missing.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKey(Base):
    """One key. ``family_id`` is the first key of a rotation chain: the monthly quota counts the family."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    family_id: Mapped[int | None] = mapped_column(Integer, index=True)
    prefix: Mapped[str] = mapped_column(String(16), index=True)  # shown in lists and logs, never enough to authenticate
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the whole key
    name: Mapped[str | None] = mapped_column(String(100))
    models: Mapped[list[str] | None] = mapped_column(JSON)  # allow-list; None: every served model
    rpm: Mapped[int | None] = mapped_column(Integer)  # requests per minute per model; None: unlimited
    tpm: Mapped[int | None] = mapped_column(Integer)  # tokens per minute per model; None: unlimited
    max_concurrent: Mapped[int | None] = mapped_column(Integer)
    monthly_quota: Mapped[int | None] = mapped_column(BigInteger)  # billing units per calendar month (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    replaced_by: Mapped[int | None] = mapped_column(Integer)


class UsageEvent(Base):
    """One served request (CloudEvents-like): who, which model, how many units, when, how it ended."""

    __tablename__ = "usage_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "request_id", name="uq_usage_request"),
        Index("ix_usage_family_month", "key_family", "month"),
        Index("ix_usage_tenant_month", "tenant_id", "month"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(128))
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    key_id: Mapped[int] = mapped_column(Integer)
    key_family: Mapped[int] = mapped_column(Integer)
    key_prefix: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(200))
    scenario: Mapped[str] = mapped_column(String(50))  # prices are per scenario
    endpoint: Mapped[str] = mapped_column(String(50))  # completions, embeddings, recommendations, ...
    status: Mapped[str] = mapped_column(String(20))  # ok | cancelled (a stream the client left)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    units: Mapped[int] = mapped_column(Integer)  # what the quota counts: tokens, or inputs for non-token models
    month: Mapped[str] = mapped_column(String(7))  # "YYYY-MM" (UTC) of started_at
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class UsageTotal(Base):
    """Derived: the sum of ``usage_events.units`` per (key family, month), kept in step by ``ledger.record_many``.

    It exists so that the quota decision is one row read (and, on PostgreSQL, one row lock) instead
    of a scan of the family's events for the month on every request. Bills never read it.
    """

    __tablename__ = "usage_totals"

    key_family: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    units: Mapped[int] = mapped_column(BigInteger, default=0)
    events: Mapped[int] = mapped_column(BigInteger, default=0)


class AuditEvent(Base):
    """Append-only record of key and admin actions (who did what to which key), written in the same
    transaction as the action itself by ``guimo.serve.keys`` and the console, so the CLI, the API and
    the console are audited the same way (``guimo.serve.audit``)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_tenant_at", "tenant_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))  # "cli", "console:operator gm-xxxxxxxx", "console:acme gm-xxxxxxxx"
    action: Mapped[str] = mapped_column(String(50))  # key.create, key.revoke, key.rotate, key.limits, admin_key.create, console.sign_in, ...
    tenant_id: Mapped[int | None] = mapped_column(Integer)  # the tenant acted on (None: platform-wide)
    target: Mapped[str | None] = mapped_column(String(100))  # a key prefix
    detail: Mapped[dict | None] = mapped_column(JSON)


class AdminKey(Base):
    """An operator key for the console's operator view (``guimo keys admin``): hashed like an API key,
    never usable on /v1 (it belongs to no tenant)."""

    __tablename__ = "admin_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ConsoleSession(Base):
    """A signed-in console session. The cookie holds a random id; only its SHA-256 is stored, so a copy of
    the database opens no session. ``key_id`` (tenant view) or ``admin_key_id`` (operator view) is the key
    the user signed in with: revoking it ends the session."""

    __tablename__ = "console_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(10))  # "tenant" | "operator"
    tenant_id: Mapped[int | None] = mapped_column(Integer)
    key_id: Mapped[int | None] = mapped_column(Integer)
    admin_key_id: Mapped[int | None] = mapped_column(Integer)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
