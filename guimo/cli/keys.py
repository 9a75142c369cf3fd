"""`guimo keys create|list|revoke|rotate` — tenants' API keys in the ledger database."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from guimo.cli.serve import add_db_argument

    p = sub.add_parser("keys", help="create, list, revoke and rotate API keys",
                       description="API keys are shown once at creation; the database keeps only a hash and a prefix.")
    ks = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    c = ks.add_parser("create", help="create a key (and its tenant on first use); prints the key once")
    c.add_argument("--tenant", required=True, help="tenant (customer) name")
    c.add_argument("--models", help="comma-separated model names this key may use (default: all)")
    c.add_argument("--rpm", type=int, help="requests per minute per model (default: unlimited)")
    c.add_argument("--tpm", type=int, help="tokens per minute per model (default: unlimited)")
    c.add_argument("--max-concurrent", type=int, help="concurrent requests (default: the server's, 32)")
    c.add_argument("--monthly-quota", type=int, help="billing units per calendar month: tokens, or inputs for non-token models (default: unlimited)")
    c.add_argument("--expires-in", metavar="DURATION", help="e.g. 90d, 12h, 30m or seconds (default: never)")
    c.add_argument("--name", help="a label for the key")
    add_db_argument(c)
    c.set_defaults(func=create_main)
    ls = ks.add_parser("list", help="list keys (prefix, tenant, grants, limits, status)")
    ls.add_argument("--tenant", help="only this tenant's keys")
    add_db_argument(ls)
    ls.set_defaults(func=list_main)
    r = ks.add_parser("revoke", help="revoke a key at once")
    r.add_argument("prefix", help="the key's prefix as listed (gm-xxxxxxxx)")
    add_db_argument(r)
    r.set_defaults(func=revoke_main)
    ro = ks.add_parser("rotate", help="issue a replacement key; the old one keeps working for a grace period")
    ro.add_argument("prefix", help="the key's prefix as listed (gm-xxxxxxxx)")
    ro.add_argument("--grace", default="24h", metavar="DURATION", help="how long the old key keeps working (default: 24h)")
    add_db_argument(ro)
    ro.set_defaults(func=rotate_main)
    ad = ks.add_parser("admin", help="create an admin key for the console's operator view (prints it once); --revoke PREFIX revokes one")
    ad.add_argument("--name", help="a label for the key")
    ad.add_argument("--revoke", metavar="PREFIX", help="revoke the admin key with this prefix instead")
    add_db_argument(ad)
    ad.set_defaults(func=admin_main)


def parse_duration(text: str, what: str = "duration"):
    """The duration as a timedelta, by the one rule set of ``guimo.duration.parse_duration``."""
    import datetime as dt

    from guimo.duration import parse_duration as seconds

    return dt.timedelta(seconds=seconds(text, what))


def _engine(args):
    from guimo.serve.db import make_engine

    return make_engine(args.db)


def create_main(args: argparse.Namespace) -> int:
    import sys

    from guimo.serve.keys import create_key
    from guimo.serve.models import utcnow

    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    expires = utcnow() + parse_duration(args.expires_in, "--expires-in") if args.expires_in else None
    secret, key = create_key(_engine(args), tenant=args.tenant, models=models, rpm=args.rpm, tpm=args.tpm,
                             max_concurrent=args.max_concurrent, monthly_quota=args.monthly_quota, expires_at=expires, name=args.name)
    print(f"created key {key.prefix} for tenant '{args.tenant}'; it is shown only now:", file=sys.stderr)
    print(secret)
    return 0


def list_main(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from guimo.serve.keys import key_status, list_keys

    table = Table(title="API keys")
    for col in ("prefix", "tenant", "name", "models", "rpm", "tpm", "concurrent", "monthly quota", "status", "created"):
        table.add_column(col)
    for k, tenant in list_keys(_engine(args), tenant=args.tenant):
        dash = lambda v: "—" if v is None else str(v)  # noqa: E731
        table.add_row(k.prefix, tenant, dash(k.name), ",".join(k.models) if k.models is not None else "all", dash(k.rpm), dash(k.tpm),
                      dash(k.max_concurrent), dash(k.monthly_quota), key_status(k), k.created_at.strftime("%Y-%m-%d %H:%M"))
    Console(width=200).print(table)
    return 0


def revoke_main(args: argparse.Namespace) -> int:
    from guimo.serve.keys import revoke_key

    k = revoke_key(_engine(args), args.prefix)
    print(f"revoked {k.prefix}")
    return 0


def rotate_main(args: argparse.Namespace) -> int:
    import sys

    from guimo.serve.keys import rotate_key

    secret, old, new = rotate_key(_engine(args), args.prefix, grace=parse_duration(args.grace, "--grace"))
    print(f"new key {new.prefix} replaces {old.prefix}, which stops working at {old.expires_at.isoformat(timespec='seconds')}; "
          "the new key is shown only now:", file=sys.stderr)
    print(secret)
    return 0


def admin_main(args: argparse.Namespace) -> int:
    import sys

    from guimo.serve.console.operators import create_admin_key, revoke_admin_key

    if args.revoke:
        k = revoke_admin_key(_engine(args), args.revoke)
        print(f"revoked admin key {k.prefix}")
        return 0
    secret, key = create_admin_key(_engine(args), name=args.name)
    print(f"created admin key {key.prefix} (the console's operator view: every tenant); it is shown only now:", file=sys.stderr)
    print(secret)
    return 0
