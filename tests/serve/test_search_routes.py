"""/v1/collections and /v1/search over a real server: tenants, persistence, metering and bad input.

BM25-only collections (``dense: false``) keep these tests to seconds; the dense path through the
packaged encoder is tested once, where the encoder and the vector index are installed.
"""

from __future__ import annotations

import httpx
import pytest

pytest.importorskip("bm25s", reason="search collections need the 'search' extra: pip install 'guimo[search]'")

DOCS = [
    {"id": "d1", "text": "How do I reset my password after the account was locked?", "lang": "en", "year": 2020},
    {"id": "d2", "text": "Shipping to Norway takes five working days by post.", "lang": "en", "year": 2021},
    {"id": "d3", "text": "Returns are free within thirty days of delivery.", "lang": "en", "year": 2021},
    {"id": "d4", "text": "Das Passwort lässt sich in den Kontoeinstellungen zurücksetzen.", "lang": "de", "year": 2020},
]


def call(srv, key: str, method: str, path: str, **kw) -> httpx.Response:
    return httpx.request(method, srv.url + path, headers={"Authorization": f"Bearer {key}"}, timeout=60, **kw)


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    if code is not None:
        assert err["code"] == code, err
    return err


@pytest.fixture
def srv(make_server, tmp_path):
    return make_server(collections_dir=str(tmp_path / "collections"), max_inputs=4, max_documents=5)


def make_collection(srv, key: str, name: str = "faq", docs=DOCS) -> None:
    r = call(srv, key, "POST", "/v1/collections", json={"name": name, "dense": False})
    assert r.status_code == 200, r.text
    r = call(srv, key, "POST", f"/v1/collections/{name}/documents", json={"records": docs})
    assert r.status_code == 200, r.text


