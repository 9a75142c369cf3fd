"""A micro-sweep shared by the scale tests (one torch thread comes from tests/conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

MICRO_OVERRIDES = ["data.max_bytes=150000", "data.vocab_size=300", "data.eval_tokens=2000"]
# The probe tests check the probe's mechanics and choices between settings far apart (a 20x smaller lr, dropout
# 0.6), which a third of the data shows as clearly; the fit's shape needs the micro-sweep's full 150 KB.
PROBE_OVERRIDES = ["data.max_bytes=50000", "data.vocab_size=300", "data.eval_tokens=2000"]


def micro_spec(**kwargs):
    from guimo.scale.sweep import SweepSpec

    base = dict(scenario="lm", sizes=["nano", "tiny", "mini"], fractions=[0.5, 1.0], epochs=1.0, context=32, batch_size=8, lr_ref=3e-3,
                overrides=list(MICRO_OVERRIDES), threads=1)
    base.update(kwargs)
    return SweepSpec(**base)


@pytest.fixture(scope="session")
def micro_sweep(tmp_path_factory) -> Path:
    """3 sizes (46k-396k parameters) x 2 data fractions of 150 KB of stdlib source (~90k tokens, one
    epoch): ~30-60 s on 1 thread. With 60 KB the larger models were data-starved and the loss was
    not reliably monotone in size.

    Trained once for all xdist workers; each worker gets its own copy, since some tests write reports into it."""
    from guimo.scale.sweep import run_sweep
    from tests.conftest import built_once

    shared = built_once(tmp_path_factory, "micro-sweep", lambda out: run_sweep(micro_spec(), out, quiet=True))
    mine = tmp_path_factory.mktemp("scale") / "sweep"
    shutil.copytree(shared, mine)
    return mine


def write_recipe(path: Path, sweep: dict, run: dict | None = None, fit: dict | None = None, verdict: dict | None = None) -> Path:
    """A scale recipe file (what `guimo scale --config` reads) from plain tables."""

    def value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return f'"{v}"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    lines = []
    for name, table in (("sweep", sweep), ("run", run), ("fit", fit), ("verdict", verdict)):
        if table:
            lines.append(f"[{name}]")
            lines += [f"{k} = {value(v)}" for k, v in table.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def micro_recipe(path: Path, overrides: list[str] = MICRO_OVERRIDES, **sweep) -> Path:
    """The micro-sweep's settings (``micro_spec``) as a recipe: a CLI sweep from it resumes the library's micro-sweep."""
    base = dict(sizes=["nano", "tiny", "mini"], fractions=[0.5, 1.0], epochs=1.0, context=32, batch_size=8, lr_ref=3e-3, threads=1)
    run = dict(kv.split("=", 1) for kv in overrides)
    return write_recipe(path, {**base, **sweep}, {k: int(v) for k, v in run.items()}, {"bootstrap": 3, "noise_sims": 0})
