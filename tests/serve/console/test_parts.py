"""The console's parts without a browser: daily usage adds up to the bill, sessions, the audit log,
SVG charts, report rendering and plot lookup."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.serve.console.conftest import make_run


def _event(engine, key, model: str, endpoint: str, when: dt.datetime, prompt: int, completion: int, rid: str) -> None:
    from guimo.serve import ledger
    from guimo.serve.keys import authenticate

    p = authenticate(engine, key)
    ledger.record(engine, ledger.Event(rid, p.tenant_id, p.key_id, p.key_family, p.prefix, model, "lm", endpoint, "ok", prompt,
                                       completion, prompt + completion, when, when + dt.timedelta(milliseconds=40)), quota=None)


def test_daily_usage_adds_up_to_the_bill(engine, new_key):
    from guimo.serve import ledger
    from guimo.serve.billing import load_prices, price_lines
    from guimo.serve.console import usage

    prices = load_prices()
    acme, beta = new_key("acme"), new_key("beta")
    t = dt.datetime(2026, 11, 3, 23, 59, tzinfo=dt.timezone.utc)
    _event(engine, acme, "m1", "completions", t, 10, 20, "a")
    _event(engine, acme, "m1", "completions", t + dt.timedelta(minutes=2), 5, 5, "b")  # the next day (UTC)
    _event(engine, acme, "m2", "embeddings", t, 7, 0, "c")
    _event(engine, beta, "m1", "completions", t, 100, 100, "d")
    _event(engine, acme, "m1", "completions", t + dt.timedelta(days=30), 1, 1, "e")  # December: another month
    lines = usage.daily(engine, prices, month="2026-11", tenant_id=ledger.tenant_id(engine, "acme"))
    assert [(ln.day, ln.row.model, ln.row.requests) for ln in lines] == [("2026-11-03", "m1", 1), ("2026-11-03", "m2", 1), ("2026-11-04", "m1", 1)]
    bill = price_lines(ledger.usage(engine, tenant="acme", month="2026-11"), prices)
    assert sum(ln.cost for ln in lines) == pytest.approx(sum(b.total for b in bill), rel=1e-12) and sum(ln.cost for ln in lines) > 0
    days, series = usage.series(lines, "2026-11", "tokens")
    assert len(days) == 30 and series["m1"][2] == 30 and series["m1"][3] == 10 and series["m2"][2] == 7
    every = usage.daily(engine, prices, month="2026-11")
    assert {ln.tenant for ln in every} == {"acme", "beta"}
    csv_text = usage.to_csv(lines, prices.currency)
    assert csv_text.splitlines()[1].startswith("2026-11-03,acme,m1,lm,completions,1,10,20,30,")


def test_sessions_expire_and_follow_their_key(engine, new_key):
    from guimo.serve.console import sessions
    from guimo.serve.keys import authenticate, revoke_key

    key = new_key("acme")
    p = authenticate(engine, key)
    token = sessions.start(engine, role="tenant", ttl_s=3600, tenant_id=p.tenant_id, key_id=p.key_id)
    viewer = sessions.load(engine, token)
    assert viewer.tenant == "acme" and viewer.principal.key_id == p.key_id and len(viewer.csrf) >= 40
    assert sessions.load(engine, token + "x") is None and sessions.load(engine, None) is None
    short = sessions.start(engine, role="tenant", ttl_s=1e-6, tenant_id=p.tenant_id, key_id=p.key_id)
    assert sessions.load(engine, short) is None  # expired: refused and deleted
    assert sessions.count(engine) == 1
    revoke_key(engine, p.prefix)
    assert sessions.load(engine, token) is None and sessions.count(engine) == 0
    assert not sessions.same_token("", "") and not sessions.same_token(None, "a") and sessions.same_token("ab", "ab")


def test_key_actions_are_audited_the_same_from_cli_and_console(engine):
    from guimo.serve import audit
    from guimo.serve.console.operators import create_admin_key, find_admin
    from guimo.serve.keys import create_key, revoke_key, rotate_key, set_limits

    secret, k = create_key(engine, tenant="acme", rpm=5)
    rotate_key(engine, k.prefix, grace=dt.timedelta(hours=1), actor="console:acme gm-abc")
    set_limits(engine, k.prefix, rpm=9, tpm=None, max_concurrent=None, monthly_quota=None, actor="console:operator gm-def")
    revoke_key(engine, k.prefix)
    revoke_key(engine, k.prefix)  # revoking twice is one action
    admin, _ = create_admin_key(engine)
    rows = audit.entries(engine)
    assert [(r.action, r.actor) for r in reversed(rows)] == [
        ("key.create", "cli"), ("key.rotate", "console:acme gm-abc"), ("key.limits", "console:operator gm-def"), ("key.revoke", "cli"),
        ("admin_key.create", "cli")]
    assert rows[2].detail["before"]["rpm"] == 5 and rows[2].detail["after"]["rpm"] == 9 and rows[1].tenant == "acme"
    assert all(secret not in repr(r) and admin not in repr(r) for r in rows)  # no secret in the log
    assert find_admin(engine, admin) is not None and find_admin(engine, secret) is None
    from guimo.serve.ledger import tenant_id

    assert [r.action for r in audit.entries(engine, tenant_id=tenant_id(engine, "acme"))] == ["key.revoke", "key.limits", "key.rotate", "key.create"]
    assert [r.action for r in audit.entries(engine, limit=2)] == ["admin_key.create", "key.revoke"]


def test_stacked_bars_svg():
    from guimo.serve.console.charts import nice_ceiling, stacked_bars

    assert [nice_ceiling(x) for x in (0, 0.7, 1, 3, 7.5, 180, 1001)] == [1, 1, 1, 5, 10, 200, 2000]
    svg = stacked_bars("c", "Requests", ["2026-11-01", "2026-11-02"], {"a<b": [1, 2], "m2": [0, 3]}, "requests")
    assert svg.startswith("<svg") and svg.count("<rect") == 3 + 2  # three non-zero bars, two legend swatches
    assert "a&lt;b" in svg and "a<b" not in svg and "6 requests in total" in svg
    assert "no usage" in stacked_bars("e", "Empty", ["2026-11-01"], {})


def test_report_markdown_and_plot_lookup(tmp_path):
    from guimo.serve.console.catalog import plot_file, render_markdown

    html = render_markdown("# Title\n\n![p](plots/a.png) [ext](https://x.org/y) <img src=x onerror=alert(1)>", "/console/models/r")
    assert "<h3>Title</h3>" in html and 'src="/console/models/r/plots/a.png"' in html and 'href="https://x.org/y"' in html
    assert "<img src=x" not in html and "&lt;img src=x" in html
    run = make_run(tmp_path / "run")
    assert plot_file(run / "plots", "baselines.png") == run / "plots" / "baselines.png"
    for bad in ("../metrics.json", "/etc/passwd", "..", "model.safetensors"):
        assert plot_file(run / "plots", bad) is None


def test_a_tenant_session_grants_within_its_key_and_shares_its_quota(engine):
    from guimo.serve import ledger
    from guimo.serve.console.pages import ConsoleError, within_own_grant
    from guimo.serve.keys import authenticate, create_key

    secret, _ = create_key(engine, tenant="acme", models=["a", "b"], rpm=10, monthly_quota=100)
    p = authenticate(engine, secret)
    assert within_own_grant(p, None, {"rpm": None, "tpm": 50, "max_concurrent": None, "monthly_quota": 60}) == (
        ["a", "b"], {"rpm": 10, "tpm": 50, "max_concurrent": None, "monthly_quota": 60})
    for models, limits in ((["c"], {}), (None, {"rpm": 11}), (None, {"monthly_quota": 101})):
        with pytest.raises(ConsoleError) as e:
            within_own_grant(p, models, limits)
        assert e.value.status == 403
    # a key made in the sign-in key's family draws on the same monthly quota
    other, k = create_key(engine, tenant="acme", monthly_quota=100, family_id=p.key_family)
    _event(engine, secret, "a", "completions", dt.datetime.now(dt.timezone.utc), 3, 4, "q1")
    month = ledger.month_of(dt.datetime.now(dt.timezone.utc))
    assert authenticate(engine, other).key_family == p.key_family and ledger.used_units(engine, k.family_id, month) == 7


def test_guimo_keys_admin_creates_and_revokes_operator_keys(ledger_url, engine, capsys):
    from guimo.cli import main
    from guimo.serve.console.operators import find_admin
    from guimo.serve.keys import AuthError

    assert main(["keys", "admin", "--name", "ops", "--db", ledger_url]) == 0
    secret = capsys.readouterr().out.strip()
    op = find_admin(engine, secret)
    assert secret.startswith("gm-") and op.prefix == secret[:11]
    assert main(["keys", "admin", "--revoke", op.prefix, "--db", ledger_url]) == 0
    with pytest.raises(AuthError):
        find_admin(engine, secret)
    assert main(["keys", "admin", "--revoke", "gm-nosuch", "--db", ledger_url]) == 2  # one line on stderr, no traceback
    assert "matches 0 admin keys" in capsys.readouterr().err
