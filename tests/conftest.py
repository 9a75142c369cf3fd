"""Shared fixtures: small real runs made once per test session (seconds, not minutes)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

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


# The files that take minutes on one worker, longest first (measured with `pytest --durations=0`, 2-core EPYC): under
# `make test` pytest-xdist hands out whole files in collection order (`--dist loadfile --no-loadscope-reorder`), so
# these start at once and the last minutes are not one worker alone with the README's tour while the other idles.
LONG_FILES = ("tests/test_readme.py", "tests/test_readme_chains.py", "tests/scale/test_sweep.py", "tests/scale/test_cli.py", "tests/serve/console/test_console.py",
              "tests/test_numerics_dispatch.py", "tests/scale/test_extrapolate.py", "tests/models/test_text_encoder.py", "tests/scenarios/test_search.py")


def pytest_collection_modifyitems(config, items):
    """The long files first (``LONG_FILES``, a stable sort: every worker collects the same order); tests marked ``cuda``
    run where torch sees a GPU (bench/device_check.sh runs the suite there) and skip here."""
    rank = {name: i for i, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))
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
# tests serve it. README's tour trains the same settings for 300 steps through the CLI (tests/test_readme.py's SMALL_ASSISTANT).
TINY_ASSISTANT = ["init.pretrained=none", "model=scratch_small", "model.max_len=32", "generator.n=3000", "generator.ood=200",
                  "train.max_steps=1000", "train.lr=2e-3", "train.warmup_steps=20", "train.eval_every=500", "train.checkpoint_every=0",
                  "train.batch_size=32", "optimize.quantize_tolerance=0.5"]  # int8 kept: the metrics and the predictor are the int8 model's


def tiny_assistant_run(tmp_path_factory) -> Path:
    """A finished `assistant` run with ``TINY_ASSISTANT``, trained once per test session (see ``built_once``)."""
    from guimo.cli.run import resolve_config
    from guimo.pipeline.runner import run_pipeline
    from guimo.scenarios import get

    def train(out: Path) -> None:
        cfg = resolve_config(get("assistant"), None, TINY_ASSISTANT, None)
        run_pipeline("assistant", cfg, out, quiet=True, set_keys={s.split("=")[0] for s in TINY_ASSISTANT})

    return built_once(tmp_path_factory, "assistant-tiny-run", train)


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """``build(folder)`` once per test session, the folder shared by every pytest-xdist worker; treat it as read-only.

    Each worker is its own process, so a session fixture alone would build once per worker: the folder lives in
    the session's shared temporary folder instead, and a file lock lets the first worker build it while the others
    wait. A marker file written after ``build`` returns means a worker killed halfway leaves no half-built folder."""
    import os
    import shutil

    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the session's folder, shared by workers
    out, done = root / name, root / f"{name}.built"
    with FileLock(str(root / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(out, ignore_errors=True)
            build(out)
            done.touch()
    return out
