"""Fixtures for the server tests: fast fake predictors (exact, predictable outputs), a real
uvicorn server in a thread on a free loopback port, and key helpers over a temporary ledger."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the server needs the 'serve' extra: pip install 'guimo[serve]'")


# -- fake predictors: exact outputs so tests can assert them -------------------------------------


@dataclass
class FakeCompletion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


class FakeLM:
    """Tokens are whitespace-separated words; the completion repeats 'w0 w1 ...' up to max_tokens."""

    def __init__(self, delay_s: float = 0.0, fail_on: str | None = None) -> None:
        self.delay_s, self.fail_on = delay_s, fail_on
        self.batch_sizes: list[int] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream_batch(self, prompts, params, *, cancelled=None):
        self.batch_sizes.append(len(prompts))
        if self.fail_on is not None and any(self.fail_on in p for p in prompts):
            raise RuntimeError("boom")
        out = []
        for i, (prompt, kw) in enumerate(zip(prompts, params)):
            words, finish = [], "length"
            for t in range(kw["max_tokens"]):
                if self.delay_s:
                    time.sleep(self.delay_s)
                if cancelled is not None and cancelled(i):
                    finish = "cancelled"
                    break
                piece = f" w{t}"
                if kw.get("stop") and any(s in piece for s in kw["stop"]):
                    finish = "stop"
                    break
                words.append(piece)
                yield i, piece
            out.append(FakeCompletion("".join(words), self.count_tokens(prompt), len(words), finish))
        self.last_batch = out

    def embed(self, texts):
        return [[float(len(t)), 1.0, 0.0] for t in texts], [self.count_tokens(t) or 1 for t in texts]


class FakeRecommender:
    """Its catalogue is every id of the form itemN; other ids are unknown (named, as the real predictor does)."""

    def recommend(self, histories, k=10, exclude_seen=True):
        out = []
        for h in histories:
            items = [f"item{i}" for i in range(k + len(h)) if not (exclude_seen and f"item{i}" in h)][:k]
            out.append({"items": items, "scores": [1.0 / (1 + j) for j in range(len(items))], "unknown_items": self.unknown(h)})
        return out

    def unknown(self, history):
        return list(dict.fromkeys(str(i) for i in history if not (str(i).startswith("item") and str(i)[4:].isdigit())))

    def id_examples(self, n=3):
        return [f"item{i}" for i in range(n)]

    def unknown_message(self, unknown, total):
        return f"{len(unknown)} of {total} items are not in the catalogue: {', '.join(unknown)} (known item ids look like item0, item1, item2)"


class FakeClassifier:
    """E5's contract: label, calibrated confidence, out_of_scope and scores; "???" inputs are out of scope."""

    def classify(self, inputs):
        out = []
        for x in inputs:
            p_long = 0.8 if len(str(x)) > 5 else 0.3
            scores = {"long": p_long, "short": round(1 - p_long, 6)}
            label = max(scores, key=scores.get)
            out.append({"label": label, "confidence": scores[label], "out_of_scope": str(x) == "???", "scores": scores})
        return out


def fake_models(lm: FakeLM | None = None) -> dict:
    from guimo.serve.registry import ServedModel

    return {
        "fake-lm": ServedModel("fake-lm", "lm", "completion", lm or FakeLM()),
        "other-lm": ServedModel("other-lm", "lm", "completion", FakeLM()),
        "fake-rec": ServedModel("fake-rec", "recommend", "recommendation", FakeRecommender()),
        "fake-cls": ServedModel("fake-cls", "fraud", "classification", FakeClassifier()),
    }


# -- a real server in a thread ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThreadServer:
    def __init__(self, app) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None, access_log=False,
                                                    lifespan="on", timeout_graceful_shutdown=10))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "ThreadServer":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.sqlite'}"


@pytest.fixture
def engine(ledger_url):
    from guimo.serve.db import make_engine

    eng = make_engine(ledger_url)
    yield eng
    eng.dispose()


def settings(**kw):
    from guimo.serve.core.config import Settings

    base = dict(log_requests=False, max_wait_ms=2.0)
    return Settings(**{**base, **kw})


@pytest.fixture
def make_server(engine):
    """make_server(lm=..., **settings) -> a started ThreadServer over fake models and ``engine``."""
    from guimo.serve.main import create_app

    started = []

    def make(lm: FakeLM | None = None, served: dict | None = None, **kw) -> ThreadServer:
        app = create_app(settings(**kw), served=served if served is not None else fake_models(lm), engine=engine)
        srv = ThreadServer(app).__enter__()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.__exit__()


@pytest.fixture
def new_key(engine):
    from guimo.serve.keys import create_key

    def make(tenant: str = "acme", **kw) -> str:
        return create_key(engine, tenant=tenant, **kw)[0]

    return make
