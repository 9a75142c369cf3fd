"""Shared fixtures: small real runs made once per test session (seconds, not minutes)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """One intra-op torch thread for the whole session (session fixtures included), restored after.

    The suite's models are tiny, and with other processes sharing 2 cores OpenMP's second thread
    is often descheduled while every small op waits for it: measured here, a 30k-parameter
    training step took ~1.2 s on 2 threads and ~4 ms on 1. Servers and workers started as
    subprocesses choose their own threads.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_report_header(config):
    """Which kernels ran: `make test` runs the `numerics` tests again under another dispatch."""
    import os

    import torch

    forced = " ".join(f"{k}={os.environ[k]}" for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS") if k in os.environ)
    return f"torch {torch.__version__}, CPU kernels: {torch.backends.cpu.get_cpu_capability()}" + (f" ({forced})" if forced else "")


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` run where torch sees a GPU (bench/device_check.sh runs the suite there) and skip here."""
    marked = [item for item in items if item.get_closest_marker("cuda")]
    if not marked:
        return
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason=f"needs a CUDA device (torch {torch.__version__} sees none)")
        for item in marked:
            item.add_marker(skip)


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
