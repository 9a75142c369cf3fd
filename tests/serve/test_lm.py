"""The real language model behind the server: batched decoding equals one-by-one decoding, and
the official openai client gets exactly what the predictor computes."""

from __future__ import annotations

import pytest

from tests.serve.conftest import ThreadServer, settings


@pytest.fixture(scope="session")
def lm_predictor(tiny_lm_run):
    from guimo.pipeline.rundir import RunDir
    from guimo.scenarios import get

    return get("lm").load_predictor(RunDir.open(tiny_lm_run))


def test_batched_decoding_matches_unbatched(lm_predictor):
    p = lm_predictor
    prompts = ["def ", "import os\n", "class Foo(object):\n    def __init__(self", "x", "for i in range(10):\n", "def ", "y", "import sys\n"]  # equal lengths prefill together
    for kw in (dict(max_tokens=12, temperature=0), dict(max_tokens=8, temperature=0.9, seed=7, top_k=40, top_p=0.9),
               dict(max_tokens=20, temperature=0, stop=["\n", "("])):
        assert p.complete_batch(prompts, **kw) == [p.complete(q, **kw) for q in prompts]
    # rows with their own settings, one too long to share the window (it runs alone afterwards)
    params = [dict(max_tokens=5, temperature=0), dict(max_tokens=9, temperature=0, seed=1), dict(max_tokens=p.max_len, temperature=0)]
    pieces: dict[int, str] = {}
    for i, piece in p.stream_batch(prompts[:3], params):
        pieces[i] = pieces.get(i, "") + piece
    expected = [p.complete(q, **kw) for q, kw in zip(prompts[:3], params)]
    assert p.last_batch == expected and [pieces.get(i, "") for i in range(3)] == [c.text for c in expected]
    # a cancelled row stops at once and reports the tokens it produced
    for _ in p.stream_batch(["def ", "def "], [dict(max_tokens=10, temperature=0)] * 2, cancelled=lambda i: i == 1):
        pass
    assert p.last_batch[1].finish_reason == "cancelled" and p.last_batch[1].completion_tokens == 1
    assert p.last_batch[0].completion_tokens == 10


def test_openai_client_against_the_real_model(tiny_lm_run, lm_predictor, engine, new_key):
    openai = pytest.importorskip("openai")
    from guimo.serve.main import create_app
    from guimo.serve.registry import ServedModel

    served = {"tiny": ServedModel("tiny", "lm", "completion", lm_predictor)}
    with ThreadServer(create_app(settings(), served=served, engine=engine)) as srv:
        c = openai.OpenAI(base_url=srv.url + "/v1", api_key=new_key(), max_retries=0)
        out = c.completions.create(model="tiny", prompt="def main(", max_tokens=10, temperature=0)
        want = lm_predictor.complete("def main(", max_tokens=10, temperature=0)
        assert out.choices[0].text == want.text and out.usage.completion_tokens == want.completion_tokens
        assert out.usage.prompt_tokens == want.prompt_tokens
        streamed = c.completions.create(model="tiny", prompt="def main(", max_tokens=10, temperature=0, stream=True)
        assert "".join(ch.choices[0].text for ch in streamed if ch.choices) == want.text
        emb = c.embeddings.create(model="tiny", input=["import os", "import sys"])
        v = emb.data[0].embedding
        assert len(v) == lm_predictor.model.cfg.d_model and abs(sum(x * x for x in v) - 1) < 1e-4
        assert emb.usage.prompt_tokens == sum(lm_predictor.count_tokens(t) for t in ["import os", "import sys"])
