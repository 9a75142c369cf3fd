"""Shared fixtures: small real runs made once per test session (seconds, not minutes)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with the reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present (the shared datasets live beside the project as ../shared/data)")
    return path


def tiny_lm_config(**extra: str):
    from guimo.config import apply_overrides
    from guimo.scenarios.lm import SCENARIO

    overrides = ["model=nano", "data.max_bytes=300000", "data.vocab_size=512", "data.eval_tokens=5000",
                 "train.max_steps=30", "train.eval_every=15", "train.checkpoint_every=15", "train.batch_size=16",
                 "train.warmup_steps=5"]
    overrides += [f"{k}={v}" for k, v in extra.items()]
    return apply_overrides(SCENARIO.config_cls(), overrides, SCENARIO.presets)


@pytest.fixture(scope="session")
def tiny_lm_run(tmp_path_factory) -> Path:
    """A finished `lm` run (nano model, 300 KB of stdlib source, 30 steps): ~10 s, shared."""
    from guimo.pipeline.runner import run_pipeline

    out = tmp_path_factory.mktemp("runs") / "tiny-lm"
    run_pipeline("lm", tiny_lm_config(), out, quiet=True)
    return out
