"""Training and full-ranking speed of guimo's SASRec+ vs RecBole's SASRec, same dims, same data.

    python bench/recommend_speed.py [--data ml-100k|beauty] [--steps 40] [--threads 1]
                                    [--recbole-python /tmp/recbole-venv/bin/python] [--no-write]

Both models: 2 blocks, 1 head, width 64, feed-forward 256, max_len 50, dropout 0.2,
cross-entropy over all items, batch 128, Adam(W), fp32, one process with ``--threads`` intra-op
threads. Units: a *training target* is one next-item prediction trained (RecBole trains one
target per prefix example; guimo every position of a sequence), so targets/s compares the work
done; sequences/s is reported as each library counts it. Full ranking scores every leave-one-out
test user against the whole catalogue (users/s), including seen-item filtering and metrics.
RecBole runs in its own virtual environment (recipe in ../shared/docs/FACTS.md and DEVELOPERS.md); when it cannot run,
the reason is recorded instead of a number. guimo's side is the product: `guimo run recommend --data FILE` with
:data:`GUIMO_SETTINGS` through collect, preprocess and init, then its train stage's dataset, loss and validation in
``guimo.train.loop.fit`` (bench/product.py), and its evaluate stage's ranking. Writes
bench/results/recommend_speed_<data>.json and its sections of docs/benchmarks/recommend.md.

``--to-quality SECONDS`` measures time to quality instead: each library trains (same model, Adam
lr 1e-3, batch 128; guimo with its warmup and cosine decay over the steps that fill the budget) for SECONDS
of training time, pausing the clock to score the leave-one-out
*validation* users with its own full-ranking evaluator at regular intervals; the report gives
RecBole's best validation NDCG@10 and the training time each library needed to reach it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from benchdoc import page, write_section  # noqa: E402  (bench/ is on sys.path when run as a script)
DATA = {
    "ml-100k": ROOT.parent / "shared" / "data" / "movielens-100k" / "ml-100k.inter",
    "beauty": ROOT.parent / "shared" / "data" / "seqrec" / "Beauty_bert4rec.txt",
}
DIMS = dict(max_len=50, d_model=64, n_blocks=2, n_heads=1, d_ff=256, dropout=0.2)


# guimo's side is `guimo run recommend --data FILE --set ...` with these settings, RecBole's model and optimizer
# settings (Adam = AdamW without decay); trained by guimo.train.loop.fit (bench/product.py), so the figures are the
# product's trainer, dataset and loss, with its warmup and cosine schedule.
GUIMO_SETTINGS = [f"model.{k}={v}" for k, v in DIMS.items()] + [
    "model.loss=ce", "model.use_categories=false", "data.split=loo", "data.min_seq_len=3", "train.lr=1e-3",
    "train.weight_decay=0", "train.precision=fp32", "train.device=cpu", "eval.val_cases=none"]


def guimo_prepared(path: Path, batch: int, out: Path, extra: list[str] = ()):
    """collect, preprocess and init of `guimo run recommend --data PATH` with :data:`GUIMO_SETTINGS`."""
    from product import prepare

    return prepare("recommend", [*GUIMO_SETTINGS, f"train.batch_size={batch}", *extra], out, data=str(path))


def targets_per_example(train_set) -> float:
    """Mean next-item targets in one training example (guimo trains every position of a window)."""
    n = len(train_set)
    return float((train_set.batch(list(range(n)))["target"] > 0).sum()) / n


def bench_guimo(path: Path, steps: int, batch: int) -> dict:
    """Training speed of the product's train stage and full-ranking speed of its evaluate stage's ranking."""
    from guimo.scenarios.recommend import load_data, rank_model

    with tempfile.TemporaryDirectory() as tmp:
        prep = guimo_prepared(path, batch, Path(tmp) / "run")
        _, model, step_s = prep.train(steps + 3, Path(tmp) / "train", skip=3)
        data = load_data(prep.run)
        hist, targets = data.cases("test")
        model.eval()
        t0 = time.perf_counter()
        rank_model(model, hist, targets, data.n_items, prep.cfg.eval, sampled=False, seed=prep.cfg.seed)
        rank_s = time.perf_counter() - t0
        per_example = targets_per_example(prep.inputs.train_set)
    return {"sequences_per_s": batch / step_s, "targets_per_s": batch * per_example / step_s, "users_per_s": len(hist) / rank_s,
            "users": len(hist), "items": data.n_items, "trainer": "guimo.train.loop.fit"}


def guimo_to_quality(path: Path, budget_s: float, evals: int, batch: int) -> dict:
    """guimo's validation NDCG@10 over training time: ``[(train_s, steps, ndcg@10), ...]``.

    The step count that fills the budget is estimated from 20 timed steps (what `train.max_time_s` does), and
    the run's own validation (all users, full catalogue) runs every ``steps / evals`` steps with the clock
    paused."""
    with tempfile.TemporaryDirectory() as tmp:
        prep = guimo_prepared(path, batch, Path(tmp) / "run")
        _, _, step_s = prep.train(20, Path(tmp) / "probe", skip=3)
        steps = max(evals, int(budget_s / step_s))
        curve: list[list[float]] = []
        clock = {"start": 0.0, "paused": 0.0, "step": 0}

        def progress(step: int, info: dict) -> None:  # called after the step's evaluation: evaluate counts itself
            clock["step"] = step

        def evaluate(model) -> dict:
            t0 = time.perf_counter()
            metrics = prep.inputs.evaluate(model)
            curve.append([round(t0 - clock["start"] - clock["paused"], 2), clock["step"] + 1, metrics["ndcg@10"]])
            clock["paused"] += time.perf_counter() - t0
            return metrics

        clock["start"] = time.perf_counter()
        prep.fit(steps, Path(tmp) / "train", evaluate=evaluate, eval_every=max(1, steps // evals), progress=progress)
        n = len(prep.inputs.train_set)
    return {"curve": curve, "examples_per_epoch": n,
            "steps": steps, "trainer": "guimo.train.loop.fit"}


# RecBole setup shared by both modes: config, dataset, SASRec and its Adam.
RECBOLE_SETUP = r"""
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
"""
RECBOLE_SCRIPT = RECBOLE_SETUP + r"""model.train()
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


