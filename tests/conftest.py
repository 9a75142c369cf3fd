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


# The assistant's NLU from scratch (a 2-layer, width-128 model on 3,000 generated EN + ZH commands; ~75 s of one core;
# the served weights are its int8 model): tests/scenarios/test_assistant.py measures it, the CLI, server and console
# tests serve it. README's tour trains the same settings through the CLI (tests/test_readme.py's SMALL_ASSISTANT).
TINY_ASSISTANT = ["init.pretrained=none", "model=scratch_small", "model.max_len=32", "generator.n=3000", "generator.ood=200",
                  "train.max_steps=1000", "train.lr=2e-3", "train.warmup_steps=20", "train.eval_every=500", "train.checkpoint_every=0",
                  "train.batch_size=32", "optimize.quantize_tolerance=0.5"]  # int8 kept: the metrics and the predictor are the int8 model's


def tiny_assistant_run(tmp_path_factory) -> Path:
    """A finished `assistant` run with ``TINY_ASSISTANT``, trained once per test session.

    Under pytest-xdist each worker is its own process, so a session fixture alone would train once per worker:
    the run lives in the session's shared temporary folder instead, and a file lock lets the first worker train
    it while the others wait."""
    import os

    from filelock import FileLock

    from guimo.cli.run import resolve_config
    from guimo.pipeline.runner import run_pipeline
    from guimo.scenarios import get

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the session's folder, shared by workers
    out = root / "assistant-tiny-run"
    with FileLock(str(root / "assistant-tiny-run.lock")):
        if not (out / "metrics.json").is_file():
            cfg = resolve_config(get("assistant"), None, TINY_ASSISTANT, None)
            run_pipeline("assistant", cfg, out, quiet=True, set_keys={s.split("=")[0] for s in TINY_ASSISTANT})
    return out
