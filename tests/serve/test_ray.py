"""`guimo serve --ray`: deployment options, the missing-extra error, and (slow) two real Ray Serve
replicas over one SQLite ledger, each 2xx billed exactly once."""

from __future__ import annotations

import concurrent.futures as cf
import os
import subprocess
import sys
from collections import Counter

import httpx
import pytest

from tests.serve.conftest import free_port, settings


def test_deployment_options_fixed_replicas_and_autoscaling():
    from guimo.serve.ray_app import deployment_options

    s = settings(db_url="sqlite:////tmp/x.sqlite", max_batch=16, queue_size=100)
    fixed = deployment_options(s, replicas=3, replica_cpus=0.5)
    assert fixed["num_replicas"] == 3 and "autoscaling_config" not in fixed
    assert fixed["ray_actor_options"]["num_cpus"] == 0.5
    assert fixed["max_ongoing_requests"] == 116  # Ray's default of 5 in flight would starve the batcher
    env = fixed["ray_actor_options"]["runtime_env"]["env_vars"]
    assert env["GUIMO_SERVE_DB_URL"] == "sqlite:////tmp/x.sqlite" and env["GUIMO_SERVE_MAX_BATCH"] == "16"
    assert env["GUIMO_SERVE_ECHO_REQUEST_ID"] == "false"  # Ray's proxy echoes the id; twice would be a duplicate header

    auto = deployment_options(s, replicas=1, autoscale=(1, 4))
    assert "num_replicas" not in auto
    assert auto["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 4, "initial_replicas": 1, "target_ongoing_requests": 32}
    assert "num_gpus" not in auto["ray_actor_options"]  # on the CPU, Ray hides the GPUs from the replicas


def test_gpu_replicas_reserve_their_share_and_cuda_without_one_is_refused():
    from guimo.errors import GuimoError
    from guimo.serve.ray_app import deployment_options

    half = deployment_options(settings(device="cuda"), replicas=2, replica_gpus=0.5)
    assert half["ray_actor_options"]["num_gpus"] == 0.5
    assert half["ray_actor_options"]["runtime_env"]["env_vars"]["GUIMO_SERVE_DEVICE"] == "cuda"
    with pytest.raises(GuimoError, match="needs --replica-gpus"):
        deployment_options(settings(device="cuda:0"), replicas=2)
    with pytest.raises(GuimoError, match="0 or more"):
        deployment_options(settings(), replica_gpus=-1)


def test_settings_travel_through_the_environment(monkeypatch):
    from guimo.serve.core.config import Settings

    s = settings(runs=["a=/x/y", "/z"], db_url="sqlite:////tmp/l.sqlite", batching=False, max_wait_ms=2.5)
    for name, value in s.to_env().items():
        monkeypatch.setenv(name, value)
    assert Settings() == s


@pytest.mark.parametrize("text", ["4", "a,b", "3,1", "0,0", "-1,2"])
def test_bad_autoscale_is_one_line(text):
    from guimo.errors import GuimoError
    from guimo.serve.ray_app import parse_autoscale

    with pytest.raises(GuimoError, match="autoscale"):
        parse_autoscale(text)
    assert parse_autoscale("0,3") == (0, 3)


def test_missing_ray_names_the_extra(monkeypatch):
    from guimo.errors import GuimoError
    from guimo.serve import ray_app

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(GuimoError, match=r"pip install 'guimo\[ray\]'"):
        ray_app.import_ray()


def test_guimo_and_the_server_never_import_ray():
    code = ("import sys, guimo, guimo.cli.serve, guimo.serve.ray_app, guimo.serve.main; "
            "assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_refuses_replicas_without_ray(capsys):
    from guimo.cli import main

    assert main(["serve", "--replicas", "2", "does-not-matter"]) == 2
    assert "need --ray" in capsys.readouterr().err
    assert main(["serve", "--ray", "--workers", "2", "does-not-matter"]) == 2
    assert main(["serve", "--replica-gpus", "1", "does-not-matter"]) == 2


PG_URL = os.environ.get("GUIMO_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[
    pytest.mark.postgres, pytest.mark.skipif(not PG_URL, reason="GUIMO_TEST_POSTGRES_URL is not set (.ci/run starts a PostgreSQL server)")])])
def ledger(request, ledger_url):
    """(URL, engine) of an empty ledger: the SQLite file of the test, or the PostgreSQL test database."""
    from guimo.serve.db import make_engine
    from guimo.serve.models import Base

    url = ledger_url if request.param == "sqlite" else PG_URL
    eng = make_engine(url)
    if request.param == "postgres":
        Base.metadata.drop_all(eng)
        Base.metadata.create_all(eng)
    yield url, eng
    eng.dispose()


@pytest.mark.slow
def test_two_ray_replicas_share_one_ledger_and_bill_each_2xx_once(tiny_lm_run, ledger):
    """Starts a local Ray cluster (~20 s here), two replicas of half a CPU each, one ledger."""
    pytest.importorskip("ray", reason="needs the 'ray' extra: pip install 'guimo[ray]'")
    from guimo.serve import ray_app
    from guimo.serve.keys import create_key
    from guimo.serve.models import UsageEvent

    url, engine = ledger
    key = create_key(engine, tenant="acme")[0]
    url = ray_app.start(settings(runs=[f"tiny={tiny_lm_run}"], db_url=url, port=free_port()), replicas=2, replica_cpus=0.5)
    try:
        assert ray_app.replica_count() == {"RUNNING": 2}

        def ask(rid: str) -> tuple[str, int]:
            r = httpx.post(url + "/v1/completions", timeout=120, headers={"Authorization": f"Bearer {key}", "X-Request-ID": rid},
                           json={"model": "tiny", "prompt": f"def f{rid[-1]}(", "max_tokens": 5, "temperature": 0})
            if r.status_code == 200:
                body = r.json()
                assert body["usage"]["completion_tokens"] == 5 and body["choices"][0]["finish_reason"] == "length"
                assert r.headers.get_list("x-request-id") == [rid]  # echoed once, by Ray's proxy
            return rid, r.status_code

        ids = [f"ray-{i:03d}" for i in range(24)]
        with cf.ThreadPoolExecutor(6) as pool:
            codes = dict(pool.map(ask, ids))
        assert set(codes.values()) == {200}, codes
        # a retried id is refused by whichever replica gets it: the ledger is shared
        with cf.ThreadPoolExecutor(4) as pool:
            assert set(dict(pool.map(ask, ids[:8])).values()) == {409}
        r = httpx.post(url + "/v1/completions", json={"model": "tiny", "prompt": "x"}, headers={"Authorization": "Bearer gm-nope"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        models = httpx.get(url + "/v1/models", headers={"Authorization": f"Bearer {key}"}).json()
        assert [m["id"] for m in models["data"]] == ["tiny"]
    finally:
        ray_app.stop()

    from sqlalchemy import select
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        events = Counter(s.scalars(select(UsageEvent.request_id)))
    assert events == Counter({rid: 1 for rid, code in codes.items() if code == 200})