RECBOLE_TTQ_SCRIPT = RECBOLE_SETUP + r"""
from recbole.trainer import Trainer
budget_s, evals = float(sys.argv[6]), int(sys.argv[7])
trainer = Trainer(cfg, model)
curve, train_s, steps, next_eval = [], 0.0, 0, budget_s / evals
while train_s < budget_s:
    for inter in train:
        model.train()
        t0 = time.perf_counter()
        loss = model.calculate_loss(inter)
        loss.backward(); opt.step(); opt.zero_grad()
        train_s += time.perf_counter() - t0
        steps += 1
        if train_s >= next_eval or train_s >= budget_s:
            res = trainer.evaluate(valid, load_best_model=False, show_progress=False)
            curve.append([round(train_s, 2), steps, float(res["ndcg@10"])])
            print(json.dumps(curve[-1]), file=sys.stderr, flush=True)
            next_eval += budget_s / evals
        if train_s >= budget_s:
            break
print(json.dumps({"curve": curve, "examples_per_epoch": len(train.dataset)}))
"""


def bench_recbole(python: str, path: Path, data: str, steps: int, batch: int, threads: int,
                  script: str = RECBOLE_SCRIPT, extra: tuple[str, ...] = ()) -> dict:
    """RecBole's SASRec in its own venv; returns numbers or {"error": why}."""
    if not Path(python).exists():
        return {"error": f"no RecBole environment at {python} (recipe in DEVELOPERS.md)"}
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
        proc = subprocess.run([python, "-c", script, tmp, data, str(steps), str(batch), str(threads), *extra],
                              capture_output=True, text=True, env=env, timeout=3 * 3600)
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
    p.add_argument("--to-quality", type=float, metavar="SECONDS", help="time-to-validation-NDCG mode: train each library this long")
    p.add_argument("--evals", type=int, default=30, help="--to-quality: validation evaluations over the budget")
    p.add_argument("--no-write", action="store_true", help="print only; leave bench/results and docs/benchmarks/recommend.md alone")
    p.add_argument("--render", metavar="JSON", help="rewrite the docs section from a saved result (bench/results/recommend_*.json)")
    args = p.parse_args(argv)
    if args.render:
        saved = json.loads(Path(args.render).read_text())
        if saved["args"].get("to_quality"):
            write_section("recommend_to_quality", markdown_to_quality(saved), doc=page("recommend"))
        else:
            write_section("recommend_speed", markdown(saved), doc=page("recommend"))
        return 0
    import torch

    torch.set_num_threads(args.threads)
    path = DATA[args.data]
    if not path.exists():
        sys.exit(f"{path} not found")
    if args.to_quality:
        return to_quality(args, path)
    load = [os.getloadavg()[0]]
    guimo = bench_guimo(path, args.steps, args.batch)
    load.append(os.getloadavg()[0])
    recbole = bench_recbole(args.recbole_python, path, args.data, args.steps, args.batch, args.threads)
    load.append(os.getloadavg()[0])
    result = {"data": args.data, "guimo": guimo, "recbole": recbole, "args": vars(args), "load_avg_1min": load,
              "command": f"python bench/recommend_speed.py --data {args.data} --steps {args.steps} --threads {args.threads}",
              **provenance(args.threads)}
    print(json.dumps(result, indent=2))
    if not args.no_write:
        save(ROOT / "bench" / "results" / f"recommend_speed_{args.data}.json", result)
        write_section("recommend_speed", markdown(result), doc=page("recommend"))
    return 0


