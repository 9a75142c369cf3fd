"""`guimo usage --tenant NAME [--month YYYY-MM]` — a tenant's usage and bill from the ledger."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from guimo.cli.serve import add_db_argument

    p = sub.add_parser("usage", help="print a tenant's usage and bill (sums over the usage ledger)",
                       description="Usage per model and endpoint, priced with the [requests] section of the price table.")
    p.add_argument("--tenant", required=True, help="tenant name")
    p.add_argument("--month", help="YYYY-MM (UTC); default: every month")
    p.add_argument("--prices", metavar="FILE", help="a TOML price table merged over guimo/prices.toml")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")
    add_db_argument(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    import json
    import re

    from guimo.errors import GuimoError
    from guimo.serve import ledger
    from guimo.serve.billing import load_prices, price_lines
    from guimo.serve.db import make_engine

    if args.month and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", args.month):
        raise GuimoError(f"--month must look like 2026-05, got '{args.month}'")
    engine = make_engine(args.db)
    if ledger.tenant_id(engine, args.tenant) is None:
        raise GuimoError(f"no tenant named '{args.tenant}' (create one with `guimo keys create --tenant {args.tenant}`)")
    prices = load_prices(args.prices)
    lines = price_lines(ledger.usage(engine, tenant=args.tenant, month=args.month), prices)
    total = sum(ln.total for ln in lines)
    if args.json:
        print(json.dumps({"tenant": args.tenant, "month": args.month, "currency": prices.currency, "total": round(total, 6),
                          "lines": [{**ln.row.__dict__, "request_cost": round(ln.request_cost, 6), "token_cost": round(ln.token_cost, 6),
                                     "cost": round(ln.total, 6)} for ln in lines]}, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"usage of tenant '{args.tenant}'{' in ' + args.month if args.month else ''} ({prices.currency})")
    for col in ("model", "endpoint", "requests", "prompt tokens", "completion tokens", "units", "cost"):
        table.add_column(col, justify="left" if col in ("model", "endpoint") else "right")
    for ln in lines:
        r = ln.row
        table.add_row(r.model, r.endpoint, f"{r.requests:,}", f"{r.prompt_tokens:,}", f"{r.completion_tokens:,}", f"{r.units:,}", f"{ln.total:.4f}")
    table.add_row("total", "", f"{sum(ln.row.requests for ln in lines):,}", "", "", f"{sum(ln.row.units for ln in lines):,}", f"{total:.4f}", style="bold")
    Console(width=160).print(table)
    print(f"prices: {prices.source}")
    return 0
