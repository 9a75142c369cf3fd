"""Training and full-ranking speed of guimo's SASRec+ vs RecBole's SASRec, same dims, same data.

    python bench/recommend_speed.py [--data ml-100k|beauty] [--steps 40] [--threads 1]
                                    [--recbole-python /tmp/recbole-venv/bin/python] [--no-write]

Both models: 2 blocks, 1 head, width 64, feed-forward 256, max_len 50, dropout 0.2,
cross-entropy over all items, batch 128, Adam(W), fp32, one process with ``--threads`` intra-op
threads. Units: a *training target* is one next-item prediction trained (RecBole trains one
target per prefix example; guimo every position of a sequence), so targets/s compares the work
done; sequences/s is reported as each library counts it. Full ranking scores every leave-one-out
test user against the whole catalogue (users/s), including seen-item filtering and metrics.
RecBole runs in its own virtual environment (docs/FACTS.md gives the recipe); when it cannot run,
the reason is recorded instead of a number. Writes its part of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from benchdoc import write_section  # noqa: E402  (bench/ is on sys.path when run as a script)
DATA = {
    "ml-100k": ROOT.parent / "shared" / "data" / "movielens-100k" / "ml-100k.inter",
    "beauty": ROOT.parent / "shared" / "data" / "seqrec" / "Beauty_bert4rec.txt",
}
DIMS = dict(max_len=50, d_model=64, n_blocks=2, n_heads=1, d_ff=256, dropout=0.2)


def bench_guimo(path: Path, steps: int, batch: int) -> dict:
    import numpy as np
    import torch

    from guimo.data.interactions import build_sequences, read_interactions, split_sequences
    from guimo.data.recdata import NextItemWindows
    from guimo.evaluate.ranking import evaluate_ranking
    from guimo.models.sasrec import SASRec, SASRecConfig
    from guimo.scenarios.recommend import model_scorer
    from guimo.train.config import TrainConfig
    from guimo.train.loop import make_optimizer

    seqs = build_sequences(read_interactions(path), min_seq_len=3)
    split = split_sequences(seqs, "loo")
    train = [seqs.seq(u)[: split.train_end[u]] for u in range(len(seqs))]
    ds = NextItemWindows(train, DIMS["max_len"])
    torch.manual_seed(0)
    model = SASRec(SASRecConfig(n_items=len(seqs.item_ids), loss="ce", **DIMS))
    opt = make_optimizer(model, TrainConfig(lr=1e-3, weight_decay=0.0), torch.device("cpu"))
    rng = np.random.default_rng(0)
    model.train()
    n_seq = n_tgt = 0
    for i in range(steps + 3):
        if i == 3:  # after warm-up steps
            t0 = time.perf_counter()
        b = ds.batch(rng.choice(len(ds), batch, replace=False).tolist())
        loss = model(b["seq"], b["target"])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= 3:
            n_seq += batch
            n_tgt += int((b["target"] > 0).sum())
    train_s = time.perf_counter() - t0
    model.eval()
    hist = [seqs.seq(int(u))[: int(e)] for u, e in zip(split.test_users, split.test_end)]
    targets = np.array([seqs.seq(int(u))[int(e)] for u, e in zip(split.test_users, split.test_end)])
    t0 = time.perf_counter()
    evaluate_ranking(model_scorer(model, DIMS["max_len"]), hist, targets, len(seqs.item_ids), sampled=0)
    rank_s = time.perf_counter() - t0
    return {"sequences_per_s": n_seq / train_s, "targets_per_s": n_tgt / train_s, "users_per_s": len(hist) / rank_s,
            "users": len(hist), "items": len(seqs.item_ids)}


RECBOLE_SCRIPT = r"""
import json, sys, time, os
import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.model.sequential_recommender import SASRec
from recbole.utils import init_seed
data_dir, name, steps, batch, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
cfg = Config(model="SASRec", dataset=name, config_dict={
    "data_path": data_dir, "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
    "load_col": {"inter": ["user_id", "item_id", "timestamp"]}, "MAX_ITEM_LIST_LENGTH": 50,
    "hidden_size": 64, "inner_size": 256, "n_layers": 2, "n_heads": 1, "hidden_dropout_prob": 0.2,
    "attn_dropout_prob": 0.2, "loss_type": "CE", "train_neg_sample_args": None, "train_batch_size": batch,
    "eval_batch_size": 512, "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full"},
    "metrics": ["NDCG", "Hit"], "topk": [10], "valid_metric": "NDCG@10", "device": "cpu", "use_gpu": False,
    "show_progress": False, "worker": 0, "seed": 0, "checkpoint_dir": os.path.join(data_dir, "ckpt"), "state": "ERROR"})