def provenance(threads: int) -> dict:
    """Date, machine and CPU (model, bf16/AMX flags) of a result."""
    sys.path.insert(0, str(ROOT))
    from guimo.device import cpu_info

    return {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()}, {threads} thread(s)", "cpu": cpu_info()}


def save(path: Path, result: dict) -> None:
    sys.path.insert(0, str(ROOT))
    from guimo.io import atomic_write_json

    atomic_write_json(path, result)


def to_quality(args, path: Path) -> int:
    load = [os.getloadavg()[0]]
    recbole = bench_recbole(args.recbole_python, path, args.data, 0, args.batch, args.threads,
                            script=RECBOLE_TTQ_SCRIPT, extra=(str(args.to_quality), str(args.evals)))
    load.append(os.getloadavg()[0])
    guimo = guimo_to_quality(path, args.to_quality, args.evals, args.batch)
    load.append(os.getloadavg()[0])
    result = {"data": args.data, "guimo": guimo, "recbole": recbole, "args": vars(args), "load_avg_1min": load,
              "command": (f"python bench/recommend_speed.py --data {args.data} --to-quality {args.to_quality:g} "
                          f"--evals {args.evals} --threads {args.threads}"),
              **provenance(args.threads)}
    print(json.dumps(result, indent=2))
    save(ROOT / "bench" / "results" / f"recommend_to_quality_{args.data}.json", result)
    if not args.no_write:
        write_section("recommend_to_quality", markdown_to_quality(result), doc=page("recommend"))
    return 0


def time_to(curve: list, level: float) -> float | None:
    """Training seconds at the first evaluation reaching ``level`` (None: never)."""
    return next((t for t, _, v in curve if v >= level), None)


