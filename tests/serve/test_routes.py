"""The route table follows the scenarios' ``serve_kind``: a scenario defined only here, with
serve_kind "classification", gets /v1/classifications through the real loading path (scenario
registry -> run directory -> predictor -> routes), and no model kind gets routes it cannot serve."""

from __future__ import annotations

import httpx
import pytest

from tests.serve.conftest import FakeClassifier, ThreadServer, settings


class ToyClassificationScenario:
    """Just enough of the Scenario protocol for serving: a name, a serve_kind and a predictor."""

    name = "toy"
    serve_kind = "classification"

    def load_predictor(self, run, device: str = "cpu") -> FakeClassifier:
        return FakeClassifier()


SCENARIO = ToyClassificationScenario()


@pytest.fixture
def toy_run(tmp_path, monkeypatch):
    """A run directory of the test-only scenario, registered the way real scenarios are (name -> module)."""
    from guimo import scenarios
    from guimo.pipeline.rundir import RunDir

    monkeypatch.setitem(scenarios.SCENARIOS, "toy", __name__)
    return RunDir.create(tmp_path / "toy-run", "toy", {}).path


def paths(app) -> set[str]:
    return {getattr(r, "path", None) for r in app.router.routes}


def test_a_classification_scenario_gets_the_classifications_route(toy_run, engine, new_key):
    from guimo.serve.main import create_app

    app = create_app(settings(runs=[f"toy={toy_run}"]), engine=engine)
    assert "/v1/classifications" in paths(app)
    assert not {"/v1/completions", "/v1/embeddings", "/v1/recommendations"} & paths(app)  # no kind, no route
    with ThreadServer(app) as srv:
        h = {"Authorization": f"Bearer {new_key()}"}
        assert "/v1/classifications" in httpx.get(srv.url + "/openapi.json").json()["paths"]
        model = httpx.get(srv.url + "/v1/models", headers=h).json()["data"][0]
        assert (model["id"], model["serve_kind"], model["endpoints"]) == ("toy", "classification", ["classifications"])
        r = httpx.post(srv.url + "/v1/classifications", headers=h, json={"model": "toy", "input": ["hi", "a long text"]})
        assert r.status_code == 200, r.text
        assert [d["label"] for d in r.json()["data"]] == ["short", "long"] and r.json()["usage"] == {"inputs": 2}
        # the routes of other kinds are absent, not merely refusing
        assert httpx.post(srv.url + "/v1/completions", headers=h, json={"model": "toy", "prompt": "x"}).status_code == 404


def test_a_scenario_without_a_known_serve_kind_is_refused_in_one_line(toy_run, monkeypatch):
    from guimo.errors import GuimoError
    from guimo.serve.registry import load_models

    monkeypatch.setattr(SCENARIO, "serve_kind", "telepathy")
    with pytest.raises(GuimoError, match="cannot be served .*telepathy"):
        load_models([str(toy_run)])


def test_every_serve_kind_maps_to_existing_routers():
    from guimo.serve.main import ROUTERS
    from guimo.serve.registry import ENDPOINTS

    assert {e for eps in ENDPOINTS.values() for e in eps} == set(ROUTERS)