init_seed(0, True)
ds = create_dataset(cfg)
train, valid, test = data_preparation(cfg, ds)
model = SASRec(cfg, train.dataset)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
model.train()
n = 0
for i, inter in enumerate(train):
    if i == 3:
        t0 = time.perf_counter()
    loss = model.calculate_loss(inter)
    loss.backward(); opt.step(); opt.zero_grad()
    if i >= 3:
        n += len(inter)
    if i >= steps + 2:
        break
train_s = time.perf_counter() - t0
from recbole.trainer import Trainer
trainer = Trainer(cfg, model)
t0 = time.perf_counter()
trainer.evaluate(test, load_best_model=False, show_progress=False)
rank_s = time.perf_counter() - t0
users = len(test.dataset)  # leave-one-out: one test interaction per user
print(json.dumps({"sequences_per_s": n / train_s, "targets_per_s": n / train_s, "users_per_s": users / rank_s, "users": users}))
"""


def bench_recbole(python: str, path: Path, data: str, steps: int, batch: int, threads: int) -> dict:
    """RecBole's SASRec in its own venv; returns numbers or {"error": why}."""
    if not Path(python).exists():
        return {"error": f"no RecBole environment at {python} (recipe in docs/FACTS.md)"}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / data
        folder.mkdir()
        if path.suffix == ".inter":
            (folder / f"{data}.inter").write_bytes(path.read_bytes())
        else:  # SASRec pairs in time order: the line number is the timestamp
            lines = ["user_id:token\titem_id:token\ttimestamp:float"]
            for i, line in enumerate(path.read_text().splitlines()):
                u, it = line.split()
                lines.append(f"{u}\t{it}\t{i}")
            (folder / f"{data}.inter").write_text("\n".join(lines) + "\n")
        env = {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "OMP_NUM_THREADS": str(threads), "PATH": "/usr/bin:/bin"}
        proc = subprocess.run([python, "-c", RECBOLE_SCRIPT, tmp, data, str(steps), str(batch), str(threads)],
                              capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": f"RecBole failed: {tail[0][:300]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", choices=sorted(DATA), default="ml-100k")
    p.add_argument("--steps", type=int, default=40, help="timed training steps per library")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=1, help="intra-op threads for both libraries")
    p.add_argument("--recbole-python", default="/tmp/recbole-venv/bin/python")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/BENCHMARKS.md alone")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    path = DATA[args.data]
    if not path.exists():
        sys.exit(f"{path} not found")
    guimo = bench_guimo(path, args.steps, args.batch)
    recbole = bench_recbole(args.recbole_python, path, args.data, args.steps, args.batch, args.threads)
    result = {"data": args.data, "guimo": guimo, "recbole": recbole, "args": vars(args),
              "date": dt.date.today().isoformat(), "machine": f"{platform.processor() or platform.machine()}, {args.threads} thread(s)"}
    print(json.dumps(result, indent=2))
    if not args.no_write:
        write_section("recommend_speed", markdown(result))
    return 0


def markdown(r: dict) -> str:
    g, rb = r["guimo"], r["recbole"]
    lines = [
        f"Command: `python bench/recommend_speed.py --data {r['data']} --steps {r['args']['steps']} --threads {r['args']['threads']}` "
        f"({r['date']}; shared 2-core machine, {r['args']['threads']} intra-op thread(s); other jobs were running, so compare the ratio).",
        f"SASRec, 2 blocks x 1 head x width 64, max_len 50, full-softmax CE, batch {r['args']['batch']}, fp32; {r['data']} "
        f"({g['users']} test users, {g['items']} items, leave-one-out, full ranking with seen items filtered).",
        "",
        "| library | training targets/s | training sequences/s | full-ranking users/s |",
        "| --- | ---: | ---: | ---: |",
        f"| guimo | {g['targets_per_s']:,.0f} | {g['sequences_per_s']:,.0f} | {g['users_per_s']:,.0f} |",
    ]
    if "error" in rb:
        lines.append(f"| RecBole | — | — | — |\n\nRecBole did not run: {rb['error']}")
    else:
        lines.append(f"| RecBole 1.2 SASRec | {rb['targets_per_s']:,.0f} | {rb['sequences_per_s']:,.0f} | {rb['users_per_s']:,.0f} |")
        lines += ["", f"guimo / RecBole: {g['targets_per_s'] / rb['targets_per_s']:.1f}x training targets/s, "
                  f"{g['users_per_s'] / rb['users_per_s']:.1f}x ranking users/s. (RecBole trains one target per prefix "
                  "example, guimo every position of a sequence at once.)"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
