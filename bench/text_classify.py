"""BANKING77 intent accuracy: the fine-tuned MiniLM classifier (`guimo run support`) against its baselines
(TF-IDF + linear SVM, frozen MiniLM + logistic regression) in one run, with calibration (ECE before and
after temperature scaling) and the int8 model the run's optimize stage serves beside fp32.

    python bench/text_classify.py                 # full train (10,003) / test (3,080); writes the 'banking77' section
    python bench/text_classify.py --render        # the section again from bench/results/text_classify.json
    python bench/text_classify.py --from optimize # re-quantize the finished run (after a change to the int8 code)

The run is a real `guimo run support --data ../shared/data/banking77` (a folder with train.csv and test.csv;
10% of train, stratified, is the validation split that picks the checkpoint, fits the temperature and the
out-of-scope threshold). The issue's targets: accuracy >= 0.937 (published: TF-IDF + SVM 0.894, MiniLM + LR
0.9305, fine-tuned BERT 0.9366), int8 within 0.5 points of fp32. `banking77(...)` is what bench/text.py calls
(through this script). The record says the machine, its ISA flags, the threads and the load average.
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

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the guimo CLI does: waiting threads yield the core

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from benchdoc import page, write_section  # noqa: E402  (bench/ is on sys.path when run as a script)

RECORD = ROOT / "bench" / "results" / "text_classify.json"
DATA = ROOT.parent / "shared" / "data" / "banking77"
TARGET, INT8_POINTS = 0.937, 0.5
# The optimize stage's tolerance for int8 on validation (relative): 0.3% is ~0.28 points at 0.93, about half the
# issue's 0.5 test points, since the 1,000 validation queries are a noisier estimate than the 3,080 test ones.
QUANT_TOLERANCE = 0.003
QUANTIZE = ["optimize.quantize=true", f"optimize.quantize_tolerance={QUANT_TOLERANCE}"]
# The recipe: queries are short (BANKING77's longest is under 100 tokens, most under 30), so 64 positions;
# LP-FT (model.head_init=probe): the 77-way head is first fitted on the frozen encoder (a logistic regression on its
# pooled states), then everything fine-tunes, the encoder at 5e-5 and the head at 2e-4, for 600 steps (~2 epochs).
# Measured 2026-12-07: 0.9318 test accuracy, where the same budget from a random head (head 1e-3, encoder 1e-4)
# gave 0.9175; 600 steps trained in 624 s on a quiet 2-core EPYC (2026-12-07). No wall-clock budget by default, so the
# same command gives the same weights; --max-time-s sets one (the loop fixes the step count after 10 timed steps).
# Then batches of similar lengths (train.group_by_length): a step took 0.34 s instead of 0.85 s (60 steps, 2 threads,
# quiet EPYC), so 5 epochs (1,400 steps, as Casanueva et al. trained) fit the 10 minutes a training run.
# Then label smoothing 0.1 (model.label_smoothing), chosen on validation (2026-12-08): best validation accuracy 0.9393
# -> 0.9433 (test 0.9325 -> 0.9344); 77 classes of ~120 examples each is where an over-confident head overfits.
# Then R-Drop 0.5 (model.rdrop_alpha; a step ~2x the cost, so 700 steps, 2.5 epochs), chosen on 2 x 20% holdouts of the
# training rows by bench/text_select.py (2026-12-08): mean held-out accuracy 0.9344 against 0.9337 without it.
RECIPE = ["model.max_len=64", "train.batch_size=32", "model.head_init=probe", "train.lr=2e-4", "model.encoder_lr_mult=0.25",
          "train.warmup_steps=30", "train.group_by_length=true", "train.log_every=25", "model.label_smoothing=0.1",
          "model.rdrop_alpha=0.5", "train.max_steps=700", "train.eval_every=70", "train.checkpoint_every=70"]


def banking77(out: Path, *, max_time_s: float | None = None, extra: list[str] | None = None, from_stage: str | None = None) -> dict[str, Any]:
    """Train, evaluate and quantize on BANKING77 into ``out`` (resumes a killed run; ``from_stage`` redoes that stage
    and the later ones); the record, with the fp32 model's test accuracy beside the int8 model the run serves."""
    import torch

    from guimo.config import apply_overrides
    from guimo.device import cpu_info
    from guimo.pipeline.rundir import RunDir
    from guimo.pipeline.runner import run_pipeline
    from guimo.scenarios import get

    if not (DATA / "train.csv").is_file():
        sys.exit(f"{DATA}: BANKING77 not found (see ../shared/data/banking77/SOURCE.md)")
    sc = get("support")
    overrides = [*RECIPE, *QUANTIZE, *(["train.max_time_s=" + str(max_time_s)] if max_time_s else []), *(extra or [])]
    cfg = apply_overrides(sc.config_cls(), [f"data.path={DATA}", *overrides], sc.presets)
    load0, t0 = os.getloadavg(), time.perf_counter()
    run_pipeline("support", cfg, out, from_stage=from_stage, quiet=False, set_keys=["data.path", *(o.split("=")[0] for o in overrides)])
    wall = time.perf_counter() - t0
    run = RunDir.open(out)
    served = optimized_int8(run)
    m = run.metrics()
    if "optimized" in m:  # the optimize stage kept int8: metrics.json is the int8 model's, the trained model's beside it
        m = {**m, "model": m["optimized"]["before"]}
    int8 = int8_accuracy(run)
    stages = run.manifest["stages"]
    acc = m["model"]["accuracy"]
    delta = (int8 - acc) * 100
    served_delta = None if served["accuracy"] is None else (served["accuracy"] - acc) * 100
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": f"python bench/text_classify.py --out {out}" + (f" --max-time-s {max_time_s:g}" if max_time_s else "")
                   + (f" --from {from_stage}" if from_stage else "") + "".join(f" --set {e}" for e in extra or []),
        "guimo_command": f"guimo run support --data {DATA} " + " ".join(f"--set {o}" for o in overrides),
        "machine": {"cpu": cpu_info(), "torch_threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS")},
        "load_avg_start": [round(x, 2) for x in load0], "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        "wall_s": round(wall, 1), "stage_s": {k: v.get("seconds") for k, v in stages.items()},
        "train": {k: stages["train"].get(k) for k in ("steps", "max_steps", "max_steps_from", "best_step", "best_metric", "wall_time_s")},
        "prepared": stages["preprocess"].get("info") or {k: stages["preprocess"].get(k) for k in ("labels", "train_rows", "val_rows", "test_rows")},
        "model": m["model"], "baselines": m["baselines"], "val": m["val"],
        "calibration": {k: v for k, v in m["calibration"].items() if not k.startswith("reliability")},
        "out_of_scope": m["out_of_scope"],
        "int8": {"accuracy": int8, "points_vs_fp32": round(delta, 3)},
        "int8_served": {**served, "points_vs_fp32": None if served_delta is None else round(served_delta, 3)},
        "headline": {"text": f"{acc:.4f}, int8 {_pt(served_delta)} ({len(served['float_layers'])} of {served['linear_layers']} Linear layers float)",
                     "met": bool(acc >= TARGET and served_delta is not None and abs(served_delta) <= INT8_POINTS)},
    }


