"""The console end to end in headless Chromium: sign-in, keys, usage, models, every playground, scale,
tenant isolation (pages and direct URLs), CSRF, secrets shown once, sign-out and session expiry."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time

import httpx
import pytest

from tests.serve.console.conftest import screenshot, sign_in


def api(console, key: str, path: str, body: dict | None = None) -> httpx.Response:
    h = {"Authorization": f"Bearer {key}"}
    if body is None:
        return httpx.get(console.url + path, headers=h)
    return httpx.post(console.url + path, headers=h, json=body)


def model_requests(page, model: str) -> int:
    cell = page.locator(f'#by-model tr[data-model="{model}"] td.requests')
    return int(cell.inner_text().replace(",", "")) if cell.count() else 0


def test_sign_in_cookie_and_every_page(console, page_for):
    page = page_for("acme")
    cookie = next(c for c in page.context.cookies() if c["name"] == "guimo_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"
    assert console.keys["acme"] not in page.content()  # the key is checked and forgotten
    assert "Tenant acme" in page.locator("#who").inner_text()
    screenshot(page, "usage")
    for name, heading in (("keys", "API keys"), ("models", "Models"), ("playground", "Playground"),
                          ("scale", "Scale effects and unit economics"), ("audit", "Audit log"), ("usage", "Usage of acme")):
        page.get_by_role("link", name=name.capitalize(), exact=True).click()
        assert page.get_by_role("heading", level=1).inner_text() == heading
        assert page.locator(f'nav a[aria-current="page"]').inner_text() == name.capitalize()
    # keyboard: the skip link is the first stop and moves focus to the content
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"


def test_models_page_metrics_report_and_plots(console, page_for):
    page = page_for("acme")
    page.goto(console.url + "/console/models")
    card = page.locator("#model-fake-cls")
    rows = card.locator("table.metrics tbody tr")
    assert [rows.nth(i).locator("th").inner_text() for i in range(rows.count())] == ["model", "logistic_regression", "lightgbm"]
    assert "0.91" in rows.nth(0).inner_text() and "0.89" in rows.nth(2).inner_text()
    assert "scenario fraud" in card.locator(".meta").inner_text() and "size 4.1 kB" in card.locator(".meta").inner_text()
    screenshot(page, "models")
    card.get_by_role("link", name="Report").click()
    assert page.get_by_role("heading", name="Report of the fraud run").is_visible()
    assert page.locator("article script").count() == 0 and "<script>alert(1)</script>" in page.locator("article").inner_text()
    img = page.locator("article img")
    assert img.get_attribute("src") == "/console/models/fake-cls/plots/baselines.png"
    # the heading can show before the plot has arrived (a loaded machine): wait for the load to end, then a
    # broken image would have naturalWidth 0
    page.wait_for_function("(img) => img.complete", arg=img.element_handle())
    assert page.evaluate("(img) => img.naturalWidth", img.element_handle()) == 8
    # only the run's own plots, by name
    r = page.request.get(console.url + "/console/models/fake-cls/plots/..%2Fmetrics.json")
    assert r.status == 404
    r = page.request.get(console.url + "/console/models/fake-cls/plots/report.md")
    assert r.status == 404


def test_create_use_rotate_and_revoke_a_key(console, page_for):
    page = page_for("acme")
    page.goto(console.url + "/console/keys")
    create = page.locator("#create-form")
    create.get_by_label("Name").fill("e2e key")
    create.get_by_label("fake-lm").check()
    create.get_by_label("Requests/min").fill("100")
    create.get_by_role("button", name="Create key").click()
    secret = page.locator("#secret").inner_text().strip()
    assert secret.startswith("gm-") and len(secret) > 30
    screenshot(page, "keys")
    assert api(console, secret, "/v1/models").json()["data"][0]["id"] == "fake-lm"  # the new key works, with its grant
    page.goto(console.url + "/console/keys")  # shown once: never again, on any page
    for path in ("/console/keys", "/console/usage", "/console/audit", "/console/models"):
        page.goto(console.url + path)
        assert secret not in page.content()
    prefix = secret[:11]
    row = page.goto(console.url + "/console/keys") and page.locator(f'#keys tr[data-prefix="{prefix}"]')
    assert "rpm 100" in row.inner_text() and row.locator(".status").inner_text() == "active"
    # limits
    row.locator("summary").click()
    row.get_by_label("Requests/min").fill("7")
    row.get_by_role("button", name="Save limits").click()
    row = page.locator(f'#keys tr[data-prefix="{prefix}"]')
    assert "rpm 7" in row.inner_text()
    # rotate: a new key shown once; the old one keeps working for the grace period
    row.get_by_label(f"Grace period for {prefix}").fill("1h")
    row.get_by_role("button", name=f"Rotate key {prefix}").click()
    rotated = page.locator("#secret").inner_text().strip()
    assert rotated != secret and f"replaces {prefix}" in page.locator("#created-key").inner_text()
    assert api(console, rotated, "/v1/models").status_code == 200 and api(console, secret, "/v1/models").status_code == 200
    # revoke the new one
    new_row = page.locator(f'#keys tr[data-prefix="{rotated[:11]}"]')
    new_row.get_by_role("button", name=f"Revoke key {rotated[:11]}").click()
    assert page.locator(f'#keys tr[data-prefix="{rotated[:11]}"] .status').inner_text() == "revoked"
    assert api(console, rotated, "/v1/models").status_code == 401
    page.goto(console.url + "/console/audit")
    audit = page.locator("#audit").inner_text()
    for action in ("key.create", "key.limits", "key.rotate", "key.revoke", "console.sign_in"):
        assert action in audit
    assert "console:acme" in audit
    screenshot(page, "audit")


def test_usage_changes_after_api_calls(console, page_for):
    page = page_for("acme")
    page.goto(console.url + "/console/usage")
    before = model_requests(page, "fake-lm")
    total_before = float(page.locator('table.bill[data-tenant="acme"] .bill-total').inner_text().split()[0])
    for i in range(3):
        assert api(console, console.keys["acme"], "/v1/completions", {"model": "fake-lm", "prompt": f"p {i}", "max_tokens": 4}).status_code == 200
    assert api(console, console.keys["beta"], "/v1/completions", {"model": "fake-lm", "prompt": "beta", "max_tokens": 4}).status_code == 200
    page.reload()
    assert model_requests(page, "fake-lm") == before + 3  # beta's request is not acme's
    assert float(page.locator('table.bill[data-tenant="acme"] .bill-total').inner_text().split()[0]) > total_before
    assert page.locator("#chart-requests rect").count() >= 1
    screenshot(page, "usage")
    assert "fake-lm" in page.locator("#chart-requests desc").text_content()
    with page.expect_download() as dl:
        page.get_by_role("link", name="Download CSV").click()
    csv_text = open(dl.value.path()).read()
    assert csv_text.startswith("day,tenant,model") and ",acme,fake-lm," in csv_text and ",beta," not in csv_text
    rows = [ln.split(",") for ln in csv_text.strip().splitlines()[1:] if ",fake-lm,lm,completions," in ln]
    assert sum(int(r[5]) for r in rows) == before + 3


def test_every_playground_answers_and_is_metered(console, page_for):
    # a search collection for acme, made through the API
    key = console.keys["acme"]
    assert api(console, key, "/v1/collections", {"name": "docs", "dense": False}).status_code == 200
    assert api(console, key, "/v1/collections/docs/documents", {"records": [
        {"id": "d1", "text": "how to reset a password"}, {"id": "d2", "text": "shipping times to Europe"}]}).status_code == 200
    page = page_for("acme")
    page.goto(console.url + "/console/usage")
    before = {m: model_requests(page, m) for m in ("fake-lm", "fake-rec", "fake-cls", "docs")}
    page.get_by_role("link", name="Playground", exact=True).click()

    def run(endpoint: str, fill) -> str:
        form = page.locator(f'form[data-endpoint="{endpoint}"]')
        fill(form)
        form.get_by_role("button").click()
        answer = page.locator(f"#{endpoint}-answer")
        page.locator(f"#{endpoint}-answer[data-done='true']").wait_for()
        curl = page.locator(f"#{endpoint}-curl").inner_text()
        assert curl.startswith("curl") and f"/v1/{endpoint}" in curl and "$GUIMO_API_KEY" in curl and key not in curl
        return answer.inner_text()

    text = run("completions", lambda f: (f.get_by_label("Prompt").fill("hello there"), f.get_by_label("Max tokens").fill("3")))
    assert text == " w0 w1 w2"  # streamed piece by piece from the SSE answer
    assert "curl -N" in page.locator("#completions-curl").inner_text() and '"stream":true' in page.locator("#completions-curl").inner_text()
    text = run("recommendations", lambda f: f.get_by_label("History (item ids, oldest first)").fill("item0, item2"))
    assert '"item1"' in text and '"item3"' in text
    text = run("classifications", lambda f: f.get_by_label(re.compile("^Texts")).fill("a long text\nhi"))
    assert '"label": "long"' in text and '"label": "short"' in text
    if shutil.which("curl"):  # the curl line is the exact request: pasted into a shell with the key, it gets the same answer
        out = subprocess.run(["bash", "-c", page.locator("#classifications-curl").inner_text()], env={**os.environ, "GUIMO_API_KEY": key},
                             capture_output=True, text=True, timeout=30)
        assert [d["label"] for d in json.loads(out.stdout)["data"]] == ["long", "short"], out.stderr
    text = run("search", lambda f: f.get_by_label("Query").fill("password reset"))
    assert '"id": "d1"' in text
    screenshot(page, "playground")
    # an API error is shown as the API's error
    text = run("recommendations", lambda f: f.get_by_label("History (item ids, oldest first)").fill("unknown-id"))
    assert text.startswith("[error 400]") and "none of its items is known" in text
    # every call was metered to acme, like any API call
    page.goto(console.url + "/console/usage")
    after = {m: model_requests(page, m) for m in before}
    curl_calls = 1 if shutil.which("curl") else 0
    assert after == {"fake-lm": before["fake-lm"] + 1, "fake-rec": before["fake-rec"] + 1, "fake-cls": before["fake-cls"] + 1 + curl_calls,
                     "docs": before["docs"] + 1}
    assert key not in page.content()


def test_tenant_isolation_by_page_and_direct_url(console, page_for):
    acme = page_for("acme")
    acme.goto(console.url + "/console/keys")
    acme_prefix = console.keys["acme"][:11]
    acme_key_id = acme.locator(f'#keys tr[data-prefix="{acme_prefix}"]').get_attribute("id").split("-")[1]
    beta = page_for("beta")
    beta.goto(console.url + "/console/keys")
    listed = beta.locator("#keys tbody tr").all_inner_texts()
    assert listed and all(acme_prefix not in t for t in listed) and all("acme" not in t for t in listed)
    assert "acme" not in beta.content()
    csrf = beta.locator('meta[name="csrf-token"]').get_attribute("content")
    r = beta.request.post(console.url + f"/console/keys/{acme_key_id}/revoke", form={"csrf_token": csrf})
    assert r.status == 404  # another tenant's key is the same 404 as a missing one
    r = beta.request.post(console.url + f"/console/keys/{acme_key_id}/limits", form={"csrf_token": csrf, "rpm": "1"})
    assert r.status == 404
    assert api(console, console.keys["acme"], "/v1/models").status_code == 200
    for path in ("/console/usage?tenant=acme", "/console/usage.csv?tenant=acme", "/console/keys?tenant=acme"):
        r = beta.request.get(console.url + path)
        assert r.status == 403, path
        assert "acme" not in r.text().replace("acme", "", 0) or "only its own tenant" in r.text()
    beta.goto(console.url + "/console/usage")
    assert beta.locator("table.bill").count() == 1 and beta.locator("table.bill").get_attribute("data-tenant") == "beta"
    # a key limited to one model sees only that model, and no other run's files
    lm_only = page_for("acme_lm_only")
    lm_only.goto(console.url + "/console/models")
    assert lm_only.locator("section.model h2").all_inner_texts() == ["fake-lm"]
    assert lm_only.request.get(console.url + "/console/models/fake-cls/report").status == 404
    assert lm_only.request.get(console.url + "/console/models/fake-cls/plots/baselines.png").status == 404


def test_operator_sees_every_tenant(console, page_for):
    page = page_for("admin")
    assert page.locator("#who").inner_text().startswith("Operator")
    api(console, console.keys["beta"], "/v1/classifications", {"model": "fake-cls", "input": ["x"]})
    page.goto(console.url + "/console/keys")
    tenants = set(page.locator("#keys tbody tr td:nth-child(2)").all_inner_texts())
    assert {"acme", "beta"} <= tenants
    page.goto(console.url + "/console/usage?tenant=beta")
    assert page.get_by_role("heading", level=1).inner_text() == "Usage of beta"
    assert model_requests(page, "fake-cls") >= 1
    page.goto(console.url + "/console/usage")
    assert {"beta"} <= set(page.locator("table.bill").evaluate_all("ts => ts.map(t => t.dataset.tenant)"))
    # the operator creates a key for a new tenant
    page.goto(console.url + "/console/keys")
    page.locator("#create-form").get_by_label("Tenant", exact=True).fill("gamma")
    page.get_by_role("button", name="Create key").click()
    assert api(console, page.locator("#secret").inner_text().strip(), "/v1/models").status_code == 200
    page.goto(console.url + "/console/scale")
    assert page.get_by_role("heading", name=re.compile("^Verdict")).first.is_visible()
    src = page.locator("#scale-report img").first.get_attribute("src")
    assert src.startswith("/console/scale/plots/") and page.request.get(console.url + src).headers["content-type"] == "image/png"
    assert "training cost: fake-cls" in page.locator("#economics").inner_text()
    screenshot(page, "scale")
    page.goto(console.url + "/console/playground")
    assert "sign in with a tenant's API key" in page.locator("main").inner_text()
    # an admin key is no API key
    assert api(console, console.keys["admin"], "/v1/models").status_code == 401


def test_forms_without_their_csrf_token_are_refused(console, page_for):
    page = page_for("acme")
    page.goto(console.url + "/console/keys")
    n_keys = page.locator("#keys tbody tr").count()
    for form in ({"name": "forged"}, {"name": "forged", "csrf_token": "not-the-token"}):
        r = page.request.post(console.url + "/console/keys", form=form)
        assert r.status == 403 and "CSRF" in r.text()
    r = page.request.post(console.url + "/console/sign-out", form={})
    assert r.status == 403
    r = page.request.post(console.url + "/console/playground/completions", data={"model": "fake-lm", "prompt": "x"})
    assert r.status == 403 and r.json()["error"]["code"] == "csrf_failed"
    page.goto(console.url + "/console/keys")
    assert page.locator("#keys tbody tr").count() == n_keys and "forged" not in page.content()
    # the sign-in form too: a post without the token of the page it came from
    fresh = page_for(None)
    r = fresh.request.post(console.url + "/console/sign-in", form={"key": console.keys["acme"]})
    assert r.status == 403
    # and a wrong key is a 401 that says why, without echoing the key
    fresh.goto(console.url + "/console/sign-in")
    fresh.get_by_label("API key or admin key").fill("gm-wrongwrongwrong")
    fresh.get_by_role("button", name="Sign in").click()
    assert "Incorrect API key" in fresh.locator("#sign-in-error").inner_text()
    screenshot(fresh, "sign-in")


def test_sign_out_ends_the_session(console, page_for):
    page = page_for("acme")
    cookie = next(c for c in page.context.cookies() if c["name"] == "guimo_console")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/console/sign-in$"))
    page.goto(console.url + "/console/keys")
    assert page.url.endswith("/console/sign-in")
    # the old cookie, replayed, opens nothing: the session row is gone, not just the browser's cookie
    r = httpx.get(console.url + "/console/keys", cookies={"guimo_console": cookie["value"]})
    assert r.status_code == 303 and r.headers["location"] == "/console/sign-in"


def test_sessions_expire_and_end_with_their_key(console, browser):
    from guimo.serve.keys import create_key, revoke_key
    from guimo.serve.main import create_app
    from tests.serve.conftest import ThreadServer, fake_models, settings

    app = create_app(settings(console=True, console_session_s=1.5, console_runs_dir="/nonexistent"), served=fake_models(),
                     engine=console.engine)
    with ThreadServer(app) as srv:
        ctx = browser.new_context()
        page = ctx.new_page()
        sign_in(page, srv.url, console.keys["acme"])
        page.goto(srv.url + "/console/keys")
        assert page.url.endswith("/console/keys")
        time.sleep(1.6)
        page.goto(srv.url + "/console/keys")
        assert page.url.endswith("/console/sign-in")
        # revoking the key a session was opened with ends that session at once
        secret = create_key(console.engine, tenant="delta")[0]
        sign_in(page, srv.url, secret)
        revoke_key(console.engine, secret[:11])
        page.goto(srv.url + "/console/usage")
        assert page.url.endswith("/console/sign-in")
        ctx.close()


def test_assistant_playground_over_a_real_run(console, browser, tmp_path_factory, tmp_path):
    """A trained (tiny) assistant run (the one tests/assistant train once per test session): its playground acts
    on the tenant's home, and the models page shows the real run's metrics.json."""
    pytest.importorskip("pocketsphinx", reason="the assistant needs the 'assistant' extra")
    from guimo.serve.main import create_app
    from guimo.serve.registry import load_models
    from tests.conftest import tiny_assistant_run
    from tests.serve.conftest import ThreadServer, settings

    served = load_models([f"home={tiny_assistant_run(tmp_path_factory)}"])
    app = create_app(settings(console=True, console_runs_dir=str(tmp_path), assistant_dir=str(tmp_path / "assistant")),
                     served=served, engine=console.engine)
    with ThreadServer(app) as srv:
        ctx = browser.new_context(viewport={"width": 1180, "height": 820})
        page = ctx.new_page()
        sign_in(page, srv.url, console.keys["beta"])
        page.goto(srv.url + "/console/playground")
        form = page.locator('form[data-endpoint="assistant"]')
        form.get_by_label("Command").fill("turn on the kitchen light")
        form.get_by_role("button", name="Send").click()
        page.locator("#assistant-answer[data-done='true']").wait_for()
        turn = json.loads(page.locator("#assistant-answer").inner_text())
        assert turn["commands"][0]["intent"] == "turn_on" and turn["states"]["kitchen_light"]["on"] is True
        assert "/v1/assistant" in page.locator("#assistant-curl").inner_text()
        page.goto(srv.url + "/console/models")
        card = page.locator("#model-home")
        assert "scenario assistant" in card.locator(".meta").inner_text()
        assert card.locator("table.metrics tbody tr th").first.inner_text() == "model"  # the tiny run has no baselines
        assert "intent_accuracy" in card.locator("table.metrics thead").inner_text()
        screenshot(page, "models-assistant")
        ctx.close()


def test_cookies_are_secure_behind_tls(console):
    """Behind a TLS proxy on the same host (uvicorn trusts X-Forwarded-Proto from 127.0.0.1) the cookies get Secure."""
    with httpx.Client(base_url=console.url, headers={"X-Forwarded-Proto": "https"}) as c:
        page = c.get("/console/sign-in")
        assert "secure" in page.headers["set-cookie"].lower()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        c.cookies.set("guimo_console_signin", token)  # httpx keeps a Secure cookie from plain http: hand it over
        r = c.post("/console/sign-in", data={"key": console.keys["beta"], "csrf_token": token})
        assert r.status_code == 303
        session = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("guimo_console="))
        assert {"httponly", "secure", "samesite=strict", "path=/console"} <= {p.strip().lower() for p in session.split(";")}
        assert r.headers["cache-control"] == "no-store" and "frame-ancestors 'none'" in r.headers["content-security-policy"]
    with httpx.Client(base_url=console.url) as c:  # plain http on loopback: no Secure flag (the browser would drop the cookie)
        assert "secure" not in c.get("/console/sign-in").headers["set-cookie"].lower()


def test_a_tenant_grants_no_more_than_its_own_key(console, page_for):
    from guimo.serve.keys import list_keys

    page = page_for("acme_lm_only")  # signed in with a key limited to fake-lm
    page.goto(console.url + "/console/keys")
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content")
    r = page.request.post(console.url + "/console/keys", multipart={"csrf_token": csrf, "name": "wider", "models": "fake-cls"})
    assert r.status == 403 and "cannot grant fake-cls" in r.text()
    page.locator("#create-form").get_by_label("Name").fill("narrow")
    page.get_by_role("button", name="Create key").click()
    narrow = page.locator("#secret").inner_text().strip()
    assert [m["id"] for m in api(console, narrow, "/v1/models").json()["data"]] == ["fake-lm"]  # none ticked: its own models
    # rotating the tenant's unrestricted key would hand out a wider key
    main_id = next(k.id for k, _ in list_keys(console.engine, tenant="acme") if k.name == "main")
    r = page.request.post(console.url + f"/console/keys/{main_id}/rotate", form={"csrf_token": csrf, "grace": "1h"})
    assert r.status == 403 and "grants more than the key you signed in with" in r.text()
    assert all(k.replaced_by is None for k, _ in list_keys(console.engine, tenant="acme") if k.name == "main")
