"""Approximate top-k through the item index (int8 block scan, PQ fast-scan and HNSW) against the exact path, on a small SASRec.

The catalogue is small enough that a search wider than the catalogue (int8 and PQ ``fetch`` >= N, HNSW
``ef_search`` >= N) returns every item as a candidate: the index must then return exactly what
scoring every item returns, with seen items excluded, padding never returned and empty histories
answered by popularity as before.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("faiss", reason="the item index needs faiss (pip install 'guimo[search]')")

from guimo.config import from_dict  # noqa: E402
from guimo.errors import GuimoError  # noqa: E402
from guimo.inference.recommend import AnnSettings, RecPredictor, ann_choice, ann_top_k, load_item_index, top_k  # noqa: E402
from guimo.models.sasrec import SASRec, SASRecConfig  # noqa: E402

N_ITEMS = 400
WIDE = AnnSettings(topk="ann", index="hnsw", m=16, ef_construction=100, ef_search=2 * N_ITEMS, cache=False)  # the whole graph
WIDE_PQ = AnnSettings(topk="ann", index="pq", fetch=N_ITEMS, cache=False)  # every item a candidate
WIDE_INT8 = AnnSettings(topk="ann", index="int8", block=8, spare_blocks=N_ITEMS, cache=False)  # every block a candidate


@pytest.fixture(scope="module")
def model() -> SASRec:
    torch.manual_seed(0)
    m = SASRec(SASRecConfig(n_items=N_ITEMS, max_len=12, d_model=16, dropout=0.0)).eval()
    with torch.no_grad():  # item norms that differ, as a trained model's do (popular items are longer)
        m.core.tok_emb.weight.mul_(torch.rand(N_ITEMS + 1, 1) * 3 + 0.2)
    return m


@pytest.fixture(scope="module", params=["hnsw", "pq", "int8"])
def index(model, request):
    return load_item_index(model, {"hnsw": WIDE, "pq": WIDE_PQ, "int8": WIDE_INT8}[request.param])[0]


def histories(seed: int, count: int = 40) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(1, N_ITEMS + 1, size=int(rng.integers(1, 30))) for _ in range(count)]


@pytest.mark.parametrize("exclude_seen", [True, False])
def test_a_search_wider_than_the_catalogue_returns_the_exact_top_k(model, index, exclude_seen):
    hs = histories(1)
    exact_ids, exact_scores = top_k(model, hs, 10, exclude_seen)
    ann_ids, ann_scores = ann_top_k(model, index, hs, 10, exclude_seen)
    assert torch.equal(ann_ids, exact_ids)
    torch.testing.assert_close(ann_scores, exact_scores, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("narrow", [AnnSettings(topk="ann", index="hnsw", m=4, ef_construction=8, ef_search=4, cache=False),
                                    AnnSettings(topk="ann", index="pq", pq_m=4, fetch=1, cache=False),
                                    AnnSettings(topk="ann", index="int8", block=4, spare_blocks=0, cache=False)], ids=["hnsw", "pq", "int8"])
def test_a_narrow_search_still_excludes_seen_items_and_padding_and_fills_k(model, narrow):
    narrow = load_item_index(model, narrow)[0]
    hs = histories(2)
    # histories made of each row's own best items: the graph's first answers are all seen ones
    best = top_k(model, hs, 25, exclude_seen=False)[0]
    hs = [np.concatenate([h, b.numpy()]) for h, b in zip(hs, best)]
    ids, scores = ann_top_k(model, narrow, hs, 10, exclude_seen=True)
    for h, row, s in zip(hs, ids.tolist(), scores):
        assert len(set(row)) == 10 and not set(row) & set(h.tolist()) and 0 not in row
        assert torch.isfinite(s).all() and bool((s[:-1] >= s[1:]).all())  # best first, exact scores


def test_the_int8_scan_at_its_defaults_finds_the_exact_top_10(model):
    """Default block and spare blocks (12 blocks of 16 of the 25 here): int8 rounding moves no item of the exact top 10 out."""
    scan = load_item_index(model, AnnSettings(topk="ann", index="int8", cache=False))[0]
    assert scan.info()["int8"]["block"] == 16 and scan.info()["items"] == N_ITEMS
    hs = histories(4, count=200)
    exact_ids, _ = top_k(model, hs, 10)
    ann_ids, _ = ann_top_k(model, scan, hs, 10)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(ann_ids.tolist(), exact_ids.tolist())])
    assert recall >= 0.99


def test_when_the_catalogue_runs_out_the_rows_end_in_minus_inf_like_the_exact_path(model, index):
    rng = np.random.default_rng(3)
    unseen = rng.choice(np.arange(1, N_ITEMS + 1), size=4, replace=False)
    h = np.setdiff1d(np.arange(1, N_ITEMS + 1), unseen)  # every item but four
    ids, scores = ann_top_k(model, index, [h], 10)
    exact_ids, exact_scores = top_k(model, [h], 10)
    assert sorted(ids[0, :4].tolist()) == sorted(unseen.tolist()) and torch.isinf(scores[0, 4:]).all()
    assert torch.equal(ids[0, :4], exact_ids[0, :4]) and torch.equal(torch.isinf(scores), torch.isinf(exact_scores))


def predictor(model, topk: str, **kw) -> RecPredictor:
    items = [f"sku-{i:04d}" for i in range(1, N_ITEMS + 1)]
    popularity = np.arange(N_ITEMS + 1, dtype=np.int64)  # the last item is the most popular
    run_path = kw.pop("run_path", None)
    settings = AnnSettings(**{**vars(WIDE), "topk": topk, **kw})
    return RecPredictor(model, items, [], None, popularity, name="tiny", serve=settings, run_path=run_path)


def test_forced_exact_and_ann_predictors_answer_alike_and_say_which_path_they_took(model):
    exact, ann = predictor(model, "exact"), predictor(model, "ann")
    assert exact.item_index is None and exact.info() == {"topk": "exact", "why": "serve.topk=exact", "items": N_ITEMS}
    info = ann.info()
    assert info["topk"] == "ann" and info["index"]["hnsw"] == {"m": 16, "ef_construction": 100, "ef_search": 800}
    assert info["index"]["source"] == "built"
    pq = predictor(model, "ann", index="pq", fetch=N_ITEMS)
    assert pq.info()["index"]["pq"] == {"m": 8, "bits": 4, "fetch": N_ITEMS} and "hnsw" not in pq.info()["index"]
    sessions = [["sku-0003", "ghost", "sku-0150"], [], ["12"], ["sku-0400"] * 3]
    want = exact.recommend(sessions, k=5)
    for served in (ann, pq):
        for g, w in zip(served.recommend(sessions, k=5), want):  # unknown ids and popularity as before; scores to float rounding
            assert (g["items"], g["unknown_items"]) == (w["items"], w["unknown_items"])
            assert g["scores"] == pytest.approx(w["scores"], abs=1e-5)
        (empty,) = served.recommend([[]], k=2)
        assert empty["items"] == ["sku-0400", "sku-0399"]


def test_auto_uses_the_index_from_the_threshold_up_and_refuses_an_unknown_mode():
    assert ann_choice(199, AnnSettings(min_items=200))[0] == "exact"
    assert ann_choice(200, AnnSettings(min_items=200)) == ("ann", "auto: 200 items >= serve.min_items 200")
    assert ann_choice(10**7, AnnSettings(topk="exact", min_items=200))[0] == "exact"
    with pytest.raises(GuimoError, match="serve.topk must be one of auto, exact, ann"):
        ann_choice(10, AnnSettings(topk="fast"))  # type: ignore[arg-type]
    with pytest.raises(GuimoError, match="serve.topk"):
        from_dict(AnnSettings, {"topk": "fast"}, _prefix="serve.")
    with pytest.raises(GuimoError, match="serve.index must be one of int8, pq, hnsw"):
        ann_choice(10, AnnSettings(index="ivf"))


def test_the_index_is_cached_in_the_run_directory_and_rebuilt_when_the_weights_change(model, tmp_path):
    first = predictor(model, "ann", cache=True, run_path=tmp_path)
    (folder,) = (tmp_path / "ann_index").iterdir()  # one folder per (weights, graph settings)
    assert first.index_source == f"built, cached in {folder}" and (folder / "info.json").exists()
    second = predictor(model, "ann", cache=True, run_path=tmp_path, ef_search=900)  # ef_search is a search setting
    assert second.index_source == f"read from {folder}"
    assert second.item_index.index.hnsw.ef_search == 900 and len(second.item_index.index) == N_ITEMS
    hs = histories(4)
    assert torch.equal(second.top_k(hs, 10)[0], first.top_k(hs, 10)[0])
    changed = SASRec(model.cfg).eval()
    changed.load_state_dict(model.state_dict())
    with torch.no_grad():
        changed.core.tok_emb.weight[5] += 1.0
    assert load_item_index(changed, AnnSettings(**{**vars(WIDE), "cache": True}), tmp_path)[1].startswith("built, cached")
    assert len(list((tmp_path / "ann_index").iterdir())) == 2  # the first weights' index is never read for the new ones


def test_the_pq_index_is_cached_too_and_a_damaged_cache_is_rebuilt_not_trusted(model, tmp_path):
    first = predictor(model, "ann", index="pq", fetch=N_ITEMS, cache=True, run_path=tmp_path)
    (folder,) = (tmp_path / "ann_index").iterdir()
    assert first.index_source == f"built, cached in {folder}"
    second = predictor(model, "ann", index="pq", fetch=N_ITEMS, cache=True, run_path=tmp_path)
    assert second.index_source == f"read from {folder}" and second.item_index.index.ntotal == N_ITEMS
    hs = histories(5)
    assert torch.equal(second.top_k(hs, 10)[0], first.top_k(hs, 10)[0])
    (saved,) = (folder / "index").glob("v-*/items.faiss")
    saved.write_bytes(b"not a faiss index")
    third = predictor(model, "ann", index="pq", fetch=N_ITEMS, cache=True, run_path=tmp_path)
    assert third.index_source == f"built, cached in {folder}" and torch.equal(third.top_k(hs, 10)[0], first.top_k(hs, 10)[0])


def test_a_run_made_with_serve_topk_ann_serves_through_its_index_and_the_cli_can_force_either(tmp_path, capsys):
    """The user's path: `guimo run recommend --set serve.topk=ann`, then the predictor the server loads and
    `guimo recommend --batch` (with --topk exact as the check) answer alike."""
    import json

    from guimo import scenarios
    from guimo.cli import main
    from guimo.pipeline.rundir import RunDir
    from guimo.pipeline.runner import run_pipeline
    from tests.scenarios.test_recommend import tiny_config

    out = tmp_path / "run"
    run_pipeline("recommend", tiny_config("eval.sampled=0", "serve.topk=ann", steps=10), out, quiet=True)
    served = scenarios.get("recommend").load_predictor(RunDir.open(out))
    info = served.info()
    assert info["topk"] == "ann" and info["index"]["kind"] == "int8" and info["index"]["source"] == "built"  # the default; nothing cached
    assert not (out / "ann_index").exists()
    batch = tmp_path / "in.jsonl"
    batch.write_text("".join(json.dumps({"user": u}) + "\n" for u in ("u00001", "u00002", "u00003")))
    got = {}
    for topk in ("ann", "exact"):
        assert main(["recommend", str(out), "--batch", str(batch), "--out", str(tmp_path / f"{topk}.jsonl"), "--topk", topk, "--quiet"]) == 0
        got[topk] = [json.loads(line)["items"] for line in (tmp_path / f"{topk}.jsonl").read_text().splitlines()]
    assert got["ann"] == got["exact"] and all(len(items) == 10 for items in got["ann"])
    capsys.readouterr()