def _pt(delta: float | None) -> str:
    return "refused" if delta is None else f"{delta:+.2f} pt"


def optimized_int8(run) -> dict[str, Any]:
    """What the run's optimize stage decided (``QUANTIZE``: int8, the Linear layers with the largest int8 error kept
    in float until validation is within ``QUANT_TOLERANCE``) and the test accuracy of what `guimo serve` loads."""
    from guimo.io import read_json

    q = read_json(run.path / "optimize.json")["quantize"]
    return {"tolerance": QUANT_TOLERANCE, "kept": q["kept"], "seconds": run.manifest["stages"]["optimize"].get("seconds"),
            "accuracy": run.metrics()["model"]["accuracy"] if q["kept"] else None,
            "float_layers": q["float_layers"], "linear_layers": len(q["modules"]) + len(q["float_layers"]),
            "attempts": [{"float": len(a["float_layers"]), "val_accuracy": a["value"]} for a in q["attempts"]],
            "val_before": q["value_before"], "int8_bytes": q["int8_bytes"], "fp32_bytes": q["fp32_bytes"],
            "largest_errors": dict(list(q["int8_errors"].items())[:8])}


def int8_accuracy(run) -> float:
    """Test accuracy of the run's trained model with every Linear layer int8 (guimo.optimize.quantize), on CPU."""
    from guimo.evaluate.classification import accuracy
    from guimo.models.load import load_run_model
    from guimo.models.text_classifier import TextClassifier, TextClassifierConfig, load_tokenizer, pad_id, predict_logits, tokenize
    from guimo.io import read_json
    from guimo.optimize.quantize import quantize
    from guimo.scenarios.textclass import LABELS, TOKENIZER, load_split

    model = load_run_model(run, TextClassifierConfig, TextClassifier, weights=run.path / "checkpoints" / "best.safetensors")
    qmodel, _ = quantize(model)
    tok = load_tokenizer(run.path / TOKENIZER, model.cfg.max_len)
    texts, labels = load_split(run, "test")
    index = {l: i for i, l in enumerate(read_json(run.data_dir / LABELS)["labels"])}
    logits, _ = predict_logits(qmodel, tokenize(tok, texts), pad_id(tok), 64)
    return accuracy(logits.argmax(1), [index.get(l, -1) for l in labels])


