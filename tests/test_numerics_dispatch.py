"""The numeric-identity tests (marker ``numerics``: gradient accumulation, resume, DDP equality, int8, pretrained
loading, transformer equivalences) once more under other CPU kernels, as one test of the main pass.

Why: their tolerances come from the dtype and the reduction size (``tests/numerics.py``), which should hold on every
CPU torch supports, but the suite only ever runs this machine's kernels. Torch reads its dispatch from the environment
when it is imported, so the second run is its own pytest process:

- ATen's vectorised ops as on an AVX2-only CPU (``ATEN_CPU_CAPABILITY=avx2``),
- oneDNN capped at AVX2 (``ONEDNN_MAX_CPU_ISA=AVX2``),
- MKL's matmuls on its SSE4.2 path (a different summation order on every x86 CPU; on AMD, MKL already runs AVX2).

A tolerance that only holds for this machine's instruction set then fails here, not on a user's. Run as a test (not a
second command after the suite) it shares the cores with the other files under pytest-xdist instead of running alone
on one core at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DISPATCH = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}


@pytest.mark.timeout(1800)  # ~90 s on a 2-core EPYC beside the other files
def test_numerics_tests_pass_under_another_kernel_dispatch(tmp_path, request):
    if all(os.environ.get(k) == v for k, v in DISPATCH.items()):
        pytest.skip("this pytest already runs under the other dispatch: its numerics tests are that run")
    env = {**os.environ, **DISPATCH}
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_XDIST_TESTRUNUID", None)
    env.pop("PYTEST_XDIST_WORKER_COUNT", None)
    # only the files that hold numerics tests, as this session collected them (collecting all ~1,400 tests again costs
    # the second process ~20 s); run alone, this test collected none of them, and the second process looks everywhere
    files = sorted({str(item.path.relative_to(ROOT)) for item in request.session.items if item.get_closest_marker("numerics")})
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'base'}",
           "-m", "numerics and not slow", *(files or ["tests"])]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    out = r.stdout + r.stderr
    assert "(ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=SSE4_2)" in out, out[-3000:]  # its header (tests/conftest.py) names the forced dispatch
    assert r.returncode == 0, f"the numerics tests under {DISPATCH} failed (rc {r.returncode}):\n{out[-6000:]}"
    assert " passed" in out and "no tests ran" not in out, out[-3000:]
