"""/v1/assistant over a tiny real `assistant` run, served as `guimo serve` serves it: typed text and an
uploaded WAV change the caller's home only (each tenant its own state file), a dry run changes nothing,
out-of-scope text gets a clarifying answer, every turn is metered and priced in the ledger, and bad input
(empty text, a broken or empty WAV, an oversized upload, a model that is not an assistant) is a 4xx JSON error."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import tiny_assistant_run
from tests.conftest import shared_data
from tests.serve.conftest import FakeClassifier


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return tiny_assistant_run(tmp_path_factory)


@pytest.fixture
def served(run):
    from guimo.serve.registry import ServedModel, load_models

    models = load_models([f"home={run}"])
    models["cls"] = ServedModel("cls", "support", "classification", FakeClassifier())
    return models


def post(srv, key: str, body: dict | None = None, **kw) -> httpx.Response:
    return httpx.post(srv.url + "/v1/assistant", headers={"Authorization": f"Bearer {key}"}, json=body, timeout=120, **kw)


def tenant_state(tmp_path: Path, tenant_id: int) -> dict:
    from guimo.assistant.home import Home
    from guimo.assistant.state import HomeState

    with HomeState(tmp_path / "assistant" / str(tenant_id) / "state.sqlite", Home.load()) as s:
        return s.all()


def tenant_id(engine, key: str) -> int:
    from guimo.serve.keys import authenticate

    return authenticate(engine, key).tenant_id


def test_text_acts_on_the_callers_home_only(make_server, new_key, served, engine, tmp_path):
    srv = make_server(served=served, assistant_dir=str(tmp_path / "assistant"))
    a, b = new_key("acme"), new_key("globex")
    r = post(srv, a, {"model": "home", "text": "turn on the kitchen light"})
    assert r.status_code == 200, r.text
    turn = r.json()
    assert turn["object"] == "assistant.turn" and turn["commands"][0]["intent"] == "turn_on"
    assert turn["actions"][0] | {"state": None} == {"status": "done", "device": "kitchen_light", "changes": {"on": True},
                                                   "state": None, "reply": turn["actions"][0]["reply"], "command": 0, "group": []}
    assert turn["states"]["kitchen_light"]["on"] is True and turn["reply"]
    assert tenant_state(tmp_path, tenant_id(engine, a))["kitchen_light"]["on"] is True
    # tenant B's home is its own: its kitchen light is still off, and B's command does not reach A's
    r = post(srv, b, {"model": "home", "text": "lock the front door"})
    assert r.status_code == 200 and r.json()["states"]["front_door"]["locked"] is True
    sa, sb = tenant_state(tmp_path, tenant_id(engine, a)), tenant_state(tmp_path, tenant_id(engine, b))
    assert sb["kitchen_light"]["on"] is False and sa["front_door"]["locked"] is False

    r = post(srv, a, {"model": "home", "text": "close the blinds", "dry_run": True})
    assert r.json()["actions"][0]["status"] == "dry_run" and r.json()["dry_run"] is True
    assert tenant_state(tmp_path, tenant_id(engine, a))["living_room_blinds"]["position"] == 100
    r = post(srv, a, {"model": "home", "text": "make me a cup of coffee"})
    assert r.status_code == 200 and [x["status"] for x in r.json()["actions"]] in (["rejected"], ["clarify"]) and r.json()["reply"]

    usage = httpx.get(srv.url + "/v1/usage", headers={"Authorization": f"Bearer {a}"}).json()
    (row,) = [d for d in usage["data"] if d["endpoint"] == "assistant"]
    assert row["requests"] == 3 and row["units"] == 3 and row["cost"] == pytest.approx(3 * 0.20 / 1000)


def test_an_uploaded_wav_acts(make_server, new_key, served, engine, tmp_path):
    srv = make_server(served=served, assistant_dir=str(tmp_path / "assistant"))
    key = new_key()
    wav = shared_data("asr_smoke", "festival_slt_hts", "cmd_08.wav")  # "unlock the back door"
    r = post(srv, key, data={"model": "home"}, files={"file": ("cmd_08.wav", wav.read_bytes(), "audio/wav")})
    assert r.status_code == 200, r.text
    turn = r.json()
    assert "back door" in turn["transcript"] and turn["asr"]["mode"] in ("grammar", "lm")
    assert turn["usage"]["audio_seconds"] > 0.5 and {"asr", "nlu", "device"} <= set(turn["timings_ms"])
    assert tenant_state(tmp_path, tenant_id(engine, key))["back_door"]["locked"] is False  # locked at first


def test_a_tenants_own_home_toml_replaces_the_packaged_home_for_that_tenant(make_server, new_key, served, engine, tmp_path):
    from guimo.assistant.home import Home

    key = new_key("smallflat")
    folder = tmp_path / "assistant" / str(tenant_id(engine, key))
    folder.mkdir(parents=True)
    (folder / "home.toml").write_text('''
[rooms.kitchen]
en = ["kitchen"]
zh = ["厨房"]

[devices.kitchen_light]
room = "kitchen"
type = "light"
en = ["kitchen light"]
capabilities = { brightness = { min = 0, max = 100 } }
state = { on = false, brightness = 80 }
''', encoding="utf-8")
    srv = make_server(served=served, assistant_dir=str(tmp_path / "assistant"))
    r = post(srv, key, {"model": "home", "text": "lock the front door"})  # a device this home does not have
    assert r.status_code == 200 and [a["status"] for a in r.json()["actions"]] == ["clarify"] and not r.json()["states"]
    states = post(srv, key, {"model": "home", "text": "turn on the kitchen light"}).json()["states"]
    assert list(states) == ["kitchen_light"] and states["kitchen_light"]["on"] is True
    other = new_key("bigflat")  # without a home.toml of its own: the packaged home
    assert post(srv, other, {"model": "home", "text": "lock the front door"}).json()["states"]["front_door"]["locked"] is True
    assert len(Home.load(folder / "home.toml").devices) == 1


def test_bad_requests_are_4xx_json_errors(make_server, new_key, served, tmp_path):
    srv = make_server(served=served, assistant_dir=str(tmp_path / "assistant"), max_body_bytes=64 * 1024)
    key = new_key()

    def error(r: httpx.Response, status: int) -> dict:
        assert r.status_code == status, r.text
        return r.json()["error"]

    assert error(post(srv, key, {"model": "home", "text": "  "}), 400)["param"] == "text"
    assert error(post(srv, key, {"model": "home"}), 422)["code"] == "missing_field"
    assert error(post(srv, key, {"model": "cls", "text": "turn on the light"}), 400)["code"] == "unsupported_endpoint"
    assert error(post(srv, key, {"model": "nope", "text": "turn on the light"}), 404)["code"] == "model_not_found"
    upload = lambda data, name="x.wav": post(srv, key, data={"model": "home"}, files={"file": (name, data, "audio/wav")})  # noqa: E731
    e = error(upload(b"RIFF\x00\x00\x00\x00WAVEjunkjunk", "broken.wav"), 400)
    assert e["code"] == "invalid_audio" and "broken.wav" in e["message"]
    assert error(upload(b""), 400)["code"] == "invalid_audio"
    assert error(upload(b"\x00" * (80 * 1024)), 413)["code"] == "request_too_large"
    assert error(post(srv, key, data={"model": "home"}), 400)["param"] == "file"
    # none of it was metered
    usage = httpx.get(srv.url + "/v1/usage", headers={"Authorization": f"Bearer {key}"}).json()
    assert [d for d in usage["data"] if d["endpoint"] == "assistant"] == []
