"""API keys: hashed at rest, found by hash, revoked, expired, rotated with a grace period."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from guimo.errors import GuimoError
from guimo.serve.keys import AuthError, authenticate, create_key, hash_key, list_keys, revoke_key, rotate_key
from guimo.serve.models import ApiKey, utcnow


def test_key_is_random_and_only_its_hash_is_stored(engine):
    secret, key = create_key(engine, tenant="acme", models=["m"], rpm=5)
    other, _ = create_key(engine, tenant="acme")
    assert secret.startswith("gm-") and len(secret) >= 3 + 32 and secret != other  # 192 bits in 32 url-safe chars
    with Session(engine) as s:
        rows = s.scalars(select(ApiKey)).all()
    stored = " ".join(str(v) for r in rows for v in r.__dict__.values())
    assert secret not in stored and secret[3:] not in stored
    assert rows[0].key_hash == hash_key(secret) and rows[0].prefix == secret[:11]
    p = authenticate(engine, secret)
    assert (p.tenant, p.models, p.rpm, p.may_use("m"), p.may_use("x")) == ("acme", ("m",), 5, True, False)
    assert authenticate(engine, other).models is None and authenticate(engine, other).may_use("anything")


@pytest.mark.parametrize("bad", ["", "gm-", "gm-" + "A" * 32, "sk-abc", "gm-" + "x" * 300])
def test_unknown_keys_are_refused(engine, bad):
    create_key(engine, tenant="acme")
    with pytest.raises(AuthError) as e:
        authenticate(engine, bad)
    assert e.value.code == "invalid_api_key"


def test_revoke_and_expiry(engine):
    secret, key = create_key(engine, tenant="acme", expires_at=utcnow() + dt.timedelta(hours=1))
    authenticate(engine, secret)
    with pytest.raises(AuthError) as e:
        authenticate(engine, secret, now=utcnow() + dt.timedelta(hours=2))
    assert e.value.code == "expired_api_key"
    revoke_key(engine, key.prefix)
    with pytest.raises(AuthError) as e:
        authenticate(engine, secret)
    assert e.value.code == "revoked_api_key"
    with pytest.raises(GuimoError, match="no key with prefix"):
        revoke_key(engine, "gm-nothere")


def test_rotation_keeps_settings_and_family_and_old_key_works_during_grace(engine):
    old_secret, old = create_key(engine, tenant="acme", models=["m"], monthly_quota=100, tpm=50)
    new_secret, old_row, new_row = rotate_key(engine, old.prefix, grace=dt.timedelta(minutes=10))
    a, b = authenticate(engine, old_secret), authenticate(engine, new_secret)
    assert a.key_family == b.key_family == old.id and b.key_id != a.key_id
    assert (b.models, b.monthly_quota, b.tpm) == (("m",), 100, 50)
    with pytest.raises(AuthError, match="expired"):
        authenticate(engine, old_secret, now=utcnow() + dt.timedelta(minutes=11))
    authenticate(engine, new_secret, now=utcnow() + dt.timedelta(days=365))
    revoke_key(engine, new_row.prefix)
    with pytest.raises(GuimoError, match="revoked"):
        rotate_key(engine, new_row.prefix, grace=dt.timedelta(0))


def test_bad_settings_and_ambiguous_prefix(engine):
    with pytest.raises(GuimoError, match="--rpm must be a positive integer"):
        create_key(engine, tenant="acme", rpm=0)
    create_key(engine, tenant="acme")
    create_key(engine, tenant="acme")
    with pytest.raises(GuimoError, match="matches 2 keys"):
        revoke_key(engine, "gm-")
    assert [t for _, t in list_keys(engine, tenant="acme")] == ["acme", "acme"] and list_keys(engine, tenant="x") == []
