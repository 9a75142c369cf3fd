"""The assistant NLU numbers of issue #24: SNIPS, HWU64 fold 1, and the on-device footprint.

    python bench/assistant.py snips --init pretrained      # MiniLM fine-tuned on SNIPS (the issue's targets)
    python bench/assistant.py snips --init scratch         # the same model shape trained from random weights
    python bench/assistant.py hwu64                        # HWU64 fold 1, all 64 intents; iot intents reported apart
    python bench/assistant.py hwu64 --iot-only             # trained on the 9 iot intents; the 55 others are out of domain
    python bench/assistant.py footprint --run RUN          # int8 size on disk, p50/p95 ms per utterance on 1 thread
    python bench/assistant.py render                       # the page's header and table from bench/results/assistant_*.json

Each part trains with ``guimo run assistant`` (the shared pipeline; a killed part resumes from its checkpoint when run
again with the same --out), writes ``bench/results/assistant_<part>.json`` (date, command, CPU model and ISA flags,
threads, load average at start and end) and re-renders docs/benchmarks/assistant.md's header and numbers table
(``bench:assistant`` section); A1's ``asr`` and A4's ``e2e`` sections live on the same page.

Targets (SNIPS test, the standard 13,084/700/700 split, pretrained-initialised): intent accuracy >= 98.5 %, slot F1
>= 96.5 % (conlleval spans), sentence accuracy >= 91 %. Footprint: int8 <= 25 MB on disk, <= 20 ms p50 per utterance.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchdoc import page, write_section  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results"
TARGETS = {"intent_accuracy": 0.985, "slot_f1": 0.965, "sentence_accuracy": 0.91}
FOOTPRINT = {"int8_mb": 25.0, "p50_ms": 20.0}
FROM_STAGE: str | None = None  # --from: re-run a finished part from this stage (e.g. evaluate after a metric changed)

# SNIPS: 13,084 training utterances at batch 32 = 409 steps an epoch. One schedule of ~4.9 epochs: 10% warmup, cosine decay
# to 0; heads at 1e-3, the encoder at 1e-4 (model.encoder_lr_mult=0.1, chosen over 0.05 on SNIPS validation: see SCREEN_NOTE);
# the checkpoint kept is the best on validation sentence accuracy; the fp32 model is measured (the footprint part measures int8)
SNIPS_RECIPE = ["model.max_len=64", "train.batch_size=32", "train.lr=1e-3", "model.encoder_lr_mult=0.1", "train.warmup_steps=200",
                "train.max_steps=2000", "train.min_lr_ratio=0", "train.eval_every=400", "train.checkpoint_every=400", "train.log_every=25",
                "optimize.quantize=false"]
SCREEN_NOTE = ("400 steps, warmup 40, validation sentence accuracy: encoder 1e-4 0.844, 5e-5 0.813; "
               "2026-12-07, AMD EPYC, 1 thread, load 4.3-5.3")
# from scratch: MiniLM's shape (6 blocks, 12 heads, width 384, MLP 1536) with random weights, every weight at train.lr
SCRATCH = ["init.pretrained=none", "model.n_layer=6", "model.n_head=12", "model.d_model=384", "model.d_ff=1536", "train.lr=5e-4",
           "model.encoder_lr_mult=1"]
HWU64_RECIPE = ["model.max_len=64", "train.batch_size=32", "train.lr=1e-3", "train.warmup_steps=60", "train.max_steps=930",
                "train.eval_every=155", "train.checkpoint_every=155", "train.log_every=25"]


def machine() -> dict[str, Any]:
    import torch

    from guimo.device import cpu_info

    return {"cpu": cpu_info(), "torch_threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}


def train(name: str, out: Path, overrides: list[str], max_time_s: float | None) -> dict[str, Any]:
    """``guimo run assistant`` with ``overrides`` into ``out`` (resumed when killed); the record."""
    from guimo.config import apply_overrides
    from guimo.pipeline.rundir import RunDir
    from guimo.pipeline.runner import run_pipeline
    from guimo.scenarios import get

    sc = get("assistant")
    overrides = [*overrides, *([f"train.max_time_s={max_time_s:g}"] if max_time_s else [])]
    cfg = apply_overrides(sc.config_cls(), overrides, sc.presets)
    load0, t0 = os.getloadavg(), time.perf_counter()
    run_pipeline("assistant", cfg, out, quiet=False, set_keys=[o.split("=")[0] for o in overrides], from_stage=FROM_STAGE)
    run = RunDir.open(out)
    m, stages = run.metrics(), run.manifest["stages"]
    return {
        "part": name, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python bench/assistant.py", *sys.argv[1:]]),
        "guimo_command": "guimo run assistant " + " ".join(f"--set {o}" for o in overrides) + f" --out {out}",
        "machine": machine(), "load_avg_start": [round(x, 2) for x in load0], "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        "wall_s": round(time.perf_counter() - t0, 1), "stage_s": {k: v.get("seconds") for k, v in stages.items()},
        "train": {k: stages["train"].get(k) for k in ("steps", "max_steps", "max_steps_from", "best_step", "best_metric", "wall_time_s", "step_s")},
        "prepared": {k: v for k, v in stages["preprocess"].items() if k not in ("status", "started", "host", "pid", "finished")},
        "run": str(out), "model": m["model"], "baselines": m["baselines"], "val": m["val"],
        "by_language": m.get("by_language"), "per_intent_accuracy": m.get("per_intent_accuracy"),
        "calibration": {k: v for k, v in m["calibration"].items() if not k.startswith("reliability")},
        "out_of_scope": m["out_of_scope"],
    }


def snips(args) -> dict[str, Any]:
    init = args.init
    out = Path(args.out or f"runs/bench-assistant-snips-{init}")
    warm = any(o.startswith("init.checkpoint=") for o in args.set)  # continue a run: replay its splits, add no data
    data = [] if warm else [f"data.path={DATA / 'snips'}"]
    rec = train(f"snips_{init}", out, [*data, *SNIPS_RECIPE, *(SCRATCH if init == "scratch" else []), *args.set], args.max_time_s)
    ck = next((o.split("=", 1)[1] for o in args.set if o.startswith("init.checkpoint=")), None)
    if ck:  # a warm start (init.checkpoint=RUN): training continued from RUN on the same data
        from guimo.pipeline.rundir import RunDir

        prior = RunDir.open(ck).manifest["stages"]["train"].get("steps")
        rec["continued_from"] = {"run": ck, "steps": prior}
    rec["step_chain"] = step_chain(rec["run"])
    rec["train"]["steps_total"] = sum(rec["step_chain"])
    m = rec["model"]
    met = all(m[k] >= v for k, v in TARGETS.items())
    rec["headline"] = {"text": f"intent {m['intent_accuracy']:.2%}, slot F1 {m['slot_f1']:.2%}, sentence {m['sentence_accuracy']:.2%}"
                               f" ({init})", "met": met if init == "pretrained" else None}
    return rec


def hwu64(args) -> dict[str, Any]:
    out = Path(args.out or ("runs/bench-assistant-hwu64-iot" if args.iot_only else "runs/bench-assistant-hwu64"))
    extra = ['data.intents=["iot_*"]'] if args.iot_only else []
    rec = train("hwu64_iot" if args.iot_only else "hwu64", out, [f"data.path={DATA / 'hwu64' / 'kfold1'}", *HWU64_RECIPE, *extra,
                                                                 *args.set], args.max_time_s)
    per = rec["per_intent_accuracy"] or {}
    iot = {k: v for k, v in per.items() if k.startswith("iot_")}
    if not args.iot_only and iot:  # the iot intents' accuracy over their test utterances
        from guimo.pipeline.rundir import RunDir
        from guimo.io import iter_jsonl

        tests = [rec2["intent"] for _, rec2 in iter_jsonl(RunDir.open(out).data_dir / "test.jsonl")]
        n = {k: tests.count(k) for k in iot}
        rec["iot_intent_accuracy"] = sum(iot[k] * n[k] for k in iot) / max(1, sum(n.values()))
        rec["iot_test_utterances"] = sum(n.values())
    m = rec["model"]
    text = f"intent {m['intent_accuracy']:.2%}"
    if "iot_intent_accuracy" in rec:
        text += f", iot intents {rec['iot_intent_accuracy']:.2%}"
    if "false_accept_rate" in m:
        text += f", false accepts of non-iot {m['false_accept_rate']:.2%}"
    rec["headline"] = {"text": text, "met": None}
    return rec


def footprint(args) -> dict[str, Any]:
    """int8 (Linear layers, guimo.optimize.quantize) of a finished run: bytes on disk, test metrics, and
    per-utterance latency at batch 1 on one thread beside the fp32 model."""
    import statistics
    import tempfile

    import torch

    from guimo.data.nlu import join_words
    from guimo.inference.nlu import NluPredictor
    from guimo.io import iter_jsonl
    from guimo.optimize import quantize as q8
    from guimo.pipeline.rundir import RunDir

    torch.set_num_threads(1)
    run = RunDir.open(args.run)
    fp32 = NluPredictor.from_run(run)
    # the shipped scheme: int8 Linear layers and 8-bit embedding rows (optimize.quantize=true, optimize.quantize_embeddings=true)
    qmodel, names = q8.quantize(fp32.model.to("cpu").eval(), embeddings=True)
    lin_model, lin_names = q8.quantize(fp32.model.to("cpu").eval())
    with tempfile.TemporaryDirectory() as tmp:
        fp32_bytes = q8.float_bytes(fp32.model)
        int8_bytes = q8.save_int8(Path(tmp) / "model.int8.safetensors", qmodel, fp32.model, names)
        linear_only_bytes = q8.save_int8(Path(tmp) / "linear.int8.safetensors", lin_model, fp32.model, lin_names)
    int8 = NluPredictor(qmodel, fp32.tokenizer, fp32.intents, fp32.tags, intent_temperature=fp32.intent_temperature,
                        slot_temperature=fp32.slot_temperature, oos_log_odds=fp32.oos_log_odds, oos_label=fp32.oos_label,
                        connectors={k: [" ".join(c) for c in v] for k, v in fp32.connectors.items()})
    tests = [rec for _, rec in iter_jsonl(run.data_dir / "test.jsonl")]
    texts = [join_words(r["words"]) for r in tests]
    load0 = os.getloadavg()

    def exact(p: NluPredictor) -> dict[str, float]:
        from guimo.evaluate.nlu import sentence_accuracy, span_f1

        a = p.analyse([[w.lower() for w in r["words"]] for r in tests])
        return {"intent_accuracy": sum(x.intent == r["intent"] for x, r in zip(a, tests)) / len(tests),
                "slot_f1": span_f1([r["tags"] for r in tests], [x.tags for x in a])["f1"],
                "sentence_accuracy": sentence_accuracy([r["intent"] for r in tests], [x.intent for x in a],
                                                       [r["tags"] for r in tests], [x.tags for x in a])}

    quality = {"fp32": exact(fp32), "int8": exact(int8)}
    times: dict[str, list[float]] = {"fp32": [], "int8": []}
    cpu: dict[str, list[float]] = {"fp32": [], "int8": []}  # this thread's CPU time: what a busy shared machine does not inflate
    sample = texts[: args.utterances]
    for p in (fp32, int8):  # warm up
        p.parse(sample[:5])
    for i, t in enumerate(sample):  # interleaved, one utterance at a time, as a device hears them
        for name, p in (("fp32", fp32), ("int8", int8)) if i % 2 == 0 else (("int8", int8), ("fp32", fp32)):
            t0, c0 = time.perf_counter(), time.thread_time()
            p.parse([t])
            times[name].append((time.perf_counter() - t0) * 1000)
            cpu[name].append((time.thread_time() - c0) * 1000)
    lat = {k: {"p50_ms": statistics.median(v), "p95_ms": sorted(v)[int(0.95 * (len(v) - 1))], "n": len(v),
               "cpu_p50_ms": statistics.median(cpu[k]), "cpu_p95_ms": sorted(cpu[k])[int(0.95 * (len(v) - 1))]} for k, v in times.items()}
    rec = {
        "part": "footprint", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python bench/assistant.py", *sys.argv[1:]]), "run": str(args.run), "machine": machine(),
        "load_avg_start": [round(x, 2) for x in load0], "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        "fp32_bytes": fp32_bytes, "int8_bytes": int8_bytes, "int8_linear_only_bytes": linear_only_bytes,
        "int8_scheme": "dynamic int8 Linear layers (per-channel) + 8-bit embedding rows (optimize.quantize_embeddings=true)",
        "embedding_bytes": sum(p.numel() * 4 for n, p in fp32.model.named_parameters() if n.endswith("emb.weight")),
        "quality": quality, "latency": lat,
    }
    mb = int8_bytes / 1e6
    quiet = load0[0] < 2.5  # 2 cores: a wall-clock latency means something only when the machine is not shared
    rec["headline"] = {"text": f"int8 {mb:.1f} MB, p50 {lat['int8']['p50_ms']:.1f} ms / p95 {lat['int8']['p95_ms']:.1f} ms per utterance "
                               f"(1 thread, load {load0[0]:.1f}; CPU time p50 {lat['int8']['cpu_p50_ms']:.1f} ms); fp32 sentence accuracy "
                               f"{quality['fp32']['sentence_accuracy']:.2%}, int8 {quality['int8']['sentence_accuracy']:.2%}",
                       "met": bool(mb <= FOOTPRINT["int8_mb"] and lat["int8"]["p50_ms"] <= FOOTPRINT["p50_ms"]) if quiet or lat["int8"]["p50_ms"] <= FOOTPRINT["p50_ms"]
                       else None}
    return rec


# -- the page ---------------------------------------------------------------------------------------


def step_chain(run: str) -> list[int]:
    """Training steps of each run in a warm-start chain, oldest first (a run's init.checkpoint is the one before)."""
    from guimo.pipeline.rundir import RunDir

    steps, path = [], run
    while path and Path(path).is_dir() and (Path(path) / "manifest.json").exists():
        r = RunDir.open(path)
        steps.insert(0, r.manifest["stages"]["train"].get("steps") or 0)
        path = (r.config.get("init") or {}).get("checkpoint")
    return steps


def load(name: str) -> dict | None:
    p = RESULTS / f"assistant_{name}.json"
    return json.loads(p.read_text()) if p.exists() else None


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f}"


