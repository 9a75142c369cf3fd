"""`torchrun --nproc_per_node=2 -m guimo run lm ...` end to end: one run directory (rank 0's
timestamped path, broadcast), rank 0 writes, every stage done, one summary printed, and the
losses and metrics of a one-process run with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.numerics import assert_close

ROOT = Path(__file__).resolve().parents[2]
SETS = ["model=nano", "data.vocab_size=300", "data.eval_tokens=3000", "train.max_steps=20", "train.eval_every=10",
        "train.checkpoint_every=10", "train.batch_size=16", "train.warmup_steps=5", "train.log_every=1",
        "train.device=cpu"]  # two processes on the CPU (gloo), also on a machine with one GPU


@pytest.mark.numerics
def test_guimo_run_lm_under_torchrun_matches_one_process(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"def f{i}(x):\n    return x * {i % 13} + {i % 7}\n\n" for i in range(3000)))
    args = ["-m", "guimo", "run", "lm", "--data", str(corpus), *[a for s in SETS for a in ("--set", s)]]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    work = tmp_path / "work"
    work.mkdir()
    one = subprocess.Popen([sys.executable, *args, "--out", str(tmp_path / "one")], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args],
                          cwd=work, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out, _ = one.communicate(timeout=240)
    assert one.returncode == 0, out[-3000:]

    runs = list((work / "runs").iterdir())
    assert len(runs) == 1, runs  # both ranks used rank 0's timestamped path
    two = runs[0]
    manifest = json.loads((two / "manifest.json").read_text())
    assert manifest["status"] == "done"
    train = manifest["stages"]["train"]
    assert (train["steps"], train["world_size"], train["examples_seen"], train["max_steps"]) == (20, 2, 320, 20)
    log = [json.loads(line) for line in (two / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == list(range(1, 21)) and [r["step"] for r in log if "eval" in r] == [10, 20]
    assert (two / "model.safetensors").exists()
    summary = out[out.index("transformer"):]  # what one process prints after its progress bars
    assert summary.count("transformer") >= 1 and proc.stdout.count("transformer") == summary.count("transformer")  # rank 0 only

    # Against one process with the same global batch: the two ranks' gradients are averaged in
    # another order, so the numbers agree to rounding. Each logged loss is a mean over the batch's
    # tokens and each validation one over data.eval_tokens; over 20 steps the weights' drift moves
    # them far less than one evaluation's own rounding bound (measured: ~1e-7 relative in the
    # losses, ~1e-9 in the metrics, on an AMD EPYC under the AVX-512 and AVX2 dispatches).
    block = json.loads((two / "model_config.json").read_text())["max_len"]
    log_one = [json.loads(line) for line in (tmp_path / "one" / "train_log.jsonl").read_text().splitlines()]
    assert json.loads((tmp_path / "one" / "manifest.json").read_text())["stages"]["train"]["world_size"] == 1
    losses = lambda records: torch.tensor([r["loss"] for r in records if "loss" in r], dtype=torch.float64)  # noqa: E731
    assert_close(losses(log), losses(log_one), dtype=torch.float32, reduction=16 * block, name="logged training losses")
    evals = lambda records: torch.tensor([r["eval"]["loss"] for r in records if "eval" in r], dtype=torch.float64)  # noqa: E731
    assert_close(evals(log), evals(log_one), dtype=torch.float32, reduction=3000, name="validation losses")
    metrics, metrics_one = (json.loads((run / "metrics.json").read_text()) for run in (two, tmp_path / "one"))
    for name in ("loss", "bits_per_byte"):
        assert_close(torch.tensor(metrics["model"][name]), torch.tensor(metrics_one["model"][name]), dtype=torch.float32,
                     reduction=3000, name=f"test {name}")
