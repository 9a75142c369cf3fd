"""DDP under torchrun (gloo on CPU): 2 processes with the same global batch reach the weights 1
process reaches. Dropout is off because each process draws its own masks.

The two sum their gradients in a different order than one process does, so the weights agree to
rounding only; the runs train in float64, where Adam's amplification of that rounding stays far
below anything a bug would cause (tests.numerics.adam_tolerance; in float32 it would not).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.numerics import adam_tolerance, assert_all_close, assert_close
from tests.train.worker import BLOCK

WORKER = Path(__file__).with_name("worker.py")
ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
ARGS = ["--max-steps", "20", "--batch-size", "16", "--dropout", "0", "--checkpoint-every", "10", "--dtype", "float64"]


def torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]


@pytest.mark.numerics
def test_two_processes_match_one_with_the_same_global_batch(tmp_path):
    from safetensors.torch import load_file

    one = subprocess.Popen([sys.executable, str(WORKER), str(tmp_path / "one"), *ARGS], cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    two = subprocess.run(torchrun(str(WORKER), str(tmp_path / "two"), *ARGS), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=180)
    assert two.returncode == 0, two.stdout + two.stderr
    out, _ = one.communicate(timeout=120)
    assert one.returncode == 0, out

    assert json.loads((tmp_path / "two" / "result.json").read_text()) == {"steps": 20, "world_size": 2, "best_step": 20, "max_steps": 20}
    log_one = [json.loads(l) for l in (tmp_path / "one" / "train_log.jsonl").read_text().splitlines()]
    log_two = [json.loads(l) for l in (tmp_path / "two" / "train_log.jsonl").read_text().splitlines()]
    tokens = 16 * BLOCK  # terms in each step's loss and gradient sums
    lr_sum = sum(r["lr"] for r in log_one if "lr" in r)
    a, b = load_file(str(tmp_path / "one" / "final.safetensors")), load_file(str(tmp_path / "two" / "final.safetensors"))
    assert_all_close(b, a, atol=adam_tolerance(torch.float64, tokens, lr_sum))
    # rank 0 alone wrote the log and the checkpoints; the losses (which no optimizer normalises)
    # agree to the rounding of a sum over the batch's tokens
    assert [r["step"] for r in log_two] == [r["step"] for r in log_one]
    losses = lambda log: torch.tensor([r["loss"] for r in log if "loss" in r], dtype=torch.float64)  # noqa: E731
    assert_close(losses(log_two), losses(log_one), dtype=torch.float64, reduction=tokens, name="logged losses")
    assert sorted(p.name for p in (tmp_path / "two" / "checkpoints").iterdir()) == [
        "best.safetensors", "step-0000010.json", "step-0000010.safetensors", "step-0000020.json", "step-0000020.safetensors",
    ]


def test_rank_0_chooses_the_step_count_of_a_time_budget_for_every_rank(tmp_path):
    """Each process times its own steps; were each to choose, they could disagree and hang in DDP.
    Both ranks must end at the count rank 0 logged (each writes its count beside rank 0's log)."""
    args = ["--max-steps", "100000", "--batch-size", "16", "--dropout", "0", "--checkpoint-every", "0", "--eval-every", "0",
            "--max-time-s", "2"]  # the budget binds (about 2 s of training), the cap does not
    two = subprocess.run(torchrun(str(WORKER), str(tmp_path / "two"), *args), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=180)
    assert two.returncode == 0, two.stdout + two.stderr
    log = [json.loads(l) for l in (tmp_path / "two" / "train_log.jsonl").read_text().splitlines()]
    chosen = [r["plan"] for r in log if "plan" in r]
    assert len(chosen) == 1 and chosen[0]["source"] == "max_time_s"
    n = chosen[0]["max_steps"]
    assert 11 <= n < 100000 and log[-1]["step"] == n
    for rank in (0, 1):
        assert json.loads((tmp_path / "two" / f"rank-{rank}.json").read_text()) == {"steps": n, "max_steps": n}, rank
