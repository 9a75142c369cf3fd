"""The HTTP surface over fake models: OpenAI client compatibility, errors, isolation, limits."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.serve.conftest import FakeLM

openai = pytest.importorskip("openai")


def client(srv, key: str) -> "openai.OpenAI":
    return openai.OpenAI(base_url=srv.url + "/v1", api_key=key, max_retries=0)


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    if code is not None:
        assert err["code"] == code, err
    assert r.headers["x-request-id"]
    return err


def test_openai_client_completions_stream_and_embeddings(make_server, new_key, engine):
    srv = make_server()
    c = client(srv, new_key())
    out = c.completions.create(model="fake-lm", prompt="hello there", max_tokens=3)
    assert out.choices[0].text == " w0 w1 w2" and out.choices[0].finish_reason == "length"
    assert (out.usage.prompt_tokens, out.usage.completion_tokens, out.usage.total_tokens) == (2, 3, 5)
    two = c.completions.create(model="fake-lm", prompt=["a", "b c"], max_tokens=2, n=2)
    assert [ch.index for ch in two.choices] == [0, 1, 2, 3] and two.usage.prompt_tokens == 3 and two.usage.completion_tokens == 8

    chunks = list(c.completions.create(model="fake-lm", prompt="x", max_tokens=4, stream=True, stream_options={"include_usage": True}))
    assert len({ch.id for ch in chunks}) == 1
    assert "".join(ch.choices[0].text for ch in chunks if ch.choices) == " w0 w1 w2 w3"
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 4 and chunks[-1].usage.prompt_tokens == 1

    emb = c.embeddings.create(model="fake-lm", input=["abc", "hello world"])  # the client asks for base64 by default
    assert [d.embedding for d in emb.data] == [[3.0, 1.0, 0.0], [11.0, 1.0, 0.0]] and emb.usage.prompt_tokens == 3
    assert c.embeddings.create(model="fake-lm", input="abcd", encoding_format="float").data[0].embedding == [4.0, 1.0, 0.0]
    assert {m.id for m in c.models.list()} == {"fake-lm", "other-lm", "fake-rec", "fake-cls"}

    from guimo.serve.ledger import usage

    rows = {(r.model, r.endpoint): r for r in usage(engine, tenant="acme")}
    comp = rows[("fake-lm", "completions")]
    assert (comp.requests, comp.prompt_tokens, comp.completion_tokens) == (3, 2 + 3 + 1, 3 + 8 + 4)
    assert rows[("fake-lm", "embeddings")].requests == 2 and rows[("fake-lm", "embeddings")].units == 3 + 1


def test_raw_sse_format_and_done(make_server, new_key):
    srv = make_server()
    h = {"Authorization": f"Bearer {new_key()}"}
    with httpx.stream("POST", srv.url + "/v1/completions", headers=h, json={"model": "fake-lm", "prompt": "p", "max_tokens": 2, "stream": True}) as r:
        lines = [ln for ln in r.iter_lines() if ln]
    assert r.headers["content-type"].startswith("text/event-stream")
    assert lines[-1] == "data: [DONE]" and all(ln.startswith("data: ") for ln in lines)
    payloads = [json.loads(ln[6:]) for ln in lines[:-1]]
    assert [p["choices"][0]["text"] for p in payloads] == [" w0", " w1", ""] and "usage" not in payloads[0]


def test_scenario_endpoints(make_server, new_key):
    srv = make_server()
    h = {"Authorization": f"Bearer {new_key()}"}
    r = httpx.post(srv.url + "/v1/recommendations", headers=h, json={"model": "fake-rec", "histories": [["item0", "item2"], []], "k": 3})
    assert r.status_code == 200, r.text
    assert [d["items"] for d in r.json()["data"]] == [["item1", "item3", "item4"], ["item0", "item1", "item2"]]
    r = httpx.post(srv.url + "/v1/classifications", headers=h, json={"model": "fake-cls", "input": ["hi", "a long text", {"amount": 3}]})
    assert [d["label"] for d in r.json()["data"]] == ["short", "long", "long"] and r.json()["usage"] == {"inputs": 3}
    # a model answers only the endpoints of its kind
    assert_error(httpx.post(srv.url + "/v1/completions", headers=h, json={"model": "fake-rec", "prompt": "x"}), 400, "unsupported_endpoint")


def test_bad_requests_get_the_right_status_and_error_format(make_server, new_key, engine):
    from guimo.serve.keys import revoke_key
    from guimo.serve.models import utcnow

    srv = make_server(max_body_bytes=2048, max_tokens_limit=100)
    key = new_key(models=["fake-lm"])
    ok = {"model": "fake-lm", "prompt": "hi", "max_tokens": 2}
    url = srv.url + "/v1/completions"
    auth = {"Authorization": f"Bearer {key}"}
    assert_error(httpx.post(url, json=ok), 401, "missing_api_key")
    assert_error(httpx.post(url, json=ok, headers={"Authorization": "Bearer gm-wrong"}), 401, "invalid_api_key")
    assert_error(httpx.post(url, json=ok, headers={"Authorization": "Bearer sk-openai"}), 401, "invalid_api_key")
    import datetime as dt

    expired = new_key(expires_at=utcnow() - dt.timedelta(seconds=1))
    assert_error(httpx.post(url, json=ok, headers={"Authorization": f"Bearer {expired}"}), 401, "expired_api_key")
    revoked = new_key()
    revoke_key(engine, revoked[:11])
    assert_error(httpx.post(url, json=ok, headers={"Authorization": f"Bearer {revoked}"}), 401, "revoked_api_key")
    err = assert_error(httpx.post(url, json={**ok, "model": "other-lm"}, headers=auth), 403, "model_not_granted")
    assert err["param"] == "model"
    assert_error(httpx.post(url, json={**ok, "model": "nope"}, headers=auth), 404, "model_not_found")
    assert_error(httpx.post(url, json={**ok, "prompt": "x" * 5000}, headers=auth), 413, "request_too_large")
    assert_error(httpx.post(url, content=b'{"model": "fake-lm", "prompt": ', headers={**auth, "content-type": "application/json"}), 400, "invalid_json")
    form = httpx.post(url, content=json.dumps(ok).encode(), headers={**auth, "content-type": "application/x-www-form-urlencoded"})
    assert "Content-Type: application/json" in assert_error(form, 400, "invalid_json")["message"]  # curl -d without --json
    err = assert_error(httpx.post(url, json={**ok, "max_tokens": "many"}, headers=auth), 422, "invalid_value")
    assert err["param"] == "max_tokens"
    assert assert_error(httpx.post(url, json={"prompt": "x"}, headers=auth), 422, "missing_field")["param"] == "model"
    assert_error(httpx.post(url, json={**ok, "prompt": [1, 2]}, headers=auth), 422)
    assert_error(httpx.post(url, json={**ok, "temperature": -1}, headers=auth), 422)
    err = assert_error(httpx.post(url, json={**ok, "max_tokens": 10**9}, headers=auth), 400, "max_tokens_too_large")
    assert err["param"] == "max_tokens" and "100" in err["message"]
    assert_error(httpx.post(url, json={**ok, "max_tokens": 0}, headers=auth), 422)
    assert_error(httpx.post(url, json={**ok, "prompt": []}, headers=auth), 400, "invalid_value")
    assert_error(httpx.get(srv.url + "/v1/nothing-here", headers=auth), 404)
    assert_error(httpx.get(url, headers=auth), 405)
    assert_error(httpx.post(url, json=ok, headers={**auth, "X-Request-ID": "bad id with spaces"}), 400, "invalid_request_id")
    # none of the refused requests reached the ledger
    from guimo.serve.ledger import usage

    assert usage(engine, tenant="acme") == []


def test_request_id_is_echoed_and_idempotent(make_server, new_key, engine):
    srv = make_server()
    h = {"Authorization": f"Bearer {new_key()}", "X-Request-ID": "order-42"}
    body = {"model": "fake-lm", "prompt": "hi", "max_tokens": 2}
    r = httpx.post(srv.url + "/v1/completions", headers=h, json=body)
    assert r.status_code == 200 and r.headers["x-request-id"] == "order-42"
    assert_error(httpx.post(srv.url + "/v1/completions", headers=h, json=body), 409, "duplicate_request_id")
    assert httpx.get(srv.url + "/healthz").headers["x-request-id"].startswith("req_")
    # another tenant may use the same request id: idempotency is per tenant
    other = {"Authorization": f"Bearer {new_key('globex')}", "X-Request-ID": "order-42"}
    assert httpx.post(srv.url + "/v1/completions", headers=other, json=body).status_code == 200
    from guimo.serve.ledger import usage

    assert sum(r.requests for r in usage(engine, tenant="acme")) == 1


def test_tenant_isolation(make_server, new_key):
    srv = make_server()
    a, b = new_key("acme", models=["fake-lm"]), new_key("globex", models=["other-lm"])
    ca, cb = client(srv, a), client(srv, b)
    assert [m.id for m in ca.models.list()] == ["fake-lm"] and [m.id for m in cb.models.list()] == ["other-lm"]
    with pytest.raises(openai.NotFoundError):
        cb.models.retrieve("fake-lm")
    with pytest.raises(openai.PermissionDeniedError):
        cb.completions.create(model="fake-lm", prompt="x", max_tokens=1)
    ca.completions.create(model="fake-lm", prompt="one two", max_tokens=3)
    ua = httpx.get(srv.url + "/v1/usage", headers={"Authorization": f"Bearer {a}"}).json()
    ub = httpx.get(srv.url + "/v1/usage", headers={"Authorization": f"Bearer {b}"}).json()
    assert ua["tenant"] == "acme" and [(d["model"], d["requests"], d["units"]) for d in ua["data"]] == [("fake-lm", 1, 5)]
    assert ub["tenant"] == "globex" and ub["data"] == [] and ub["total_cost"] == 0
    assert ua["total_cost"] > 0  # the exact bill: test_usage_bill_is_exact_from_the_ledger_and_the_price_table


def test_usage_bill_is_exact_from_the_ledger_and_the_price_table(make_server, new_key, engine):
    """/v1/usage prices each ledger row with the shipped price table, to the micro-dollar it reports.

    The expected bill is computed here in Decimal from the table's numbers, with token counts chosen
    so that every term is a whole number of micro-dollars (no rounding to argue about) and so that
    swapping the prompt and completion prices, or pricing by the wrong scenario, changes the bill.
    """
    from decimal import Decimal

    from guimo.serve.billing import load_prices
    from guimo.serve.ledger import usage

    key = new_key()
    h = {"Authorization": f"Bearer {key}"}
    c = client(srv := make_server(), key)
    c.completions.create(model="fake-lm", prompt="one two", max_tokens=20)  # 2 prompt + 20 completion tokens
    c.embeddings.create(model="fake-lm", input="a b c d e f g h i j", encoding_format="float")  # 10 input tokens
    for _ in range(2):
        assert httpx.post(srv.url + "/v1/recommendations", headers=h, json={"model": "fake-rec", "histories": [["item1"]]}).status_code == 200
    assert httpx.post(srv.url + "/v1/classifications", headers=h, json={"model": "fake-cls", "input": ["x"]}).status_code == 200

    rows = {(r.model, r.endpoint): r for r in usage(engine, tenant="acme")}
    counts = {k: (r.scenario, r.requests, r.prompt_tokens, r.completion_tokens) for k, r in rows.items()}
    assert counts == {("fake-lm", "completions"): ("lm", 1, 2, 20), ("fake-lm", "embeddings"): ("lm", 1, 10, 0),
                      ("fake-rec", "recommendations"): ("recommend", 2, 0, 0), ("fake-cls", "classifications"): ("fraud", 1, 0, 0)}

    table = load_prices().requests
    per_req = {name: Decimal(str(v)) / 1000 for name, v in table.per_1k_requests.items()}
    per_tok = {name: Decimal(str(v)) / 1000 for name, v in table.per_1k_tokens.items()}
    assert per_tok["prompt"] != per_tok["completion"] and len({per_req["lm"], per_req["recommend"], per_req["fraud"]}) == 3

    def bill(prompt_price: Decimal, completion_price: Decimal) -> dict[tuple[str, str], Decimal]:
        out = {}
        for k, r in rows.items():
            tokens = {"completions": r.prompt_tokens * prompt_price + r.completion_tokens * completion_price,
                      "embeddings": r.prompt_tokens * per_tok["embedding"]}.get(r.endpoint, Decimal(0))
            out[k] = r.requests * per_req[r.scenario] + tokens
        return out

    expected = bill(per_tok["prompt"], per_tok["completion"])
    micro = Decimal("0.000001")
    assert all(v == v.quantize(micro) for v in expected.values())  # whole micro-dollars: the reported rounding is exact
    swapped = bill(per_tok["completion"], per_tok["prompt"])
    assert sum(swapped.values()) != sum(expected.values())  # the check below can tell the prices apart

    report = httpx.get(srv.url + "/v1/usage", headers=h).json()
    got = {(d["model"], d["endpoint"]): Decimal(str(d["cost"])) for d in report["data"]}
    assert got == expected, (got, expected)
    assert Decimal(str(report["total_cost"])) == sum(expected.values()), (report["total_cost"], sum(expected.values()))
    assert report["currency"] == "USD"


def test_rate_limit_429_with_headers(make_server, new_key):
    srv = make_server()
    h = {"Authorization": f"Bearer {new_key(rpm=3, tpm=1000)}"}
    body = {"model": "fake-lm", "prompt": "hi", "max_tokens": 1}
    rs = [httpx.post(srv.url + "/v1/completions", headers=h, json=body) for _ in range(4)]
    assert [r.status_code for r in rs] == [200, 200, 200, 429]
    assert rs[0].headers["x-ratelimit-limit-requests"] == "3" and rs[0].headers["x-ratelimit-remaining-requests"] == "2"
    assert rs[0].headers["x-ratelimit-limit-tokens"] == "1000"
    err = assert_error(rs[3], 429, "rate_limit_exceeded")
    assert int(rs[3].headers["retry-after"]) >= 1 and "3 requests per minute" in err["message"]
    assert rs[3].headers["x-ratelimit-remaining-requests"] == "0"
    # the other model has its own bucket
    assert httpx.post(srv.url + "/v1/completions", headers=h, json={**body, "model": "other-lm"}).status_code == 200
    # tokens per minute: the estimate is prompt + max_tokens
    h2 = {"Authorization": f"Bearer {new_key(tpm=10)}"}
    assert httpx.post(srv.url + "/v1/completions", headers=h2, json={**body, "max_tokens": 8}).status_code == 200
    r = httpx.post(srv.url + "/v1/completions", headers=h2, json={**body, "max_tokens": 8})
    assert_error(r, 429, "rate_limit_exceeded")
    assert r.headers["x-ratelimit-remaining-tokens"] == "1"


def test_monthly_quota_429_insufficient_quota(make_server, new_key, engine):
    srv = make_server()
    c = client(srv, new_key(monthly_quota=10))
    c.completions.create(model="fake-lm", prompt="a b", max_tokens=4)  # 6 units
    c.completions.create(model="fake-lm", prompt="a b", max_tokens=4)  # 12: admitted at 6, crosses the quota
    with pytest.raises(openai.RateLimitError) as e:
        c.completions.create(model="fake-lm", prompt="a", max_tokens=1)
    assert e.value.code == "insufficient_quota" and e.value.response.headers["retry-after"]
    from guimo.serve.ledger import usage

    assert sum(r.units for r in usage(engine, tenant="acme")) == 12


def test_concurrency_limit_and_load_shedding(make_server, new_key):
    import concurrent.futures as cf

    srv = make_server(lm=FakeLM(delay_s=0.02), queue_size=2, max_batch=1, batching=False)
    h = {"Authorization": f"Bearer {new_key(max_concurrent=50)}"}
    body = {"model": "fake-lm", "prompt": "hi", "max_tokens": 5}
    with cf.ThreadPoolExecutor(12) as pool:
        rs = list(pool.map(lambda _: httpx.post(srv.url + "/v1/completions", headers=h, json=body, timeout=30), range(12)))
    codes = sorted(r.status_code for r in rs)
    assert 200 in codes and 503 in codes and set(codes) <= {200, 503}
    shed = [r for r in rs if r.status_code == 503]
    assert_error(shed[0], 503, "overloaded") and int(shed[0].headers["retry-after"]) >= 1
    metrics = httpx.get(srv.url + "/metrics").text
    assert f'guimo_shed_total{{model="fake-lm"}} {float(len(shed))}' in metrics
    h1 = {"Authorization": f"Bearer {new_key(max_concurrent=1)}"}
    with cf.ThreadPoolExecutor(3) as pool:
        rs = list(pool.map(lambda _: httpx.post(srv.url + "/v1/completions", headers=h1, json={**body, "max_tokens": 20}, timeout=30), range(3)))
    assert sorted(r.status_code for r in rs)[0] == 200 and 429 in {r.status_code for r in rs}


def test_batching_groups_concurrent_requests_and_a_failed_batch_fails_alone(make_server, new_key):
    import concurrent.futures as cf

    lm = FakeLM(delay_s=0.005, fail_on="poison")
    srv = make_server(lm=lm, max_batch=8, max_wait_ms=50)
    h = {"Authorization": f"Bearer {new_key()}"}
    with cf.ThreadPoolExecutor(8) as pool:
        rs = list(pool.map(lambda i: httpx.post(srv.url + "/v1/completions", headers=h, json={"model": "fake-lm", "prompt": f"p{i}", "max_tokens": 3}, timeout=30), range(8)))
    assert all(r.status_code == 200 for r in rs) and max(lm.batch_sizes) > 1
    r = httpx.post(srv.url + "/v1/completions", headers=h, json={"model": "fake-lm", "prompt": "poison", "max_tokens": 3})
    assert_error(r, 500, "model_error")
    assert httpx.post(srv.url + "/v1/completions", headers=h, json={"model": "fake-lm", "prompt": "fine", "max_tokens": 1}).status_code == 200
    m = httpx.get(srv.url + "/metrics").text
    assert "guimo_batch_size_bucket" in m and "guimo_queue_depth" in m and "guimo_batch_wait_seconds" in m


def test_health_and_readiness(make_server):
    srv = make_server()
    assert httpx.get(srv.url + "/healthz").json() == {"status": "ok"}
    r = httpx.get(srv.url + "/readyz")
    assert r.status_code == 200 and r.json()["models"] == ["fake-cls", "fake-lm", "fake-rec", "other-lm"]
