"""/v1/classifications with table rows: a real TabularPredictor (a fitted TableEncoder, an FT-Transformer), rows
checked before batching (400s naming the row and the column), and "explain": true returning per-row attributions
that satisfy completeness; without explain the answer keeps the text classifiers' shape."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

pd = pytest.importorskip("pandas")


def post(srv, key: str, body: dict) -> httpx.Response:
    return httpx.post(srv.url + "/v1/classifications", headers={"Authorization": f"Bearer {key}"}, json=body, timeout=120)


@pytest.fixture(scope="module")
def predictor():
    """Scores rows of (age, amount, channel); weights random but seeded: the route, not the model, is under test."""
    import torch

    from guimo.data.tabular import TableEncoder, infer_columns
    from guimo.inference.tabular import TabularPredictor
    from guimo.models.tabular import FTTransformer, TabularConfig

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"age": rng.integers(18, 80, 200), "amount": rng.gamma(2.0, 50.0, 200).round(2),
                       "channel": rng.choice(["web", "shop", "phone"], 200), "bad": rng.integers(0, 2, 200)})
    columns = infer_columns(df, "bad")
    encoder = TableEncoder.fit(df, columns)
    torch.manual_seed(0)
    model = FTTransformer(TabularConfig(n_num=encoder.n_num, cat_cardinalities=encoder.cardinalities, d_model=16, n_layer=1, n_head=2))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)  # outputs that move with the inputs
    table = {"task": "binary", "target": "bad", "classes": [0, 1]}
    return TabularPredictor(model.eval(), encoder, table, None)


@pytest.fixture
def srv(make_server, predictor):
    from guimo.serve.registry import ServedModel

    return make_server(served={"risk": ServedModel("risk", "credit", "classification", predictor)})


ROWS = [{"age": 41, "amount": 120.5, "channel": "web"}, {"age": 23, "amount": 900.0, "channel": "phone"}]


def test_rows_are_classified_with_the_text_classifiers_shape(srv, new_key, predictor):
    r = post(srv, new_key(), {"model": "risk", "input": ROWS})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [set(d) for d in data] == [{"index", "label", "confidence", "out_of_scope", "scores"}] * 2  # no explanation field
    assert [d["label"] for d in data] == [c["label"] for c in predictor.classify(ROWS)]


def test_explain_returns_per_row_attributions_that_add_up(srv, new_key, predictor):
    r = post(srv, new_key(), {"model": "risk", "input": ROWS, "explain": True})
    assert r.status_code == 200, r.text
    for d, row in zip(r.json()["data"], ROWS):
        e = d["explanation"]
        assert [f["feature"] for f in e["features"]] and {f["feature"] for f in e["features"]} == {"age", "amount", "channel"}
        assert {f["feature"]: f["value"] for f in e["features"]} == row
        total = sum(f["attribution"] for f in e["features"])
        assert abs(total - (e["output"] - e["baseline_output"])) <= e["completeness_error"] + 1e-6
        assert e["completeness_error"] < 0.05 * abs(e["output"] - e["baseline_output"]) + 1e-3  # 64 steps on a rough random net
        mags = [abs(f["attribution"]) for f in e["features"]]
        assert mags == sorted(mags, reverse=True)
        assert e["explained"] == "1" and e["tree_raw_score"] is None  # no run folder: no LightGBM booster to compare
        p1 = d["scores"]["1"]
        assert e["output"] == pytest.approx(np.log(p1 / (1 - p1)), abs=1e-4)  # the calibrated log-odds of the score shown
    top = post(srv, new_key(), {"model": "risk", "input": ROWS[:1], "explain": True, "explain_top": 1}).json()["data"][0]
    assert len(top["explanation"]["features"]) == 1


@pytest.mark.parametrize("row, words", [
    ({"age": 41, "amount": 120.5, "channel": "web", "agee": 3}, "unknown columns agee"),
    ({"age": 41, "channel": "web"}, "missing columns amount"),
    ({"age": "old", "amount": 1.0, "channel": "web"}, "'old' is not a number"),
])
def test_bad_rows_are_named_400s(srv, new_key, row, words):
    r = post(srv, new_key(), {"model": "risk", "input": [ROWS[0], row], "explain": True})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == "input[1]" and words in err["message"], err


def test_texts_to_a_table_model_and_explain_on_a_text_model_are_refused(make_server, srv, new_key):
    from guimo.serve.registry import ServedModel
    from tests.serve.conftest import FakeClassifier

    key = new_key()
    r = post(srv, key, {"model": "risk", "input": ["a text"]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "input[0]"
    txt = make_server(served={"txt": ServedModel("txt", "support", "classification", FakeClassifier())})
    r = post(txt, key, {"model": "txt", "input": ["hi"], "explain": True})
    assert r.status_code == 400 and r.json()["error"]["param"] == "explain"