def test_create_add_search_delete_round_trip(srv, new_key):
    key = new_key()
    r = call(srv, key, "POST", "/v1/collections", json={"name": "faq", "dense": False})
    assert r.status_code == 200, r.text
    assert r.json() == {"object": "collection", "name": "faq", "documents": 0, "text_field": "text", "id_field": "id",
                        "dense": False, "encoder": None, "modes": ["bm25"]}
    r = call(srv, key, "POST", "/v1/collections/faq/documents", json={"records": DOCS})
    assert r.json()["added"] == 4 and r.json()["documents"] == 4

    r = call(srv, key, "POST", "/v1/search", json={"collection": "faq", "query": "reset password", "k": 2, "include_text": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["mode"] == "bm25" and body["usage"] == {"inputs": 1}
    top = body["data"][0]["hits"][0]
    assert top["id"] == "d1" and top["text"] == DOCS[0]["text"] and top["metadata"] == {"lang": "en", "year": 2020}

    # a filter keeps only matching documents; several queries answer in order
    r = call(srv, key, "POST", "/v1/search", json={"collection": "faq", "queries": ["password", "delivery returns"], "filter": {"year": 2021}})
    hits = r.json()["data"]
    assert hits[0]["hits"] == [] and [h["id"] for h in hits[1]["hits"]] == ["d3"]

    # re-adding an id replaces it; delete by ids
    call(srv, key, "POST", "/v1/collections/faq/documents", json={"records": [{"id": "d3", "text": "Refunds arrive in a week.", "lang": "en"}]})
    r = call(srv, key, "POST", "/v1/search", json={"collection": "faq", "query": "refunds"})
    assert [h["id"] for h in r.json()["data"][0]["hits"]] == ["d3"]
    r = call(srv, key, "POST", "/v1/collections/faq/documents/delete", json={"ids": ["d3", "nope"]})
    assert r.json()["deleted"] == 1 and r.json()["documents"] == 3
    r = call(srv, key, "POST", "/v1/search", json={"collection": "faq", "query": "refunds"})
    assert r.json()["data"][0]["hits"] == []

    assert [c["name"] for c in call(srv, key, "GET", "/v1/collections").json()["data"]] == ["faq"]
    assert call(srv, key, "GET", "/v1/collections/faq").json()["documents"] == 3
    r = call(srv, key, "DELETE", "/v1/collections/faq")
    assert r.json() == {"object": "collection.deleted", "name": "faq", "deleted": True}
    assert_error(call(srv, key, "GET", "/v1/collections/faq"), 404, "collection_not_found")
    assert call(srv, key, "GET", "/v1/collections").json()["data"] == []


def test_another_tenants_collection_is_404_like_a_missing_one(srv, new_key):
    mine, theirs = new_key("acme"), new_key("globex")
    make_collection(srv, mine)
    q = {"collection": "faq", "query": "password"}
    other = assert_error(call(srv, theirs, "POST", "/v1/search", json=q), 404, "collection_not_found")
    missing = assert_error(call(srv, theirs, "POST", "/v1/search", json={**q, "collection": "never"}), 404, "collection_not_found")
    assert other["message"].replace("faq", "X") == missing["message"].replace("never", "X")
    for method, path, kw in [("GET", "/v1/collections/faq", {}), ("DELETE", "/v1/collections/faq", {}),
                             ("POST", "/v1/collections/faq/documents", {"json": {"records": [{"id": "x", "text": "x"}]}}),
                             ("POST", "/v1/collections/faq/documents/delete", {"json": {"ids": ["d1"]}})]:
        assert_error(call(srv, theirs, method, path, **kw), 404, "collection_not_found")
    assert call(srv, theirs, "GET", "/v1/collections").json()["data"] == []
    # the other tenant may use the same name for its own collection, and the two stay apart
    make_collection(srv, theirs, docs=[{"id": "g1", "text": "password manager"}])
    assert [h["id"] for h in call(srv, theirs, "POST", "/v1/search", json=q).json()["data"][0]["hits"]] == ["g1"]
    assert call(srv, mine, "POST", "/v1/search", json=q).json()["data"][0]["hits"][0]["id"] == "d1"
    # a name that would leave the tenant's folder cannot exist
    assert_error(call(srv, mine, "GET", "/v1/collections/.."), 404)


def test_bad_input(srv, new_key):
    key = new_key()
    make_collection(srv, key)
    search = lambda **b: call(srv, key, "POST", "/v1/search", json={"collection": "faq", **b})  # noqa: E731
    assert_error(search(query="   "), 400, "empty_query")
    assert_error(search(queries=["ok", ""]), 400, "empty_query")["param"] == "queries[1]"
    assert_error(search(), 400)
    assert_error(search(queries=["a"] * 5), 413, "too_many_inputs")
    err = assert_error(search(query="password", filter={"colour": "red"}), 400, "unknown_field")
    assert "colour" in err["message"] and "lang, year" in err["message"]
    assert_error(search(query="password", mode="dense"), 400)

    docs = lambda records: call(srv, key, "POST", "/v1/collections/faq/documents", json={"records": records})  # noqa: E731
    err = assert_error(docs([{"id": "x", "body": "no text field"}]), 400, "missing_field")
    assert err["param"] == "records[0].text" and "'body'" in err["message"]
    assert_error(docs([{"text": "no id"}]), 400, "missing_field")
    assert_error(docs([{"id": "x", "text": 3}]), 400, "invalid_value")
    assert_error(docs([{"id": str(i), "text": "t"} for i in range(6)]), 413, "too_many_inputs")
    assert_error(docs([{"id": "x", "text": "a"}, {"id": "x", "text": "b"}]), 400)
    assert call(srv, key, "GET", "/v1/collections/faq").json()["documents"] == 4  # nothing half-written

    assert_error(call(srv, key, "POST", "/v1/collections", json={"name": "faq", "dense": False}), 409, "collection_exists")
    assert_error(call(srv, key, "POST", "/v1/collections", json={"name": "../up", "dense": False}), 422)
    assert_error(call(srv, key, "POST", "/v1/collections", json={"name": "d", "dense": True}), 400, "no_encoder")
    assert_error(call(srv, key, "POST", "/v1/collections", json={"name": "d", "dense": False, "text_field": "id"}), 400)


def test_every_call_is_metered_and_priced(srv, new_key):
    key = new_key()
    make_collection(srv, key)  # create (0 units) + add (4 documents)
    call(srv, key, "POST", "/v1/search", json={"collection": "faq", "queries": ["password", "shipping", "returns"]})
    call(srv, key, "POST", "/v1/collections/faq/documents/delete", json={"ids": ["d1"]})
    lines = {(ln["model"], ln["endpoint"]): ln for ln in call(srv, key, "GET", "/v1/usage").json()["data"]}
    assert lines[("faq", "search")]["units"] == 3 and lines[("faq", "search")]["requests"] == 1
    assert lines[("faq", "collections")]["units"] == 5 and lines[("faq", "collections")]["requests"] == 3
    # priced per unit ([requests.per_1k_units] in guimo/prices.toml), nothing per request
    from guimo.serve.billing import load_prices

    units = load_prices().requests.per_1k_units
    assert lines[("faq", "search")]["cost"] == pytest.approx(3 * units["search"] / 1000)
    assert lines[("faq", "collections")]["cost"] == pytest.approx(5 * units["collections"] / 1000)


def test_quota_applies_to_search(make_server, new_key, tmp_path):
    srv = make_server(collections_dir=str(tmp_path / "c"))
    key = new_key(monthly_quota=5)
    make_collection(srv, key)  # 4 units
    assert call(srv, key, "POST", "/v1/search", json={"collection": "faq", "query": "password"}).status_code == 200  # 5
    assert_error(call(srv, key, "POST", "/v1/search", json={"collection": "faq", "query": "password"}), 429, "insufficient_quota")


def test_collections_persist_across_restarts(make_server, new_key, tmp_path):
    key = new_key()
    first = make_server(collections_dir=str(tmp_path / "c"))
    make_collection(first, key)
    first.__exit__()
    second = make_server(collections_dir=str(tmp_path / "c"))
    r = call(second, key, "POST", "/v1/search", json={"collection": "faq", "query": "shipping norway"})
    assert r.json()["data"][0]["hits"][0]["id"] == "d2"
    assert call(second, key, "GET", "/v1/collections/faq").json()["documents"] == 4


def test_searches_answer_while_writes_are_saving(srv, new_key):
    """Eight adds, the first held in the middle of its save (the real save, gated at its start) and
    the others queued behind it, do not stop searches: writes run on the store's own threads, never
    on the event loop nor on the threads searches use (eight waiting writers would fill those)."""
    import threading

    key = new_key()
    make_collection(srv, key)
    store = srv.server.config.app.state.guimo.collections
    handle = next(h for (t, n), h in store._open.items() if n == "faq")
    saving, release = threading.Event(), threading.Event()
    real_save = handle.collection._save

    def gated_save():
        saving.set()
        assert release.wait(60)
        real_save()

    handle.collection._save = gated_save
    out: dict[int, httpx.Response] = {}

    def add(i: int) -> None:
        out[i] = call(srv, key, "POST", "/v1/collections/faq/documents", json={"records": [{"id": f"g{i}", "text": f"gift card {i}"}]})

    writers = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for w in writers:
        w.start()
    try:
        assert saving.wait(30)
        for q in ("password", "shipping", "returns"):
            r = call(srv, key, "POST", "/v1/search", json={"collection": "faq", "query": q})
            assert r.status_code == 200 and r.json()["data"][0]["hits"], r.text
        assert call(srv, key, "GET", "/v1/collections").status_code == 200
        assert all(w.is_alive() for w in writers)  # every write is still held behind the gated save
    finally:
        release.set()
        for w in writers:
            w.join(60)
    assert sorted(r.status_code for r in out.values()) == [200] * 8
    r = call(srv, key, "POST", "/v1/search", json={"collection": "faq", "query": "gift card", "k": 20})
    assert len(r.json()["data"][0]["hits"]) == 8
    assert call(srv, key, "GET", "/v1/collections/faq").json()["documents"] == 12