def snips_note() -> list[str]:
    """Below the table: how far the pretrained SNIPS record is from each target, what was tried and what is next."""
    r, chain = load("snips_pretrained"), load("snips_pretrained_chain")
    if r is None or r["headline"]["met"]:
        return []
    m = r["model"]
    names = {"intent_accuracy": "intent accuracy", "slot_f1": "slot F1", "sentence_accuracy": "sentence accuracy"}
    gaps = ", ".join(f"{names[k]} {100 * (m[k] - v):+.2f} points" for k, v in TARGETS.items())
    lines = ["", f"**SNIPS targets not met** by the MiniLM-initialised model: {gaps} from the targets."]
    if chain is not None:
        c = chain["model"]
        lines.append(f"Tried: (1) warm-started continuations ({' + '.join(map(str, chain['step_chain']))} steps, each with a fresh short warmup "
                     f"and decay; heads 1e-3, the encoder 2e-4 for the first 200 steps, then 1e-4): {pct(c['intent_accuracy'])} / {pct(c['slot_f1'])} / {pct(c['sentence_accuracy'])}; "
                     f"(2) one schedule from MiniLM, {r['train']['steps']} steps (~{r['train']['steps'] * 32 / 13084:.1f} epochs), "
                     "the encoder's lr chosen on SNIPS validation by 400-step screens (`" + SCREEN_NOTE + "`): the first row. "
                     f"Both reached the same best validation sentence accuracy ({chain['train']['best_metric']:.4f} and "
                     f"{r['train']['best_metric']:.4f}), so validation does not choose between them; the code's recipe is (2).")
    scratch = load("snips_scratch")
    if scratch is not None:
        s = scratch["model"]
        lines.append(f"From scratch (MiniLM's shape, random weights, {scratch['train']['steps']} steps at 5e-4 for every weight): sentence accuracy "
                     f"{pct(s['sentence_accuracy'])} %, {100 * (m['sentence_accuracy'] - s['sentence_accuracy']):.1f} points below the pretrained "
                     f"model, slot F1 {100 * (m['slot_f1'] - s['slot_f1']):.1f} points below, intent accuracy "
                     f"{100 * (s['intent_accuracy'] - m['intent_accuracy']):+.2f}: pretraining buys the slots, not the intents; its schedule was "
                     "shorter than the pretrained model's (a shared machine), so the gap is an upper bound.")
    lines.append("Next, each chosen on validation: a longer schedule (JointBERT fine-tunes 10 epochs; one MiniLM epoch on SNIPS is 7-12 "
                 "minutes on one thread of this shared 2-core machine, so 10 epochs is a quiet-machine or GPU job), the encoder at 2e-4 "
                 "(only 5e-5 and 1e-4 were screened; the higher one won), several seeds with their checkpoints averaged, and layer-wise lr "
                 "decay. A larger encoder than MiniLM would break the on-device footprint (int8 <= 25 MB).")
    return lines


