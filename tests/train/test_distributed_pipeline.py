"""`torchrun --nproc_per_node=2 -m guimo run lm ...` end to end: one run directory (rank 0's
timestamped path, broadcast), rank 0 writes, every stage done, one summary printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_guimo_run_lm_under_torchrun(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"def f{i}(x):\n    return x * {i % 13} + {i % 7}\n\n" for i in range(3000)))
    sets = ["model=nano", "data.vocab_size=300", "data.eval_tokens=3000", "train.max_steps=20", "train.eval_every=10",
            "train.checkpoint_every=10", "train.batch_size=16", "train.warmup_steps=5",
            "train.device=cpu"]  # two processes on the CPU (gloo), also on a machine with one GPU
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "guimo", "run", "lm",
           "--data", str(corpus), *[a for s in sets for a in ("--set", s)]]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = list((work / "runs").iterdir())
    assert len(runs) == 1, runs  # both ranks used rank 0's timestamped path
    manifest = json.loads((runs[0] / "manifest.json").read_text())
    assert manifest["status"] == "done"
    train = manifest["stages"]["train"]
    assert (train["steps"], train["world_size"], train["examples_seen"]) == (20, 2, 320)
    log = [json.loads(line) for line in (runs[0] / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [10, 20] and [r["step"] for r in log if "eval" in r] == [10, 20]
    assert (runs[0] / "model.safetensors").exists()
    assert proc.stdout.count("transformer") == 1  # the summary table, printed by rank 0 only
