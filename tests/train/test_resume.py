"""Kill-and-resume: a run SIGKILLed mid-training and restarted with the same command retraces
the uninterrupted run bit for bit on the CPU (weights, optimizer moments, RNG state, loss curve),
with dropout on so the RNG state has to travel in the checkpoint too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.numerics import adam_tolerance, assert_all_close, assert_all_equal
from tests.train.worker import BLOCK

WORKER = Path(__file__).with_name("worker.py")
ROOT = Path(__file__).resolve().parents[2]


def start(out: Path, *extra: str, env: dict | None = None, device: str = "cpu", dtype: str = "float32") -> subprocess.Popen:
    out.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    cmd = [sys.executable, str(WORKER), str(out), "--max-steps", "40", "--checkpoint-every", "10", "--dropout", "0.1", "--device", device,
           "--dtype", dtype, *extra]
    return subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen, timeout: float = 120) -> None:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out


def log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def kill_at(proc: subprocess.Popen, out: Path, step: int) -> None:
    """SIGKILL the worker once it hangs at ``step`` (GUIMO_TEST_HANG_AT): no handler runs, no final checkpoint."""
    deadline = time.monotonic() + 120
    while not (out / "hanging").exists():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, f"worker never reached step {step}"
        time.sleep(0.1)
    proc.kill()
    proc.wait()


# On the CPU the resumed run executes the same kernels on the same values: bit for bit, in the float32 a
# user trains in. On CUDA nothing promises that (atomics in some backward kernels), so that variant
# trains in float64 and allows the rounding bound of tests.numerics.adam_tolerance.
@pytest.mark.numerics
@pytest.mark.parametrize("device, dtype", [("cpu", "float32"), pytest.param("cuda", "float64", marks=pytest.mark.cuda)])
def test_sigkill_then_same_command_matches_uninterrupted_run(tmp_path, device, dtype):
    from safetensors.torch import load_file

    straight = start(tmp_path / "straight", device=device, dtype=dtype)
    kill_at(start(tmp_path / "killed", env={"GUIMO_TEST_HANG_AT": "23"}, device=device, dtype=dtype), tmp_path / "killed", 23)
    ckpts = sorted(p.name for p in (tmp_path / "killed" / "checkpoints").glob("step-*.json"))
    assert ckpts == ["step-0000010.json", "step-0000020.json"]
    assert max(r["step"] for r in log(tmp_path / "killed")) == 23  # steps 21-23 happened and are lost

    finish(start(tmp_path / "killed", device=device, dtype=dtype))  # the same command, no flag
    finish(straight)

    a, b = log(tmp_path / "straight"), log(tmp_path / "killed")
    steps = [r["step"] for r in b if "loss" in r]
    assert steps == list(range(1, 41))  # each step logged exactly once after the truncation
    exact = device == "cpu"
    if exact:
        assert b == [{**r, "elapsed_s": q["elapsed_s"]} if "elapsed_s" in r else r for r, q in zip(a, b, strict=True)]  # all but the clock
    straight_files = [load_file(str(tmp_path / "straight" / f)) for f in ("final.safetensors", "checkpoints/step-0000040.safetensors")]
    killed_files = [load_file(str(tmp_path / "killed" / f)) for f in ("final.safetensors", "checkpoints/step-0000040.safetensors")]
    for expected, actual in zip(straight_files, killed_files):  # the model, then model + AdamW moments + RNG state
        if exact:
            assert_all_equal(actual, expected)
        else:
            lr_sum = sum(r["lr"] for r in a if "lr" in r)
            assert_all_close(actual, expected, atol=adam_tolerance(torch.float64, 16 * BLOCK, lr_sum))


@pytest.mark.numerics
def test_a_validation_window_travels_in_the_checkpoint(tmp_path):
    """With ``train.select_window=3`` the kept weights may be a validation's from before a kill: killed at step 33, the
    run resumes from step 30, whose checkpoint carries the window's weights, and keeps bit for bit what the
    uninterrupted run keeps."""
    from safetensors.torch import load_file

    window = ("--select-window", "3")
    straight = start(tmp_path / "straight", *window)
    kill_at(start(tmp_path / "killed", *window, env={"GUIMO_TEST_HANG_AT": "33"}), tmp_path / "killed", 33)
    finish(start(tmp_path / "killed", *window))
    finish(straight)
    results = [json.loads((tmp_path / run / "result.json").read_text()) for run in ("straight", "killed")]
    assert results[0]["best_step"] == results[1]["best_step"] <= 30, results  # weights from before the kill were kept
    assert_all_equal(load_file(str(tmp_path / "killed" / "final.safetensors")), load_file(str(tmp_path / "straight" / "final.safetensors")))