def markdown_to_quality(r: dict) -> str:
    g, rb, a = r["guimo"], r["recbole"], r["args"]
    head = (f"Command: `python bench/recommend_speed.py --data {r['data']} --to-quality {a['to_quality']:g} --evals {a['evals']} "
            f"--threads {a['threads']}` — {r['date']} — {r['machine']}; 1-minute load average "
            f"{min(r['load_avg_1min']):.1f}-{max(r['load_avg_1min']):.1f} on the 2 shared cores. Same SASRec (2 blocks x 1 head x 64, "
            f"max_len 50, dropout 0.2, CE over all items), Adam lr 1e-3, batch {a['batch']}, fp32; validation = each user's "
            f"second-to-last item (leave-one-out), full ranking with seen items filtered, NDCG@10 by each library's own evaluator; "
            f"training time only (the clock stops while validating). CPU: {cpu_line(r)}. {trainer_line(r)}")
    if "error" in rb:
        return head + f"\n\nRecBole did not run: {rb['error']}"
    level = max(v for _, _, v in rb["curve"])
    t_rb, t_g = time_to(rb["curve"], level), time_to(g["curve"], level)
    rows = ["", "| library | best val NDCG@10 in budget | training s to RecBole's best | steps then | epochs then |",
            "| --- | ---: | ---: | ---: | ---: |"]
    for name, res, t in (("guimo", g, t_g), ("RecBole 1.2", rb, t_rb)):
        best = max(v for _, _, v in res["curve"])
        at = next(((s, st) for s, st, v in res["curve"] if v >= level), None)
        epochs = f"{at[1] * a['batch'] / res['examples_per_epoch']:.2f}" if at else "—"
        rows.append(f"| {name} | {best:.4f} | {f'{t:.0f}' if t is not None else 'not reached'} | {at[1] if at else '—'} | {epochs} |")
    verdict = (f"guimo reached RecBole's best validation NDCG@10 ({level:.4f}) {t_rb / t_g:.1f}x sooner (target >= 2x: "
               f"{'met' if t_rb / t_g >= 2 else 'NOT met'})." if t_g else
               f"guimo did not reach RecBole's best validation NDCG@10 ({level:.4f}) within the budget: target NOT met.")
    order = ""
    if len(r.get("load_avg_1min", [])) == 3:
        l0, l1, l2 = r["load_avg_1min"]
        order = (f" RecBole ran first, then guimo (not interleaved); the 1-minute load average was {l0:.1f} at the start, "
                 f"{l1:.1f} between the two and {l2:.1f} at the end.")
    if "steps" in g:
        order += (f" guimo's step count ({g['steps']}) was fixed from 20 timed steps before its run, as `train.max_time_s` "
                  f"does, and its training took {g['curve'][-1][0]:.0f} s of the {a['to_quality']:g} s.")
    rb_epochs = rb["curve"][-1][1] * a["batch"] / rb["examples_per_epoch"]
    caveat = (f" RecBole trained {rb_epochs:.1f} epochs in its {a['to_quality']:g} s and was still improving, so this compares "
              f"the two at the quality RecBole reaches in that time, not at convergence. Each library scored validation with "
              f"its own evaluator (same protocol). Epochs count each library's own training examples (RecBole: one per "
              f"prefix; guimo: one per sequence window), so the same epoch holds the same interactions.")
    return head + "\n" + "\n".join(rows) + "\n\n" + verdict + caveat + order


def load_line(r: dict) -> str:
    load = r.get("load_avg_1min")
    return f", 1-minute load average {min(load):.1f}-{max(load):.1f}" if load else ""


def cpu_line(r: dict) -> str:
    cpu = r.get("cpu")
    if cpu is None:
        return "AMD EPYC (recorded later)"
    return f"{cpu['model']}, flags {' '.join(cpu['flags']) or 'none'}"


def trainer_line(r: dict) -> str:
    """Which trainer gave guimo's figures: the product's, or (records before 2026-12-06) the bench's own loop."""
    if r["guimo"].get("trainer") == "guimo.train.loop.fit":
        return ("guimo trains through the product (`guimo run recommend --data FILE`'s dataset and loss in "
                "`guimo.train.loop.fit`, with its warmup and cosine schedule) and ranks with its evaluate stage.")
    return (f"guimo's figures were measured with the bench's own Adam loop, not the product's trainer, before 2026-12-06; "
            f"re-measure with `python bench/recommend_speed.py`.")


def markdown(r: dict) -> str:
    g, rb = r["guimo"], r["recbole"]
    lines = [
        f"Command: `python bench/recommend_speed.py --data {r['data']} --steps {r['args']['steps']} --threads {r['args']['threads']}` "
        f"({r['date']}; shared 2-core machine, {r['args']['threads']} intra-op thread(s){load_line(r)}; guimo then RecBole, not "
        "interleaved, with other jobs running, so the ratio is what to read, and it moves with the load).",
        f"SASRec, 2 blocks x 1 head x width 64, max_len 50, full-softmax CE, batch {r['args']['batch']}, fp32; {r['data']} "
        f"({g['users']} test users, {g['items']} items, leave-one-out, full ranking with seen items filtered). CPU: {cpu_line(r)}. "
        + trainer_line(r),
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
