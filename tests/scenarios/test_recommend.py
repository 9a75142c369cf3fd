"""The recommend scenario end to end on small seeded marketplace data (seconds on CPU)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from guimo.config import apply_overrides
from guimo.errors import GuimoError
from guimo.scenarios import DEFAULT, get

SMALL_DATA = ["data.generator.chain_groups=10", "data.generator.chain_fanout=6", "data.generator.users=400", "data.generator.items=300",
              "data.generator.categories=10", "data.generator.interactions=14000"]


def tiny_config(*extra: str, steps: int = 400):
    scenario = get("recommend")
    overrides = SMALL_DATA + [
        "model.max_len=20", "model.d_model=32", "model.dropout=0.1", "model.loss=ce",
        f"train.max_steps={steps}", f"train.eval_every={max(1, steps // 3)}", f"train.checkpoint_every={steps}",
        "train.batch_size=32", "train.warmup_steps=10", "train.lr=0.01", "train.patience=0", "eval.val_cases=None",
        *extra,
    ]
    return apply_overrides(scenario.config_cls(), overrides, scenario.presets)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from guimo.pipeline.runner import run_pipeline

    return run_pipeline("recommend", tiny_config(), tmp_path_factory.mktemp("rec") / "run", quiet=True)


def test_is_the_default_scenario_and_follows_the_protocol():
    s = get("recommend")
    assert DEFAULT == "recommend"
    assert (s.headline, s.higher_is_better, s.serve_kind) == ("ndcg@10", True, "recommendation")
    for preset in s.presets["model"]:
        apply_overrides(s.config_cls(), [f"model={preset}"], s.presets)


def test_artifacts_and_protocol(run):
    for name in ("model.safetensors", "model_config.json", "metrics.json", "data/sequences.npz", "data/items.json"):
        assert (run.path / name).exists(), name
    m = json.loads((run.path / "metrics.json").read_text())
    assert m["protocol"]["filter_seen"] is True and m["protocol"]["cases"] == 400
    assert set(m["baselines"]) == {"popularity", "item_knn", "markov"}
    # sampled numbers live apart from full-ranking ones and are higher (easier protocol)
    assert "sampled" in m and m["sampled"]["model"]["ndcg@10"] > m["model"]["ndcg@10"]
    assert run.manifest["stages"]["preprocess"]["categories"] == 10


def test_model_beats_every_baseline_by_a_margin(run):
    """The generator puts signal beyond the last item (complements 2-4 steps back, long-term taste),
    so a sequence model must beat popularity, co-occurrence AND the first-order Markov chain."""
    m = json.loads((run.path / "metrics.json").read_text())
    model = m["model"]["ndcg@10"]
    assert model > 2.0 * m["baselines"]["popularity"]["ndcg@10"], m
    assert model > 1.2 * m["baselines"]["item_knn"]["ndcg@10"], m
    assert model > 1.05 * m["baselines"]["markov"]["ndcg@10"], m


def test_bf16_catalogue_scoring_keeps_the_quality(run):
    """model.score_precision=bf16 (the evaluate stage and the server score through the same table) ranks the test
    split within 2% of fp32's NDCG@10 and still beats the best baseline."""
    from guimo import scenarios
    from guimo.config import from_dict
    from guimo.scenarios.recommend import load_data, rank_model

    scenario = scenarios.get("recommend")
    model = scenario.load_predictor(run).model
    cfg = from_dict(scenario.config_cls, run.config)
    prep = load_data(run)
    hist, targets = prep.cases("test")
    scores = {}
    for precision in ("fp32", "bf16"):
        model.cfg.score_precision = precision
        scores[precision] = rank_model(model, hist, targets, prep.n_items, cfg.eval, sampled=False, seed=0)["full"]["ndcg@10"]
    m = json.loads((run.path / "metrics.json").read_text())
    assert scores["fp32"] == pytest.approx(m["model"]["ndcg@10"], abs=1e-9)  # the same evaluation as the stage's
    assert scores["bf16"] == pytest.approx(scores["fp32"], rel=0.02)
    assert scores["bf16"] > max(b["ndcg@10"] for b in m["baselines"].values())


def test_predictor_speaks_original_ids_and_excludes_seen(run):
    p = get("recommend").load_predictor(run)
    items = json.loads((run.path / "data" / "items.json").read_text())
    history = p.users(["u00003"])[0]
    assert history and all(h.startswith("i") for h in history)
    rec = p.recommend([history], k=10)[0]
    assert len(rec["items"]) == 10 and set(rec["items"]) <= set(items)
    assert not set(rec["items"]) & set(history)
    assert rec["scores"] == sorted(rec["scores"], reverse=True)
    with_seen = p.recommend([history], k=p.n_items, exclude_seen=False)[0]
    assert set(history) <= set(with_seen["items"])
    # the predictor scores exactly as the evaluated model: its top item for a test history
    prep_hist = np.array([p.index[h] for h in history[:-1]])
    assert p.recommend([history[:-1]], k=1)[0]["items"][0] == p.item_ids[int(_model_top1(p, prep_hist)) - 1]