def measured(r: dict[str, Any]) -> str:
    """The table's "measured" cell: date, CPU and its ISA flags (these machines change between sessions), load."""
    cpu = r.get("machine", {}).get("cpu", {})
    flags = cpu.get("flags", [])
    flags = ", ".join(flags) if isinstance(flags, list) else str(flags)
    return f"{r['date'][:16]}, {cpu.get('model', '?')} ({flags}), load {r['load_avg_start'][0]}-{r['load_avg_end'][0]}"


def render() -> None:
    rows = ["| what | intent acc. % | slot F1 % | sentence acc. % | target | measured |", "|---|---|---|---|---|---|"]
    for part, label in (("snips_pretrained", "SNIPS test, MiniLM-initialised"), ("snips_pretrained_chain", "↳ first attempt, MiniLM-initialised"),
                        ("snips_scratch", "SNIPS test, from scratch (MiniLM's shape, random weights)")):
        r = load(part)
        if r is None and part.endswith("_chain"):
            continue
        if r is None:
            rows.append(f"| {label} | not measured yet | | | {'98.5 / 96.5 / 91' if part.endswith('pretrained') else 'reported'} | |")
            continue
        m = r["model"]
        tgt = "98.5 / 96.5 / 91: " + ("met" if r["headline"]["met"] else "NOT met") if "pretrained" in part else "reported"
        chain = r.get("step_chain") or [r["train"]["steps"]]
        steps = f"{' + '.join(map(str, chain))} steps, warm starts" if len(chain) > 1 else f"{chain[0]} steps"
        rows.append(f"| {label} ({steps}, batch 32) | {pct(m['intent_accuracy'])} | {pct(m['slot_f1'])} | "
                    f"{pct(m['sentence_accuracy'])} | {tgt} | {measured(r)} |")
        b = r["baselines"].get("lexicon")
        if b and part == "snips_pretrained":
            rows.append(f"| ↳ lexicon baseline (TF-IDF+SVM intents, longest-match slot values) | {pct(b['intent_accuracy'])} | "
                        f"{pct(b['slot_f1'])} | {pct(b['sentence_accuracy'])} | | same run |")
    for part, label in (("hwu64", "HWU64 fold 1, 64 intents"), ("hwu64_iot", "HWU64 fold 1, trained on the 9 iot intents")):
        r = load(part)
        if r is None:
            rows.append(f"| {label} | not measured yet | | | reported | |")
            continue
        m = r["model"]
        extra = f"; iot intents {pct(r['iot_intent_accuracy'])} % ({r['iot_test_utterances']} test utterances)" if "iot_intent_accuracy" in r else ""
        far = (f"; non-iot test utterances accepted {pct(m['false_accept_rate'])} %, iot ones kept {pct(r['out_of_scope']['in_scope_kept'])} % "
               f"(threshold {r['out_of_scope']['threshold']:.3f} on val)" if "false_accept_rate" in m else "")
        rows.append(f"| {label}{extra}{far} | {pct(m['intent_accuracy'])} | {pct(m['slot_f1'])} | {pct(m['sentence_accuracy'])} | "
                    f"reported | {measured(r)} |")
    rows += snips_note()
    f = load("footprint")
    foot = ["", "| footprint (1 thread, batch 1) | size on disk | p50 ms | p95 ms | CPU-time p50 / p95 ms | sentence acc. % | target |",
            "|---|---|---|---|---|---|---|"]
    if f is None:
        foot.append("| int8 NLU | not measured yet | | | | | <= 25 MB, <= 20 ms p50 |")
    else:
        for k, size in (("fp32", f["fp32_bytes"]), ("int8", f["int8_bytes"])):
            met = f["headline"]["met"]
            verdict = "met" if met else "NOT met" if met is False else f"size {'met' if f['int8_bytes'] <= 25e6 else 'NOT met'}, latency needs a quiet machine"
            L = f["latency"][k]
            foot.append(f"| {k} | {size / 1e6:.1f} MB | {L['p50_ms']:.1f} | {L['p95_ms']:.1f} | {L.get('cpu_p50_ms', float('nan')):.1f} / "
                        f"{L.get('cpu_p95_ms', float('nan')):.1f} | {pct(f['quality'][k]['sentence_accuracy'])} | "
                        f"{'<= 25 MB, <= 20 ms p50: ' + verdict if k == 'int8' else ''} |")
        foot.append(f"\nMeasured {measured(f)}, "
                    f"on the run `{f['run']}`; int8 = {f['int8_scheme']}. With the embeddings ({f['embedding_bytes'] / 1e6:.1f} MB in float32) "
                    f"left float, the int8 file is {f['int8_linear_only_bytes'] / 1e6:.1f} MB.")
    header = ["The joint NLU model of `guimo run assistant` (issue #24): MiniLM (or random weights) + a pooled intent head + a",
              "per-word slot head under a BIO-constrained CRF. Slot F1 is by span under conlleval's rules; sentence accuracy",
              "needs the intent and every tag right. Rerun: `python bench/assistant.py snips --init pretrained` (and the other",
              "parts in the module docstring); each record in `bench/results/assistant_*.json` holds its command, `guimo run`",
              "settings, CPU and ISA flags (each row's in its last column), threads and load average. Reference: JointBERT (BERT-base, 5x larger) 98.6 / 97.0 / 92.8; Slot-Gated 97.0 / 88.8 / 75.5.",
              ""]
    write_section("assistant", "\n".join(header + rows + foot), heading="NLU: SNIPS, HWU64, footprint", doc=page("assistant"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=("snips", "hwu64", "footprint", "render"))
    ap.add_argument("--init", choices=("pretrained", "scratch"), default="pretrained")
    ap.add_argument("--iot-only", action="store_true")
    ap.add_argument("--out", help="the run directory (default runs/bench-assistant-<part>)")
    ap.add_argument("--run", help="footprint: the finished run to measure")
    ap.add_argument("--utterances", type=int, default=200, help="footprint: test utterances timed")
    ap.add_argument("--from", dest="from_stage", help="re-run a finished part from this stage (e.g. evaluate)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a guimo config override after the recipe's")
    ap.add_argument("--max-time-s", type=float, default=None, help="training time budget (fixes the step count after 10 timed steps)")
    ap.add_argument("--fix-chain", action="store_true", help="render: fill each SNIPS record's warm-start chain from its runs")
    args = ap.parse_args(argv)
    from guimo.io import atomic_write_json

    global FROM_STAGE
    FROM_STAGE = args.from_stage
    if args.part == "render" and args.fix_chain:
        for part in ("snips_pretrained", "snips_scratch"):
            r = load(part)
            if r is not None and Path(r["run"]).is_dir():
                r["step_chain"] = step_chain(r["run"])
                r["train"]["steps_total"] = sum(r["step_chain"])
                atomic_write_json(RESULTS / f"assistant_{part}.json", r)
    if args.part != "render":
        rec = {"snips": snips, "hwu64": hwu64, "footprint": footprint}[args.part](args)
        name = {"snips": f"snips_{args.init}", "hwu64": "hwu64_iot" if args.iot_only else "hwu64", "footprint": "footprint"}[args.part]
        atomic_write_json(RESULTS / f"assistant_{name}.json", rec)
        print(json.dumps(rec.get("headline"), ensure_ascii=False))
    render()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
