"""The optimize stage inside the pipeline: what it leaves behind must not break a later re-run."""

from __future__ import annotations

import dataclasses
import json

from tests.optimize.conftest import ToyConfig, ToyScenario


def test_retraining_after_a_width_winner_trains_the_trained_architecture(tmp_path, monkeypatch):
    from guimo import scenarios
    from guimo.optimize.stage import Kept, _write
    from guimo.pipeline.runner import load_model, run_pipeline

    toy = ToyScenario()
    monkeypatch.setattr(scenarios, "get", lambda name: toy)
    cfg = ToyConfig()
    run = run_pipeline("toy", cfg, tmp_path / "run", quiet=True)
    # What a won width search leaves: a wider model_config.json, its weights as model.safetensors.
    wide = dataclasses.replace(cfg.model, d_model=16)
    _write(run, Kept(toy.build_model(wide), 0.0, "optimize/trial-0", model_cfg=wide))
    assert json.loads((run / "model_config.json").read_text())["d_model"] == 16

    run = run_pipeline("toy", cfg, tmp_path / "run", from_stage="train", quiet=True)

    assert json.loads((run / "model_config.json").read_text())["d_model"] == cfg.model.d_model
    assert not (run / "optimize" / "trained_model_config.json").exists()
    # evaluate and optimize used the new training, not the stale winner's weights
    assert (run / "model.safetensors").read_bytes() == (run / "checkpoints" / "best.safetensors").read_bytes()
    assert load_model(toy, run)[0].out_features == cfg.model.d_model