def _model_top1(p, hist):
    from guimo.scenarios.recommend import model_scorer
    from guimo.evaluate.ranking import mask_seen

    s = model_scorer(p.model, p.model.cfg.max_len)([hist])
    mask_seen(s, [hist])
    return s.argmax(1)[0]


def test_live_session_of_an_unseen_user(run):
    p = get("recommend").load_predictor(run)
    with pytest.raises(GuimoError, match="unknown user 'nobody'"):
        p.users(["nobody"])
    session = ["i00010", "not-in-catalogue", "i00011"]
    rec = p.recommend([session, [], ["only-unknown"]], k=5)
    assert len(rec) == 3 and all(len(r["items"]) == 5 for r in rec)
    assert not {"i00010", "i00011"} & set(rec[0]["items"])
    # an empty session gets the most popular items, best first
    assert rec[1]["items"] == rec[2]["items"] and rec[1]["scores"] == sorted(rec[1]["scores"], reverse=True)
    # ids not in the catalogue are named, never dropped silently
    assert [r["unknown_items"] for r in rec] == [["not-in-catalogue"], [], ["only-unknown"]]
    with pytest.raises(GuimoError):
        p.recommend([session], k=0)


def test_schemas_validate_requests():
    from pydantic import ValidationError

    from guimo.inference.recommend_schemas import RecommendRequest, RecommendResponse

    req = RecommendRequest(histories=[["a", "b"]], k=3)
    assert req.exclude_seen is True
    with pytest.raises(ValidationError):
        RecommendRequest(k=3)  # neither histories nor users
    with pytest.raises(ValidationError):
        RecommendRequest(users=["u"], histories=[["a"]])
    with pytest.raises(ValidationError):
        RecommendRequest(users=["u"], k=0)
    RecommendResponse(model="m", recommendations=[{"items": ["a"], "scores": [1.0]}])


def test_target_frequencies_count_every_next_item_target():
    from guimo.scenarios.recommend import target_frequencies

    freq = target_frequencies([np.array([1, 2, 3]), np.array([3, 2]), np.array([4])], n_items=4)
    assert freq.tolist() == pytest.approx([0.0, 0.0, 2 / 3, 1 / 3, 0.0])  # targets 2, 3, 2: first items are never targets
    assert target_frequencies([], n_items=2).tolist() == [0.0, 0.0, 0.0]


def test_in_batch_negatives_train_through_the_scenario(tmp_path):
    from guimo.pipeline.runner import run_pipeline

    cfg = tiny_config("model.loss=sampled", "model.n_negatives=50", "model.in_batch_negatives=true", steps=30)
    run = run_pipeline("recommend", cfg, tmp_path / "run", quiet=True, to_stage="train")
    log = [json.loads(line) for line in (run.path / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 30 and all(np.isfinite(r["loss"]) for r in log if "loss" in r)


@pytest.mark.parametrize("fraction", [0.0, 1.5])
def test_data_fraction_outside_0_1_is_a_clear_error(tmp_path, fraction):
    from guimo.pipeline.runner import run_pipeline

    with pytest.raises(GuimoError, match=f"data.fraction {fraction} is not in"):
        run_pipeline("recommend", tiny_config(f"data.fraction={fraction}"), tmp_path / "run", quiet=True, to_stage="preprocess")


def test_data_fraction_keeps_a_share_of_the_interactions(tmp_path):
    from guimo.pipeline.runner import run_pipeline

    full = run_pipeline("recommend", tiny_config(), tmp_path / "full", quiet=True, to_stage="preprocess")
    half = run_pipeline("recommend", tiny_config("data.fraction=0.5"), tmp_path / "half", quiet=True, to_stage="preprocess")
    f, h = (r.manifest["stages"]["preprocess"] for r in (full, half))
    assert h["interactions"] / f["interactions"] == pytest.approx(0.5, abs=0.01) and h["items"] == f["items"]
    assert 0 < h["train_examples"] < f["train_examples"]


def test_report_and_breakdowns(run):
    """report.md with its plots, and breakdowns whose buckets weight back to the overall metrics."""
    from guimo.evaluate.breakdown import weighted_total

    text = (run.path / "report.md").read_text(encoding="utf-8")
    for plot in ("training", "baselines", "breakdown_history_length", "breakdown_target_popularity"):
        assert f"](plots/{plot}.png)" in text and (run.path / "plots" / f"{plot}.png").stat().st_size > 5_000, plot
    m = json.loads((run.path / "metrics.json").read_text())
    for name in ("history_length", "target_popularity"):
        b = m["breakdown"][name]
        assert sum(x["weight"] for x in b["buckets"]) == m["model"]["cases"]
        for who in ("model", "markov", "item_knn", "popularity"):
            overall = m["model"] if who == "model" else m["baselines"][who]
            for metric in ("ndcg@10", "hr@10"):
                assert weighted_total(b, metric, who) == pytest.approx(overall[metric], abs=1e-9), (name, who, metric)
