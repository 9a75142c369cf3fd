"""Kill-and-resume: a run SIGKILLed mid-training and restarted with the same command retraces
the uninterrupted run exactly (weights, optimizer, loss curve), with dropout on so the RNG
state has to travel in the checkpoint too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("worker.py")
ROOT = Path(__file__).resolve().parents[2]


def start(out: Path, *extra: str, env: dict | None = None, device: str = "cpu") -> subprocess.Popen:
    out.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    cmd = [sys.executable, str(WORKER), str(out), "--max-steps", "40", "--checkpoint-every", "10", "--dropout", "0.1", "--device", device, *extra]
    return subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen, timeout: float = 120) -> None:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out


def log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


# On CUDA the same kernels on the same shapes are deterministic in practice, but nothing promises it (atomics in
# some backward kernels), so the check there allows float noise; on the CPU it is exact to 1e-6.
@pytest.mark.parametrize("device, tol", [("cpu", 1e-6), pytest.param("cuda", 1e-4, marks=pytest.mark.cuda)])
def test_sigkill_then_same_command_matches_uninterrupted_run(tmp_path, device, tol):
    from safetensors.torch import load_file

    straight = start(tmp_path / "straight", device=device)
    killed = start(tmp_path / "killed", env={"GUIMO_TEST_HANG_AT": "23"}, device=device)
    deadline = time.monotonic() + 120
    while not (tmp_path / "killed" / "hanging").exists():
        assert killed.poll() is None, killed.communicate()[0]
        assert time.monotonic() < deadline, "worker never reached step 23"
        time.sleep(0.1)
    killed.kill()  # SIGKILL: no handler, no final checkpoint
    killed.wait()
    ckpts = sorted(p.name for p in (tmp_path / "killed" / "checkpoints").glob("step-*.json"))
    assert ckpts == ["step-0000010.json", "step-0000020.json"]
    assert max(r["step"] for r in log(tmp_path / "killed")) == 23  # steps 21-23 happened and are lost

    finish(start(tmp_path / "killed", device=device))  # the same command, no flag
    finish(straight)

    a, b = log(tmp_path / "straight"), log(tmp_path / "killed")
    steps = [r["step"] for r in b if "loss" in r]
    assert steps == list(range(1, 41))  # each step logged exactly once after the truncation
    after = lambda recs: [(r["step"], r.get("loss"), r.get("eval")) for r in recs if r["step"] > 20]
    for (sa, la, ea), (sb, lb, eb) in zip(after(a), after(b), strict=True):
        assert sa == sb
        if la is not None:
            assert abs(la - lb) <= tol, (sa, la, lb)
        else:
            assert ea["loss"] == pytest.approx(eb["loss"], abs=tol)

    final_a, final_b = load_file(str(tmp_path / "straight" / "final.safetensors")), load_file(str(tmp_path / "killed" / "final.safetensors"))
    for name in final_a:
        torch.testing.assert_close(final_b[name], final_a[name], atol=tol, rtol=0, msg=name)
    last_a = load_file(str(tmp_path / "straight" / "checkpoints" / "step-0000040.safetensors"))
    last_b = load_file(str(tmp_path / "killed" / "checkpoints" / "step-0000040.safetensors"))
    assert last_a.keys() == last_b.keys()
    for name in last_a:  # model, AdamW moments and the RNG state
        torch.testing.assert_close(last_b[name], last_a[name], atol=tol, rtol=0, msg=name)
