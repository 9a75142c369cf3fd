"""report.md and plots/ in a run folder: written by a real run, readable, relative, and honest about weights."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from guimo.cli import main
from guimo.evaluate.breakdown import weighted_total
from guimo.io import atomic_write_json
from guimo.pipeline.rundir import RunDir
from guimo.report import write_report

PNG = b"\x89PNG\r\n\x1a\n"


def links(text: str) -> list[str]:
    """Targets of markdown links and images."""
    return re.findall(r"\]\(([^)]+)\)", text)


def assert_report_is_whole_and_relative(run_path: Path) -> str:
    text = (run_path / "report.md").read_text(encoding="utf-8")
    targets = links(text)
    for name in ("plots/training.png", "plots/baselines.png", "metrics.json", "manifest.json"):
        assert name in targets, name
    for target in targets:
        assert not target.startswith("/") and "://" not in target, target
        assert (run_path / target).is_file(), target
        if target.endswith(".png"):
            assert (run_path / target).read_bytes()[:8] == PNG and (run_path / target).stat().st_size > 5_000
    assert str(run_path) not in text and str(run_path.resolve()) not in text  # the folder can move
    prepared = next(line for line in text.splitlines() if line.startswith("| prepared data |"))
    assert " pid " not in prepared and " host " not in prepared  # the manifest's bookkeeping is not data
    return text


def test_a_real_lm_run_has_its_report_with_curves_baselines_and_positions(tiny_lm_run):
    text = assert_report_is_whole_and_relative(tiny_lm_run)
    assert "plots/breakdown_context_position.png" in links(text)
    assert "## Verdict" in text and "On the headline metric bits_per_byte" in text
    assert "**Weights:** the final ones" in text  # the optimize stage rewrote it after keeping the weights
    import torch

    # the thread count that trained it, in the manifest and on the device row (speed and the last float bits follow it)
    threads = json.loads((tiny_lm_run / "manifest.json").read_text())["stages"]["train"]["torch_threads"]
    assert threads == torch.get_num_threads()
    assert re.search(rf"\| device \| cpu, .*{threads} torch thread\(s\)", text)
    m = json.loads((tiny_lm_run / "metrics.json").read_text())
    positions = m["breakdown"]["context_position"]
    assert positions["buckets"][0]["lo"] == 1 and positions["buckets"][-1]["hi"] == 128  # the nano model's block
    for who in ("model", "bigram", "unigram"):
        overall = m["model"] if who == "model" else m["baselines"][who]
        assert weighted_total(positions, "bits_per_byte", who) == pytest.approx(overall["bits_per_byte"], rel=1e-9)


def test_guimo_show_names_the_report(tiny_lm_run, capsys):
    assert main(["show", str(tiny_lm_run)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"report: {tiny_lm_run / 'report.md'}" in lines


def test_guimo_show_says_when_there_is_no_report_yet(tmp_path, capsys):
    RunDir.create(tmp_path / "r", "lm", {})
    assert main(["show", str(tmp_path / "r")]) == 0
    assert "report: none yet (report.md is written by the evaluate stage)" in capsys.readouterr().out


# A run folder without training, with metrics where a baseline wins: the report's words must say so.
METRICS = {
    "split": "test", "headline": "ndcg@10", "higher_is_better": True, "weights": "checkpoints/best.safetensors",
    "protocol": {"ranking": "full catalogue", "sampled_negatives": 100},
    "model": {"hr@10": 0.20, "ndcg@10": 0.12, "cases": 10},
    "baselines": {"popularity": {"hr@10": 0.10, "ndcg@10": 0.05}, "markov": {"hr@10": 0.25, "ndcg@10": 0.15}},
    "sampled": {"model": {"hr@10": 0.5, "ndcg@10": 0.3}, "baselines": {"popularity": {"hr@10": 0.3, "ndcg@10": 0.2},
                                                                     "markov": {"hr@10": 0.6, "ndcg@10": 0.4}}},
    "breakdown": {"history_length": {
        "title": "by history length", "axis": "items in the user's history", "weight": "cases", "metrics": ["ndcg@10", "hr@10"],
        "buckets": [
            {"label": "3-5 items", "lo": 3, "hi": 5, "weight": 6, "model": {"ndcg@10": 0.16, "hr@10": 0.3},
             "baselines": {"popularity": {"ndcg@10": 0.05, "hr@10": 0.1}, "markov": {"ndcg@10": 0.10, "hr@10": 0.2}}},
            {"label": "6-40 items", "lo": 6, "hi": 40, "weight": 4, "model": {"ndcg@10": 0.06, "hr@10": 0.05},
             "baselines": {"popularity": {"ndcg@10": 0.05, "hr@10": 0.1}, "markov": {"ndcg@10": 0.225, "hr@10": 0.325}}},
        ]}},
}


@pytest.fixture
def constructed(tmp_path) -> RunDir:
    run = RunDir.create(tmp_path / "built", "recommend", {"train": {"batch_size": 8, "lr": 0.01, "warmup_steps": 2}})
    atomic_write_json(run / "metrics.json", METRICS)
    return run


def test_the_report_says_where_a_baseline_beats_the_model(constructed):
    text = assert_report_is_whole_and_relative_without_training(constructed)
    assert "- On the headline metric ndcg@10, markov wins: 0.1500 against 0.1200 for the transformer (25.0% higher)." in text
    assert "- markov is ahead of the transformer on hr@10, ndcg@10." in text
    assert "- markov is ahead of the transformer on hr@10, ndcg@10 (sampled protocol)." in text
    assert "- markov beats the transformer on ndcg@10 for: 6-40 items." in text
    assert "| hr@10 | 0.2000 | 0.1000 | **0.2500** |" in text  # the best value of each row in bold
    assert "plots/breakdown_history_length.png" in links(text)


def assert_report_is_whole_and_relative_without_training(run: RunDir) -> str:
    write_report(run)
    text = (run / "report.md").read_text(encoding="utf-8")
    for target in links(text):
        assert not target.startswith("/") and (run.path / target).is_file(), target
    assert "plots/baselines.png" in links(text) and "plots/training.png" not in links(text)  # no train_log.jsonl here
    return text


def test_the_report_names_the_weights_its_numbers_describe(constructed):
    write_report(constructed, stage="evaluate")
    text = (constructed / "report.md").read_text()
    assert "**Weights:** `checkpoints/best.safetensors`, the best training checkpoint. The optimize stage has not run yet" in text
    write_report(constructed, stage="optimize")
    assert "the optimize stage kept `checkpoints/best.safetensors` unchanged as `model.safetensors`" in (constructed / "report.md").read_text()
    optimized = {**METRICS, "optimized": {"source": "optimize/trial-3 + int8", "before": METRICS["model"]}}
    optimized.pop("weights")
    atomic_write_json(constructed / "metrics.json", optimized)
    write_report(constructed, stage="optimize")
    text = (constructed / "report.md").read_text()
    assert "the final ones (`model.safetensors`), which the optimize stage kept from optimize/trial-3 + int8" in text


def test_plots_are_redrawn_only_when_their_sources_change(constructed):
    write_report(constructed)
    bars = constructed / "plots" / "baselines.png"
    first = bars.stat().st_mtime_ns
    write_report(constructed, stage="optimize")  # the same metrics: the figure is kept
    assert bars.stat().st_mtime_ns == first
    atomic_write_json(constructed / "metrics.json", {**METRICS, "model": {**METRICS["model"], "ndcg@10": 0.2}})
    write_report(constructed, stage="optimize")
    assert bars.stat().st_mtime_ns > first


def test_an_optimize_rerun_that_keeps_the_trained_weights_rescores_them(tiny_lm_run, tmp_path):
    """metrics.json and the report left by an earlier optimize winner must not outlive it."""
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(tiny_lm_run, run)
    stale = json.loads((run / "metrics.json").read_text())
    stale["optimized"] = {"source": "optimize/trial-0", "before": stale["model"]}
    stale["model"] = {**stale["model"], "bits_per_byte": 0.5}
    atomic_write_json(run / "metrics.json", stale)
    assert main(["run", "lm", "--out", str(run), "--from", "optimize", "--quiet"]) == 0
    fresh = json.loads((run / "metrics.json").read_text())
    assert "optimized" not in fresh and fresh["model"] == json.loads((tiny_lm_run / "metrics.json").read_text())["model"]
    text = (run / "report.md").read_text()
    assert "trial-0" not in text and "0.5000" not in text
