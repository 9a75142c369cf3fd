"""API keys: ``gm-`` + 192 random bits, stored only as a SHA-256 hash and a short display prefix.

The server finds a key by its hash (an index lookup) and confirms with ``hmac.compare_digest``,
so neither a timing difference nor a stolen database reveals a usable key. Keys can be revoked,
expire, carry a model allow-list and limits, and be rotated: the new key inherits the old one's
settings and quota family, and the old one keeps working for a grace period.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from guimo.errors import GuimoError
from guimo.serve import audit
from guimo.serve.db import write_session
from guimo.serve.models import ApiKey, Tenant, utcnow

KEY_PREFIX = "gm-"
PREFIX_LEN = len(KEY_PREFIX) + 8  # "gm-" + 8 characters: enough to tell keys apart in a list


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)  # 24 bytes = 192 bits


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request (a detached copy of the key row)."""

    key_id: int
    key_family: int
    prefix: str
    tenant_id: int
    tenant: str
    models: tuple[str, ...] | None
    rpm: int | None
    tpm: int | None
    max_concurrent: int | None
    monthly_quota: int | None

    def may_use(self, model: str) -> bool:
        return self.models is None or model in self.models


class AuthError(Exception):
    """Why a key was refused; ``code`` goes into the error response."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def authenticate(engine: Engine, key: str, *, now: dt.datetime | None = None) -> Principal:
    """The principal for ``key``, or ``AuthError`` (unknown, revoked or expired)."""
    now = now or utcnow()
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        raise AuthError("Incorrect API key provided. Keys start with 'gm-'.", "invalid_api_key")
    digest = hash_key(key)
    with Session(engine) as s:
        row = s.execute(
            select(ApiKey, Tenant.name).join(Tenant, Tenant.id == ApiKey.tenant_id).where(ApiKey.key_hash == digest)
        ).first()
    if row is None or not hmac.compare_digest(row[0].key_hash, digest):
        raise AuthError(f"Incorrect API key provided: {key[:PREFIX_LEN]}...", "invalid_api_key")
    k, tenant = row
    return _principal(k, tenant, now)


def principal_by_id(engine: Engine, key_id: int, *, now: dt.datetime | None = None) -> Principal:
    """The principal of the key with this id, checked as ``authenticate`` checks a key (the console's
    session holds the id of the key its user signed in with, never the key)."""
    with Session(engine) as s:
        row = s.execute(select(ApiKey, Tenant.name).join(Tenant, Tenant.id == ApiKey.tenant_id).where(ApiKey.id == key_id)).first()
    if row is None:
        raise AuthError("This API key no longer exists.", "invalid_api_key")
    return _principal(row[0], row[1], now or utcnow())


def _principal(k: ApiKey, tenant: str, now: dt.datetime) -> Principal:
    if k.revoked_at is not None:
        raise AuthError(f"API key {k.prefix}... has been revoked.", "revoked_api_key")
    if k.expires_at is not None and _aware(k.expires_at) <= now:
        raise AuthError(f"API key {k.prefix}... expired at {_aware(k.expires_at).isoformat(timespec='seconds')}.", "expired_api_key")
    return Principal(
        key_id=k.id, key_family=k.family_id or k.id, prefix=k.prefix, tenant_id=k.tenant_id, tenant=tenant,
        models=tuple(k.models) if k.models is not None else None, rpm=k.rpm, tpm=k.tpm,
        max_concurrent=k.max_concurrent, monthly_quota=k.monthly_quota,
    )


def create_key(
    engine: Engine,
    *,
    tenant: str,
    models: list[str] | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
    max_concurrent: int | None = None,
    monthly_quota: int | None = None,
    expires_at: dt.datetime | None = None,
    name: str | None = None,
    actor: str = "cli",
    family_id: int | None = None,
) -> tuple[str, ApiKey]:
    """Create a key (and its tenant on first use). Returns the secret, which is never stored.
    ``actor`` names who did it in the audit log (``guimo.serve.audit``); ``family_id`` puts the key in an
    existing key's quota family (it then shares that family's monthly quota) instead of a new one."""
    _check_limits(rpm=rpm, tpm=tpm, max_concurrent=max_concurrent, monthly_quota=monthly_quota)
    if not tenant or len(tenant) > 100:
        raise GuimoError("tenant name must have 1 to 100 characters")
    secret = new_secret()
    with write_session(engine) as s:
        t = s.scalar(select(Tenant).where(Tenant.name == tenant))
        if t is None:
            t = Tenant(name=tenant)
            s.add(t)
            s.flush()
        k = ApiKey(tenant_id=t.id, prefix=secret[:PREFIX_LEN], key_hash=hash_key(secret), name=name, models=models,
                   rpm=rpm, tpm=tpm, max_concurrent=max_concurrent, monthly_quota=monthly_quota, expires_at=expires_at)
        s.add(k)
        s.flush()
        k.family_id = family_id or k.id
        audit.add(s, actor=actor, action="key.create", tenant_id=t.id, target=k.prefix, detail=_limits_of(k))
    return secret, k


def _check_limits(**limits: int | None) -> None:
    for label, value in limits.items():
        if value is not None and value < 1:
            raise GuimoError(f"--{label.replace('_', '-')} must be a positive integer, got {value}")


def _limits_of(k: ApiKey) -> dict:
    return {"name": k.name, "models": k.models, "rpm": k.rpm, "tpm": k.tpm, "max_concurrent": k.max_concurrent,
            "monthly_quota": k.monthly_quota}


def set_limits(engine: Engine, prefix: str, *, rpm: int | None, tpm: int | None, max_concurrent: int | None,
               monthly_quota: int | None, actor: str = "cli") -> ApiKey:
    """Replace a key's limits (None: unlimited / the server's default). The server picks them up when its
    key cache entry expires (``key_cache_s``)."""
    _check_limits(rpm=rpm, tpm=tpm, max_concurrent=max_concurrent, monthly_quota=monthly_quota)
    with write_session(engine) as s:
        k = _find(s, prefix)
        before = _limits_of(k)
        k.rpm, k.tpm, k.max_concurrent, k.monthly_quota = rpm, tpm, max_concurrent, monthly_quota
        audit.add(s, actor=actor, action="key.limits", tenant_id=k.tenant_id, target=k.prefix, detail={"before": before, "after": _limits_of(k)})
        return k


def list_keys(engine: Engine, *, tenant: str | None = None) -> list[tuple[ApiKey, str]]:
    q = select(ApiKey, Tenant.name).join(Tenant, Tenant.id == ApiKey.tenant_id).order_by(ApiKey.id)
    if tenant is not None:
        q = q.where(Tenant.name == tenant)
    with Session(engine, expire_on_commit=False) as s:
        return [(k, name) for k, name in s.execute(q).all()]


def key_status(k: ApiKey, now: dt.datetime | None = None) -> str:
    now = now or utcnow()
    if k.revoked_at is not None:
        return "revoked"
    if k.expires_at is not None and _aware(k.expires_at) <= now:
        return "expired"
    if k.expires_at is not None:
        return f"active until {_aware(k.expires_at).isoformat(timespec='seconds')}"
    return "active"


def revoke_key(engine: Engine, prefix: str, *, actor: str = "cli") -> ApiKey:
    with write_session(engine) as s:
        k = _find(s, prefix)
        if k.revoked_at is None:
            k.revoked_at = utcnow()
            audit.add(s, actor=actor, action="key.revoke", tenant_id=k.tenant_id, target=k.prefix)
        return k


def rotate_key(engine: Engine, prefix: str, *, grace: dt.timedelta, actor: str = "cli") -> tuple[str, ApiKey, ApiKey]:
    """A new key with the old one's settings and quota family; the old one expires after ``grace``."""
    secret = new_secret()
    with write_session(engine) as s:
        old = _find(s, prefix)
        if old.revoked_at is not None:
            raise GuimoError(f"key {old.prefix} is revoked; create a new key instead of rotating it")
        new = ApiKey(tenant_id=old.tenant_id, family_id=old.family_id or old.id, prefix=secret[:PREFIX_LEN],
                     key_hash=hash_key(secret), name=old.name, models=old.models, rpm=old.rpm, tpm=old.tpm,
                     max_concurrent=old.max_concurrent, monthly_quota=old.monthly_quota, expires_at=None)
        s.add(new)
        s.flush()
        deadline = utcnow() + grace
        if old.expires_at is None or _aware(old.expires_at) > deadline:
            old.expires_at = deadline
        old.replaced_by = new.id
        audit.add(s, actor=actor, action="key.rotate", tenant_id=old.tenant_id, target=old.prefix,
                  detail={"new": new.prefix, "old_expires_at": _aware(old.expires_at).isoformat(timespec="seconds")})
    return secret, old, new


def _find(session, prefix: str) -> ApiKey:
    """The one key whose display prefix starts with ``prefix`` (a full key is accepted too)."""
    if prefix.startswith(KEY_PREFIX) and len(prefix) > PREFIX_LEN:
        k = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(prefix)))
        if k is None:
            raise GuimoError("no such key")
        return k
    found = session.scalars(select(ApiKey).where(ApiKey.prefix.startswith(prefix, autoescape=True))).all()
    if not found:
        raise GuimoError(f"no key with prefix '{prefix}' (see `guimo keys list`)")
    if len(found) > 1:
        raise GuimoError(f"prefix '{prefix}' matches {len(found)} keys; give more characters")
    return found[0]


def _aware(t: dt.datetime) -> dt.datetime:
    """SQLite returns naive datetimes for what was stored as UTC."""
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.timezone.utc)
