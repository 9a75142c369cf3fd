"""The business learning curve wired to the real `recommend` scenario: NDCG@10 vs training interactions."""

from __future__ import annotations

import json

import pytest

from guimo.scale.report import build_report

TINY = ["data.generator.chain_groups=20", "data.generator.items=200", "data.generator.categories=10",
        "train.max_steps=20", "train.eval_every=20", "train.checkpoint_every=20", "train.batch_size=32", "train.warmup_steps=2",
        "eval.sampled=0", "eval.val_cases=200", "model.d_model=16", "model.max_len=20"]


def test_ndcg_learning_curve_report(tmp_path):
    from guimo.config import apply_overrides
    from guimo.pipeline.runner import run_pipeline
    from guimo.scenarios import SCENARIOS

    if "recommend" not in SCENARIOS:
        pytest.skip("the recommend scenario is not registered")
    from guimo.scenarios.recommend import SCENARIO

    for users in (100, 200, 400):
        cfg = apply_overrides(SCENARIO.config_cls(), [f"data.generator.users={users}", f"data.generator.interactions={15 * users}", *TINY], SCENARIO.presets)
        run_pipeline("recommend", cfg, tmp_path / "runs" / f"u{users}", quiet=True)
    result = build_report(tmp_path, n_bootstrap=5)
    assert result["metric"] == "ndcg@10" and result["higher_is_better"]
    xs = sorted(p["unique"] for p in result["points"])
    assert len(set(xs)) == 3 and xs[-1] > 3 * xs[0]  # training interactions grow with users
    curve = result["curve"]
    assert curve["predicted_4x"]["n"] == 4 * xs[-1]
    lo, hi = curve["predicted_4x"]["band"]
    assert lo <= hi
    text = (tmp_path / "scale" / "report.md").read_text()
    assert "## Learning curve of ndcg@10" in text and "predicted with 4x data" in text
    assert (tmp_path / "scale" / "plots" / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((tmp_path / "scale" / "fit.json").read_text())
    assert "fit" not in saved and saved["curve"]["a"] == curve["a"]
