"""A micro-sweep shared by the scale tests, and one torch thread while they run.

One intra-op thread: with many processes sharing 2 cores, a second OpenMP thread made these tiny
models' steps 10-30x slower (measured: ~20 ms vs ~650 ms per step).
"""

from __future__ import annotations

from pathlib import Path

import pytest

MICRO_OVERRIDES = ["data.max_bytes=150000", "data.vocab_size=300", "data.eval_tokens=2000"]


@pytest.fixture(autouse=True)
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def micro_spec(**kwargs):
    from guimo.scale.sweep import SweepSpec

    base = dict(scenario="lm", sizes=["nano", "tiny", "mini"], fractions=[0.5, 1.0], epochs=1.0, context=32, batch_size=8,
                overrides=list(MICRO_OVERRIDES), threads=1)
    base.update(kwargs)
    return SweepSpec(**base)


@pytest.fixture(scope="session")
def micro_sweep(tmp_path_factory) -> Path:
    """3 sizes (46k-396k parameters) x 2 data fractions of 150 KB of stdlib source (~90k tokens, one
    epoch): ~30-60 s on 1 thread. With 60 KB the larger models were data-starved and the loss was
    not reliably monotone in size."""
    from guimo.scale.sweep import run_sweep

    out = tmp_path_factory.mktemp("scale") / "sweep"
    run_sweep(micro_spec(), out, quiet=True)
    return out
