"""Schemathesis fuzzes the API from its own OpenAPI schema (bounded examples, fake models):
no request, however odd, gets a 5xx, and every error uses the OpenAI error format."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st  # noqa: E402

from tests.serve.conftest import ThreadServer, fake_models, settings  # noqa: E402


def test_fuzz_api_no_server_errors_and_error_format(engine, new_key):
    import requests

    from guimo.serve.main import create_app

    app = create_app(settings(max_tokens_limit=64), served=fake_models(), engine=engine)
    schema = schemathesis.openapi.from_dict(app.openapi())
    strategies = [op.ok().as_strategy() for op in schema.get_all_operations()]
    assert len(strategies) >= 9  # models x2, completions, embeddings, recommendations, classifications, usage, health x2, metrics
    key = new_key(rpm=100_000, tpm=10**9)
    seen: dict[int, int] = {}

    with ThreadServer(app) as srv, requests.Session() as session:

        @hsettings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(strategies), with_key=st.booleans())
        def fuzz(case, with_key):
            headers = {"Authorization": f"Bearer {key}"} if with_key else {}
            r = case.call(base_url=srv.url, session=session, headers=headers)
            seen[r.status_code] = seen.get(r.status_code, 0) + 1
            assert r.status_code < 500 or r.status_code == 503, (r.status_code, r.text, case.path, case.body)
            content_type = (r.headers.get("content-type") or [""])[0]  # schemathesis: header -> list of values
            if r.status_code >= 400 and content_type.startswith("application/json"):
                err = r.json().get("error")
                if case.path != "/readyz":
                    assert isinstance(err, dict) and set(err) == {"message", "type", "param", "code"}, r.text

        fuzz()
    assert seen.get(200, 0) > 0 and any(400 <= s < 500 for s in seen), seen
