"""BANKING77 intent accuracy: the fine-tuned MiniLM classifier (`guimo run support`) against its baselines
(TF-IDF + linear SVM, frozen MiniLM + logistic regression) in one run, with calibration (ECE before and
after temperature scaling) and the int8 model's accuracy beside fp32.

    python bench/text_classify.py                 # full train (10,003) / test (3,080); writes the 'banking77' section
    python bench/text_classify.py --render        # the section again from bench/results/text_classify.json
    python bench/text_classify.py --max-time-s 600 --out runs/bench-banking77

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
# The recipe: queries are short (BANKING77's longest is under 100 tokens, most under 30), so 64 positions;
# LP-FT (model.head_init=probe): the 77-way head is first fitted on the frozen encoder (a logistic regression on its
# pooled states), then everything fine-tunes, the encoder at 5e-5 and the head at 2e-4, for 600 steps (~2 epochs).
# Measured 2026-12-07: 0.9318 test accuracy, where the same budget from a random head (head 1e-3, encoder 1e-4)
# gave 0.9175. A wall-clock budget (--max-time-s) cuts the steps on a busy machine (the loop fixes the step count
# after 10 timed steps).
RECIPE = ["model.max_len=64", "train.batch_size=32", "model.head_init=probe", "train.lr=2e-4", "model.encoder_lr_mult=0.25",
          "train.warmup_steps=30", "train.max_steps=600", "train.eval_every=150", "train.checkpoint_every=150", "train.log_every=25"]


def banking77(out: Path, *, max_time_s: float | None = 1500.0, extra: list[str] | None = None) -> dict[str, Any]:
    """Train and evaluate on BANKING77 into ``out`` (resumes a killed run), score the int8 model; the record."""
    import torch

    from guimo.config import apply_overrides
    from guimo.device import cpu_info
    from guimo.pipeline.rundir import RunDir
    from guimo.pipeline.runner import run_pipeline
    from guimo.scenarios import get

    if not (DATA / "train.csv").is_file():
        sys.exit(f"{DATA}: BANKING77 not found (see ../shared/data/banking77/SOURCE.md)")
    sc = get("support")
    overrides = [*RECIPE, *(["train.max_time_s=" + str(max_time_s)] if max_time_s else []), *(extra or [])]
    cfg = apply_overrides(sc.config_cls(), [f"data.path={DATA}", *overrides], sc.presets)
    load0, t0 = os.getloadavg(), time.perf_counter()
    run_pipeline("support", cfg, out, quiet=False, set_keys=["data.path", *(o.split("=")[0] for o in overrides)])
    wall = time.perf_counter() - t0
    run = RunDir.open(out)
    m = run.metrics()  # the trained (fp32) model's: optimized_int8 below is what may make the run serve int8
    int8 = int8_accuracy(run)
    stages = run.manifest["stages"]
    acc = m["model"]["accuracy"]
    delta = (int8 - acc) * 100
    served = optimized_int8(out, cfg)
    served_delta = None if served["accuracy"] is None else (served["accuracy"] - acc) * 100
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": f"python bench/text_classify.py --out {out}" + (f" --max-time-s {max_time_s:g}" if max_time_s else ""),
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
        "headline": {"text": f"{acc:.4f} (int8 {_pt(served_delta)}, {len(served['float_layers'])} of {served['linear_layers']} Linear layers float)",
                     "met": bool(acc >= TARGET and served_delta is not None and abs(served_delta) <= INT8_POINTS)},
    }


def _pt(delta: float | None) -> str:
    return "refused" if delta is None else f"{delta:+.2f} pt"


def optimized_int8(out: Path, cfg) -> dict[str, Any]:
    """The product's int8: the run's optimize stage with ``optimize.quantize=true`` at ``QUANT_TOLERANCE``, which
    keeps the Linear layers with the largest int8 error in float until validation is within tolerance; then the
    test accuracy of what `guimo serve` would load (metrics.json, re-evaluated by the stage). Re-running leaves
    the run serving that int8 model, as a user's `--from optimize` would."""
    from guimo.config import apply_overrides
    from guimo.io import read_json
    from guimo.pipeline.runner import run_pipeline

    quant = ["optimize.quantize=true", f"optimize.quantize_tolerance={QUANT_TOLERANCE}"]
    t0 = time.perf_counter()
    run = run_pipeline("support", apply_overrides(cfg, quant), out, from_stage="optimize", quiet=True, set_keys=[q.split("=")[0] for q in quant])
    q = read_json(out / "optimize.json")["quantize"]
    return {"command": f"guimo run support --out {out} --from optimize " + " ".join(f"--set {o}" for o in quant),
            "seconds": round(time.perf_counter() - t0, 1), "tolerance": QUANT_TOLERANCE, "kept": q["kept"],
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
            *([(f"same, int8 as served (optimize: {len(r['int8_served']['float_layers'])} Linear layers float)",
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
        f"Target >= {TARGET} and int8 within {INT8_POINTS} points of fp32: **{'met' if r['headline']['met'] else 'not met'}** "
        f"(int8 as served {_pt(r['int8_served']['points_vs_fp32']) if 'int8_served' in r else 'unmeasured'} vs fp32; every layer int8 "
        f"{r['int8']['points_vs_fp32']:+.2f} pt). Published: TF-IDF + SVM 0.894, MiniLM + LR 0.9305, fine-tuned BERT 0.9366.",
        *([_served_line(r["int8_served"])] if "int8_served" in r else []),
        f"Calibration (temperature scaling fitted on the validation split, T = {c['temperature']:.3f}): ECE {c['ece_before']:.4f} before, "
        f"{c['ece_after']:.4f} after; NLL {c['nll_before']:.4f} -> {c['nll_after']:.4f}. BANKING77 has no out-of-scope rows: the threshold "
        f"({r['out_of_scope']['threshold']:.3f}) {r['out_of_scope']['chosen']}.",
        f"Training: {r['train']['steps']} steps ({r['train']['max_steps_from']}), best validation accuracy {r['train']['best_metric']:.4f} at step "
        f"{r['train']['best_step']}; stage times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in r["stage_s"].items() if v is not None) + ".",
    ]
    return "\n".join(lines)


def _served_line(s: dict[str, Any]) -> str:
    tried = "; ".join(f"{a['float']} float {a['val_accuracy']:.4f}" for a in s["attempts"])
    worst = ", ".join(f"{n} {e:.1e}" for n, e in list(s["largest_errors"].items())[:4])
    return (f"int8 as served: `{s['command']}` ({s['seconds']:.0f} s). Validation accuracy {s['val_before']:.4f} in fp32; with k Linear "
            f"layers float: {tried} (tolerance {s['tolerance']:.1%} relative); "
            f"{'kept' if s['kept'] else 'refused'}, {s['int8_bytes'] / 1e6:.0f} MB against {s['fp32_bytes'] / 1e6:.0f} MB in fp32. "
            f"Largest int8 output errors (relative power): {worst}.")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench-banking77"), help="run directory (re-running resumes it)")
    ap.add_argument("--max-time-s", type=float, default=1500.0, help="training wall-clock budget (0: none, train.max_steps only)")
    ap.add_argument("--set", dest="extra", action="append", default=[], help="another config override (repeatable)")
    ap.add_argument("--render", action="store_true", help="rewrite the section from the record without running")
    args = ap.parse_args(argv)
    from guimo.io import atomic_write_json

    if args.render:
        record = json.loads(RECORD.read_text(encoding="utf-8"))
    else:
        record = banking77(Path(args.out), max_time_s=args.max_time_s or None, extra=args.extra)
        atomic_write_json(RECORD, record)
    write_section("banking77", section(record), heading="BANKING77 intent classification", doc=page("text"))
    print(section(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