def section(r: dict[str, Any]) -> str:
    cpu = r["machine"]["cpu"]
    b, m, c = r["baselines"], r["model"], r["calibration"]
    rows = [("fine-tuned MiniLM + linear head (guimo)", m["accuracy"], m["macro_f1"]),
            ("same, every Linear layer int8", r["int8"]["accuracy"], None),
            *([(f"same, int8 as served (optimize: {_layers(len(r['int8_served']['float_layers']))} float)",
                r["int8_served"]["accuracy"], None)] if r.get("int8_served", {}).get("accuracy") is not None else []),
            ("TF-IDF (word 1-2 + char 2-5 grams) + linear SVM", b["tfidf_svm"]["accuracy"], b["tfidf_svm"]["macro_f1"]),
            ("frozen MiniLM + logistic regression", b["encoder_lr"]["accuracy"], b["encoder_lr"]["macro_f1"])]
    lines = [
        f"`{r['command']}` — {r['date']} — {cpu['model']} ({cpu['cores']} cores; ISA flags: {', '.join(cpu['flags']) or 'none'}), "
        f"{r['machine']['torch_threads']} torch threads, load average {r['load_avg_start'][0]:.1f} at the start, {r['load_avg_end'][0]:.1f} at the end.",
        f"The run: `{r['guimo_command']}`.",
        "",
        "| model | test accuracy | macro-F1 |", "| --- | ---: | ---: |",
        *[f"| {n} | {a:.4f} | {'' if f is None else f'{f:.4f}'} |" for n, a, f in rows],
        "",
        f"Targets: accuracy >= {TARGET}: **{'met' if m['accuracy'] >= TARGET else 'not met'}** ({m['accuracy']:.4f}); int8 within {INT8_POINTS} "
        f"points of fp32: **{'met' if _int8_met(r) else 'not met'}** (as served {_pt(r.get('int8_served', {}).get('points_vs_fp32'))}; "
        f"every Linear layer int8 {r['int8']['points_vs_fp32']:+.2f} pt). Published: TF-IDF + SVM 0.894, MiniLM + LR 0.9305, fine-tuned BERT 0.9366.",
        *([_served_line(r["int8_served"])] if "int8_served" in r else []),
        f"Calibration of the served model (temperature scaling fitted on the validation split, T = {c['temperature']:.3f}): ECE {c['ece_before']:.4f} before, "
        f"{c['ece_after']:.4f} after; NLL {c['nll_before']:.4f} -> {c['nll_after']:.4f}. BANKING77 has no out-of-scope rows: the threshold "
        f"({r['out_of_scope']['threshold']:.3f}) {r['out_of_scope']['chosen']}.",
        f"Training: {r['train']['steps']} steps ({r['train']['max_steps_from']}), best validation accuracy {r['train']['best_metric']:.4f} at step "
        f"{r['train']['best_step']}; stage times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in r["stage_s"].items() if v is not None) + ".",
    ]
    return "\n".join(lines)


def _layers(n: int) -> str:
    return f"{n} Linear layer" + ("" if n == 1 else "s")


def _int8_met(r: dict[str, Any]) -> bool:
    d = r.get("int8_served", {}).get("points_vs_fp32")
    return d is not None and abs(d) <= INT8_POINTS


def _served_line(s: dict[str, Any]) -> str:
    tried = "; ".join(f"{a['float']} float {a['val_accuracy']:.4f}" for a in s["attempts"])
    worst = ", ".join(f"{n} {e:.1e}" for n, e in list(s["largest_errors"].items())[:4])
    return (f"int8 as served (the run's optimize stage, `{' '.join('--set ' + q for q in QUANTIZE)}`, {s['seconds']:.0f} s; 8-bit inputs over "
            f"7-bit weights, guimo.models.int8): validation accuracy {s['val_before']:.4f} in fp32; int8 with k Linear layers left float: {tried} "
            f"(tolerance {s['tolerance']:.1%} relative); {'kept' if s['kept'] else 'refused'}, {s['int8_bytes'] / 1e6:.0f} MB against "
            f"{s['fp32_bytes'] / 1e6:.0f} MB in fp32." + (f" Largest int8 output errors (relative power): {worst}." if worst else ""))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench-banking77"), help="run directory (re-running resumes it)")
    ap.add_argument("--max-time-s", type=float, default=0.0, help="a training wall-clock budget that fixes the step count from the first steps' speed (default 0: none, train.max_steps alone, reproducible)")
    ap.add_argument("--from", dest="from_stage", help="redo this stage of the run and the later ones (e.g. optimize)")
    ap.add_argument("--set", dest="extra", action="append", default=[], help="another config override (repeatable)")
    ap.add_argument("--render", action="store_true", help="rewrite the section from the record without running")
    args = ap.parse_args(argv)
    from guimo.io import atomic_write_json

    if args.render:
        record = json.loads(RECORD.read_text(encoding="utf-8"))
    else:
        record = banking77(Path(args.out), max_time_s=args.max_time_s or None, extra=args.extra, from_stage=args.from_stage)
        atomic_write_json(RECORD, record)
    write_section("banking77", section(record), heading="BANKING77 intent classification", doc=page("text"))
    print(section(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
