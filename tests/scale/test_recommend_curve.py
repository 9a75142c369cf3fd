"""The business learning curve wired to the real `recommend` scenario: NDCG@10 vs training interactions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from guimo.scale.report import build_report

TINY = ["data.generator.chain_groups=20", "data.generator.items=200", "data.generator.categories=10",
        "train.max_steps=20", "train.eval_every=20", "train.checkpoint_every=20", "train.batch_size=32", "train.warmup_steps=2",
        "eval.sampled=0", "eval.val_cases=200", "model.d_model=16", "model.max_len=20"]
KNOWN = (0.30, -2.0, 0.4)  # m(n) = 0.30 - 2 n^-0.4: a curve whose every value is known


def _known(n):
    a, b, c = KNOWN
    return a + b * np.asarray(n, dtype=float) ** -c


def test_ndcg_learning_curve_report(tmp_path):
    """Three real runs at 100, 200 and 400 users; their test NDCG@10 is then set to a known curve's values at their
    own training sizes, so the report must recover that curve and give its 2x / 4x values."""
    from guimo.config import apply_overrides
    from guimo.pipeline.runner import run_pipeline
    from guimo.scenarios import SCENARIOS

    if "recommend" not in SCENARIOS:
        pytest.skip("the recommend scenario is not registered")
    from guimo.scenarios.recommend import SCENARIO

    for users in (100, 200, 400):
        cfg = apply_overrides(SCENARIO.config_cls(), [f"data.generator.users={users}", f"data.generator.interactions={15 * users}", *TINY], SCENARIO.presets)
        run_pipeline("recommend", cfg, tmp_path / "runs" / f"u{users}", quiet=True)
    measured = build_report(tmp_path, n_bootstrap=5)
    assert measured["metric"] == "ndcg@10" and measured["higher_is_better"]
    xs = sorted(p["unique"] for p in measured["points"])
    assert len(set(xs)) == 3 and xs[-1] > 3 * xs[0]  # training interactions grow with users
    for p in measured["points"]:  # the curve is fitted on each run's own test NDCG@10
        run_metrics = json.loads((tmp_path / "runs" / p["run"].rsplit("/", 1)[-1] / "metrics.json").read_text())
        assert p["value"] == run_metrics["model"]["ndcg@10"]

    for p in measured["points"]:  # the known curve at each run's own training size
        path = tmp_path / "runs" / p["run"].rsplit("/", 1)[-1] / "metrics.json"
        m = json.loads(path.read_text())
        m["model"]["ndcg@10"] = float(_known(p["unique"]))
        path.write_text(json.dumps(m))
    result = build_report(tmp_path, n_bootstrap=5)
    curve = result["curve"]
    assert (curve["a"], curve["b"], curve["c"]) == pytest.approx(KNOWN, rel=1e-3)
    for mult in (2, 4):
        pred = curve[f"predicted_{mult}x"]
        assert pred["n"] == mult * xs[-1]
        assert pred["value"] == pytest.approx(float(_known(mult * xs[-1])), rel=1e-4)
        assert pred["band"][0] == pytest.approx(pred["value"], rel=1e-3) and pred["band"][1] == pytest.approx(pred["value"], rel=1e-3)  # exact points
    assert curve["predicted_4x"]["value"] > curve["predicted_2x"]["value"] > float(_known(xs[-1]))  # still rising, towards a = 0.30
    text = (tmp_path / "scale" / "report.md").read_text()
    assert f"predicted with 4x data (n = {4 * xs[-1]:,.0f}): {curve['predicted_4x']['value']:.4f}" in text
    verdict = result["verdict"]
    assert [p["value"] for p in verdict["predictions"]] == [curve["predicted_2x"]["value"], curve["predicted_4x"]["value"]]
    assert not verdict["check"]["ran"] and not verdict["passed"]  # 3 data sizes leave fewer than 3 at half the data: no check, no pass
    assert (tmp_path / "scale" / "plots" / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((tmp_path / "scale" / "fit.json").read_text())
    assert "fit" not in saved and saved["curve"]["a"] == curve["a"]
    from guimo.cli import main

    assert main(["scale", "fit", str(tmp_path), "--set", "fit.bootstrap=5", "--quiet"]) == 0  # a folder of runs, no sweep.json
    refit = json.loads((tmp_path / "scale" / "fit.json").read_text())
    assert refit["verdict"]["check"]["criterion"] == 0.10  # judged by the recommend recipe's criterion, not the loss law's 3%
    assert refit["curve"]["predicted_4x"]["value"] == pytest.approx(curve["predicted_4x"]["value"], rel=1e-9)
