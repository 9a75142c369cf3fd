"""/v1/recommendations over a real (tiny) recommend run: the server's answers, batched with other
requests, equal the predictor's own, seen items are left out, and each request is billed once."""

from __future__ import annotations

import concurrent.futures as cf

import httpx
import pytest

from tests.serve.conftest import ThreadServer, settings

TINY = ["data.generator.chain_groups=10", "data.generator.categories=5", "data.generator.users=150", "data.generator.items=100",
        "data.generator.interactions=3000", "model.max_len=12", "model.d_model=16", "model.loss=ce", "train.max_steps=20",
        "train.eval_every=20", "train.checkpoint_every=20", "train.batch_size=32", "train.warmup_steps=2", "train.patience=0"]


@pytest.fixture(scope="module")
def rec_run(tmp_path_factory):
    from guimo.config import apply_overrides
    from guimo.pipeline.runner import run_pipeline
    from guimo.scenarios import get

    scenario = get("recommend")
    cfg = apply_overrides(scenario.config_cls(), TINY, scenario.presets)
    return run_pipeline("recommend", cfg, tmp_path_factory.mktemp("rec") / "tiny-rec", quiet=True).path


def test_real_recommender_answers_like_its_predictor_and_is_billed_once(rec_run, engine, new_key):
    from guimo.serve.ledger import usage
    from guimo.serve.main import create_app
    from guimo.serve.registry import load_models

    served = load_models([f"rec={rec_run}"])
    predictor = served["rec"].predictor
    items = predictor.item_ids
    histories = [[items[(7 * j + t) % len(items)] for t in range(1 + j % 5)] for j in range(12)]
    key = new_key()
    with ThreadServer(create_app(settings(max_wait_ms=20.0), served=served, engine=engine)) as srv:

        def ask(j: int) -> dict:
            body = {"model": "rec", "histories": [histories[j], histories[j - 1]], "k": 5 + j % 3, "exclude_seen": j % 4 != 0}
            r = httpx.post(srv.url + "/v1/recommendations", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=60)
            assert r.status_code == 200, r.text
            return {"body": body, "out": r.json()}

        with cf.ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(ask, range(12)))
        batches = srv.server.config.app.state.guimo.metrics.batch_size.labels("rec")._sum.get()

    for a in answers:
        b = a["body"]
        want = predictor.recommend(b["histories"], k=b["k"], exclude_seen=b["exclude_seen"])
        got = a["out"]["data"]
        assert [d["items"] for d in got] == [w["items"] for w in want]
        for d, w in zip(got, want):  # batched with other histories: same scores up to float rounding
            assert d["scores"] == pytest.approx(w["scores"], abs=1e-5)
        assert all(len(d["items"]) == b["k"] for d in got) and a["out"]["usage"] == {"inputs": 2}
        if b["exclude_seen"]:
            assert all(not set(d["items"]) & set(h) for d, h in zip(got, b["histories"]))
    assert batches == 12  # every request went through the batcher
    (row,) = usage(engine, tenant="acme")
    assert (row.model, row.endpoint, row.requests, row.units) == ("rec", "recommendations", 12, 24)


def test_unknown_items_are_named_and_bad_k_is_a_422(rec_run, engine, new_key):
    from guimo.serve.ledger import usage
    from guimo.serve.main import create_app
    from guimo.serve.registry import load_models

    served = load_models([f"rec={rec_run}"])
    items = served["rec"].predictor.item_ids
    h = {"Authorization": f"Bearer {new_key()}"}
    with ThreadServer(create_app(settings(), served=served, engine=engine)) as srv:
        url = srv.url + "/v1/recommendations"
        r = httpx.post(url, headers=h, json={"model": "rec", "histories": [[items[0], "no-such-item"], [items[1]]], "k": 3})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["data"][0]["items"] == served["rec"].predictor.recommend([[items[0]]], k=3)[0]["items"]
        assert [d["unknown_items"] for d in body["data"]] == [["no-such-item"], []]
        examples = served["rec"].predictor.id_examples()
        assert len(examples) == 3 and set(examples) <= set(items) and ", ".join(examples) in body["hint"]
        r = httpx.post(url, headers=h, json={"model": "rec", "histories": [[items[1]]], "k": 3})
        assert r.status_code == 200 and r.json()["hint"] is None and r.json()["data"][0]["unknown_items"] == []

        # the README's mistake: ids of another scheme (12 for i00012) -> an error, not the popular items
        r = httpx.post(url, headers=h, json={"model": "rec", "histories": [[items[0]], ["12", "7", "301"]], "k": 3})
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert (err["code"], err["param"]) == ("unknown_items", "histories[1]")
        assert "12, 7, 301" in err["message"] and ", ".join(examples) in err["message"]
        r = httpx.post(url, headers=h, json={"model": "rec", "histories": [["12", "7"]], "k": 3, "allow_unknown": True})
        assert r.status_code == 200 and r.json()["data"][0]["unknown_items"] == ["12", "7"]
        assert r.json()["data"][0]["items"] == served["rec"].predictor.recommend([[]], k=3)[0]["items"]  # popularity

        r = httpx.post(url, headers=h, json={"model": "rec", "histories": [[items[0]]], "k": 0})
        assert r.status_code == 422 and r.json()["error"]["param"] in ("k", "body.k", None)
    # the refused request was not billed: 3 answered requests, 2 + 1 + 1 histories
    (row,) = usage(engine, tenant="acme")
    assert (row.requests, row.units) == (3, 4)


def test_serving_a_run_loads_no_training_code(rec_run):
    """What tests/test_imports.py reads from the source, checked in a fresh interpreter: loading and
    asking a recommend model imports neither the training loop, nor optimize, nor the pipeline runner."""
    import json
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "from guimo.serve.registry import load_models\n"
        f"m = load_models(['rec={rec_run}'])\n"
        "m['rec'].predictor.recommend([[m['rec'].predictor.item_ids[0]]], k=2)\n"
        "print(json.dumps(sorted(x for x in sys.modules if x.startswith('guimo'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.splitlines()[-1])
    assert "guimo.inference.recommend" in loaded and "guimo.models.load" in loaded
    training = [m for m in loaded if m.startswith(("guimo.train.", "guimo.optimize", "guimo.pipeline.runner", "guimo.scale"))]
    assert training == ["guimo.train.config"], training  # the TrainConfig dataclass a run's config holds
