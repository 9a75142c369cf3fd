"""Operator (admin) keys: what signs in to the console's operator view.

An admin key looks like an API key (``gm-`` + 192 random bits) and is stored the same way (SHA-256
and a display prefix, compared with ``hmac.compare_digest``), but in its own table: it belongs to no
tenant, so it can never call /v1 or be billed, and an API key can never open the operator view.
`guimo keys admin` creates one; creating one is audited.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from guimo.serve import audit
from guimo.serve.db import write_session
from guimo.serve.keys import PREFIX_LEN, AuthError, hash_key, new_secret
from guimo.serve.models import AdminKey, utcnow


@dataclass(frozen=True)
class Operator:
    admin_key_id: int
    prefix: str


def create_admin_key(engine: Engine, *, name: str | None = None, actor: str = "cli") -> tuple[str, AdminKey]:
    """A new admin key; the secret is returned once and never stored."""
    secret = new_secret()
    with write_session(engine) as s:
        k = AdminKey(prefix=secret[:PREFIX_LEN], key_hash=hash_key(secret), name=name, created_at=utcnow())
        s.add(k)
        s.flush()
        audit.add(s, actor=actor, action="admin_key.create", target=k.prefix, detail={"name": name})
    return secret, k


def revoke_admin_key(engine: Engine, prefix: str, *, actor: str = "cli") -> AdminKey:
    with write_session(engine) as s:
        found = s.scalars(select(AdminKey).where(AdminKey.prefix.startswith(prefix, autoescape=True))).all()
        if len(found) != 1:
            from guimo.errors import GuimoError

            raise GuimoError(f"prefix '{prefix}' matches {len(found)} admin keys")
        k = found[0]
        if k.revoked_at is None:
            k.revoked_at = utcnow()
            audit.add(s, actor=actor, action="admin_key.revoke", target=k.prefix)
        return k


def find_admin(engine: Engine, key: str) -> Operator | None:
    """The operator for ``key`` if it is a live admin key; None when it is no admin key at all (it may be an
    API key); ``AuthError`` when it is a revoked one."""
    digest = hash_key(key)
    with Session(engine) as s:
        k = s.scalar(select(AdminKey).where(AdminKey.key_hash == digest))
    if k is None or not hmac.compare_digest(k.key_hash, digest):
        return None
    if k.revoked_at is not None:
        raise AuthError(f"Admin key {k.prefix}... has been revoked.", "revoked_api_key")
    return Operator(k.id, k.prefix)


def operator_by_id(engine: Engine, admin_key_id: int) -> Operator:
    with Session(engine) as s:
        k = s.get(AdminKey, admin_key_id)
    if k is None or k.revoked_at is not None:
        raise AuthError("This admin key has been revoked.", "revoked_api_key")
    return Operator(k.id, k.prefix)
