"""Issue #25's privacy and explanation figures: DP-SGD at epsilon 1, 3 and 8 against non-private training on breast
cancer, and what an explanation costs and how well it adds up.

    python bench/risk_privacy.py                 # 5 folds x 4 trainings, then the explanations (~20 min on 2 busy cores)
    python bench/risk_privacy.py --folds 3       # fewer folds
    python bench/risk_privacy.py --render        # rewrite both sections from bench/results/risk_privacy.json

Each training is an ordinary `guimo run health` fold (``data.folds=5 --set data.fold=i``, stratified), so the numbers
are what a user gets; accuracy and ROC-AUC are the run's test metrics (metrics.json: the calibrated score at the
threshold chosen on validation). The FT-Transformer is the ``tiny`` preset (width 32, one block) in every arm:
- non-private: the scenario's training defaults (batch 64, lr 5e-4, early stopping on validation);
- DP-SGD (``--set privacy.epsilon=E``): the recipe in :data:`DP_SETTINGS`: larger Poisson batches (128 expected
  rows: q = 1/3 of ~398 training rows) and a larger learning rate (1e-2) for 200 steps, no dropout (the noise
  regularises), per-example clipping at norm 1; the noise multiplier is what Opacus' PRV accountant needs for E at
  delta = 1/n_train. Chosen on folds 0-1 before this measurement (docs/benchmarks/risk.md says so).
Target (issue #25): epsilon 3 within 0.02 accuracy of non-private.

Explanations (section ``explain``): on fold 0's non-private run, every test row is explained as `guimo explain` and
`/v1/classifications` with ``"explain": true`` do (``guimo.explain.rows.explain_frame``: Integrated Gradients with 64
Gauss-Legendre steps, plus LightGBM's TreeSHAP): the completeness error (absolute, and relative to the output's
distance from the baseline row), milliseconds per row one row at a time (an API call) and for all rows in one call
(a batch file), and how far the transformer's and LightGBM's explanations agree (rank correlation of the features'
mean |attribution|, shared top-5 columns per row).
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

RESULT = ROOT / "bench" / "results" / "risk_privacy.json"
EPSILONS = (1.0, 3.0, 8.0)
COMMON = ["data.dataset=breast_cancer", "model=tiny"]
DP_SETTINGS = ["model.dropout=0", "train.batch_size=128", "train.lr=1e-2", "train.max_steps=200", "train.warmup_steps=20",
               "train.eval_every=50", "train.patience=0", "train.weight_decay=0", "privacy.max_grad_norm=1.0"]
TARGET = 0.02  # epsilon 3 within this much accuracy of non-private


def machine() -> dict[str, Any]:
    import torch

    from guimo.device import cpu_info

    return {"cpu": cpu_info(), "torch_threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}


def arm_settings(epsilon: float | None) -> list[str]:
    return COMMON if epsilon is None else [*COMMON, *DP_SETTINGS, f"privacy.epsilon={epsilon:g}"]


def run_fold(epsilon: float | None, fold: int, folds: int, out: Path) -> dict[str, Any]:
    """One fold of one arm as `guimo run health` does it; its test metrics, privacy spent and timings."""
    from guimo.config import apply_overrides
    from guimo.pipeline.rundir import RunDir
    from guimo.pipeline.runner import run_pipeline
    from guimo.scenarios import get

    sc = get("health")
    cfg = apply_overrides(sc.config_cls(), [*arm_settings(epsilon), f"data.folds={folds}", f"data.fold={fold}"], sc.presets)
    load0, t0 = os.getloadavg()[0], time.perf_counter()
    if not (out / "metrics.json").exists():  # a finished fold is kept (a rerun after a kill continues)
        run_pipeline("health", cfg, out, quiet=True)
    run = RunDir.open(out)
    m, train = run.metrics(), run.manifest["stages"]["train"]
    return {"fold": fold, "run": str(out), "wall_s": round(time.perf_counter() - t0, 1), "train_s": train.get("wall_time_s"),
            "steps": train.get("steps"), "best_step": train.get("best_step"), "load_avg": [round(load0, 2), round(os.getloadavg()[0], 2)],
            "accuracy": m["model"]["accuracy"], "roc_auc": m["model"]["roc_auc"], "privacy": m.get("privacy"),
            "baselines": {k: {"accuracy": v.get("accuracy"), "roc_auc": v.get("roc_auc")} for k, v in m["baselines"].items()}}


def measure_explanations(run_path: Path, folds: int) -> dict[str, Any]:
    """Explain every test row of a run: completeness, ms per row (one at a time and all at once), IG vs TreeSHAP."""
    import numpy as np
    from scipy.stats import spearmanr

    from guimo.data.tabular import breast_cancer, stratified_folds
    from guimo.explain.rows import explain_frame
    from guimo.inference.tabular import TabularPredictor
    from guimo.io import read_json

    predictor = TabularPredictor.from_run(run_path)
    df, target = breast_cancer()
    table = read_json(run_path / "data" / "table.json")
    # fold 0's test rows, as the run's split chose them (guimo.scenarios.tabular.split_indices: stratified, seed 0)
    _, test_idx = stratified_folds(df[target].to_numpy(), k=folds, seed=0)[0]
    rows = df.iloc[test_idx].drop(columns=[table["target"]])
    explain_frame(predictor, rows.iloc[:2])  # warm-up: imports, Captum's first call
    t0 = time.perf_counter()
    one_by_one = [explain_frame(predictor, rows.iloc[[i]])[0] for i in range(len(rows))]
    single_ms = (time.perf_counter() - t0) / len(rows) * 1e3
    t0 = time.perf_counter()
    batch = explain_frame(predictor, rows)
    batch_ms = (time.perf_counter() - t0) / len(rows) * 1e3
    t0 = time.perf_counter()
    booster = predictor.lightgbm()
    x_num, x_cat = predictor.encode(rows)
    booster.predict(np.concatenate([x_num, x_cat], axis=1).astype(np.float64), pred_contrib=True)
    tree_ms = (time.perf_counter() - t0) / len(rows) * 1e3

    err = np.array([e.completeness_error for e in batch])
    gap = np.array([abs(e.output - e.baseline_output) for e in batch])
    rel = err / np.maximum(gap, 1e-9)
    features = [f.feature for f in batch[0].features]
    ig = np.array([[{f.feature: f.attribution for f in e.features}[c] for c in features] for e in batch])
    tree = np.array([[{f.feature: f.tree for f in e.features}[c] for c in features] for e in batch])
    rho = float(spearmanr(np.abs(ig).mean(0), np.abs(tree).mean(0)).statistic)
    top5 = [len(set(np.argsort(-np.abs(a))[:5]) & set(np.argsort(-np.abs(b))[:5])) for a, b in zip(ig, tree)]
    sign = [float(np.mean(np.sign(a[np.argsort(-np.abs(a))[:5]]) == np.sign(b[np.argsort(-np.abs(a))[:5]]))) for a, b in zip(ig, tree)]
    same = max(abs(a.output - b.output) for a, b in zip(one_by_one, batch))
    lead = np.argsort(-np.abs(ig).mean(0))[:5]
    return {"run": str(run_path), "rows": len(rows), "features": len(features), "n_steps": 64,
            "completeness_abs": {"median": float(np.median(err)), "max": float(err.max())},
            "completeness_rel": {"median": float(np.median(rel)), "max": float(rel.max())},
            "ms_per_row_single": round(single_ms, 2), "ms_per_row_batch": round(batch_ms, 2), "tree_ms_per_row": round(tree_ms, 3),
            "spearman_mean_abs": round(rho, 4), "top5_shared_mean": round(float(np.mean(top5)), 3),
            "top5_sign_agreement": round(float(np.mean(sign)), 4), "single_vs_batch_max_output_diff": same,
            "leading_features_ig": [features[j] for j in lead],
            "leading_features_tree": [features[j] for j in np.argsort(-np.abs(tree).mean(0))[:5]]}


def summarize(folds: list[dict[str, Any]], key: str) -> dict[str, float]:
    import numpy as np

    v = np.array([f[key] for f in folds], dtype=float)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0}


def measure(folds: int, out: Path) -> dict[str, Any]:
    load0 = [round(x, 2) for x in os.getloadavg()]
    arms: dict[str, Any] = {}
    for epsilon in (None, *EPSILONS):
        name = "non_private" if epsilon is None else f"epsilon_{epsilon:g}"
        res = []
        for k in range(folds):
            res.append(run_fold(epsilon, k, folds, out / f"{name}-fold{k}"))
            print(f"{name} fold {k}: accuracy {res[-1]['accuracy']:.4f} roc_auc {res[-1]['roc_auc']:.4f} "
                  f"eps {(res[-1]['privacy'] or {}).get('epsilon')} ({res[-1]['wall_s']} s, load {res[-1]['load_avg']})", flush=True)
        arms[name] = {"epsilon": epsilon, "settings": arm_settings(epsilon), "folds": res,
                      "accuracy": summarize(res, "accuracy"), "roc_auc": summarize(res, "roc_auc")}
    explain = measure_explanations(out / "non_private-fold0", folds)
    gap3 = arms["non_private"]["accuracy"]["mean"] - arms["epsilon_3"]["accuracy"]["mean"]
    rec = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "command": f"OMP_NUM_THREADS=1 python bench/risk_privacy.py --folds {folds}", **machine(),
           "load_avg_start": load0, "load_avg_end": [round(x, 2) for x in os.getloadavg()], "folds": folds,
           "arms": arms, "explain": explain,
           "headline": {"text": f"{arms['epsilon_3']['accuracy']['mean']:.4f} accuracy at epsilon 3 (non-private "
                                f"{arms['non_private']['accuracy']['mean']:.4f}, {folds}-fold, breast cancer)", "met": gap3 <= TARGET}}
    return rec


def render_privacy(rec: dict[str, Any]) -> str:
    cpu = rec["cpu"]
    flags = ", ".join(cpu.get("flags", []))
    lines = [f"`{rec['command']}` on {rec['date'][:10]}, {cpu.get('model', '?')} ({flags}), {rec['torch_threads']} torch thread(s), "
             f"load average {rec['load_avg_start'][0]} at the start and {rec['load_avg_end'][0]} at the end (a machine shared with other jobs).", "",
             f"Breast cancer (569 tumours, 30 measurements), stratified {rec['folds']}-fold; each fold is `guimo run health` with "
             "`--set data.folds=K --set data.fold=i` and the settings below. Test accuracy and ROC-AUC of the FT-Transformer "
             "(`model=tiny`), mean and sample standard deviation over the folds. Epsilon spent is the PRV accountant's "
             "value for the steps taken, at delta = 1 / (training rows).", "",
             "| training | accuracy | ROC-AUC | epsilon spent | settings |", "| --- | ---: | ---: | ---: | --- |"]
    for name, arm in rec["arms"].items():
        spent = [f["privacy"]["epsilon"] for f in arm["folds"] if f.get("privacy")]
        eps = f"{max(spent):.3f}" if spent else "-"
        extra = " ".join(f"`{s}`" for s in arm["settings"] if s not in COMMON) or "the scenario's defaults"
        lines.append(f"| {name.replace('_', ' ')} | {arm['accuracy']['mean']:.4f} ± {arm['accuracy']['std']:.4f} | "
                     f"{arm['roc_auc']['mean']:.4f} ± {arm['roc_auc']['std']:.4f} | {eps} | {extra} |")
    base = rec["arms"]["non_private"]["folds"]
    for b in base[0]["baselines"]:
        acc = sum(f["baselines"][b]["accuracy"] for f in base) / len(base)
        auc = sum(f["baselines"][b]["roc_auc"] for f in base) / len(base)
        lines.append(f"| {b.replace('_', ' ')} (not private; same folds) | {acc:.4f} | {auc:.4f} | - | baseline |")
    gap = rec["arms"]["non_private"]["accuracy"]["mean"] - rec["arms"]["epsilon_3"]["accuracy"]["mean"]
    lines += ["", f"Target: epsilon 3 within {TARGET} accuracy of non-private: {gap:+.4f} ({'met' if rec['headline']['met'] else 'NOT met'}).",
              "", "The DP runs calibrate with a logit shift fitted on validation beside the temperature (Platt scaling, "
              "`guimo.privacy.dp.fit_shift_and_temperature`): per-example clipping left every logit ~2.3 below the class prior, "
              "and with the temperature alone the first measurement called every test row benign (epsilon 1, fold 0: accuracy "
              "0.6228 at ROC-AUC 0.9613; 0.8947 with the shift, same weights).",
              "", "The DP recipe (larger Poisson batches, lr 1e-2, 200 steps, no dropout) was chosen on folds 0-1 with a "
              "direct `fit` before this measurement; the non-private arm keeps the scenario's defaults. Not covered by the "
              "guarantee (the report says so too): the encoder's quantiles and vocabularies, the baselines, and the "
              "validation rows used for early stopping, calibration and the threshold."]
    return "\n".join(lines)


def render_explain(rec: dict[str, Any]) -> str:
    e = rec["explain"]
    return "\n".join([
        f"`{rec['command']}` (same record as the privacy section), fold 0's non-private run: its {e['rows']} test rows, "
        f"{e['features']} columns, Integrated Gradients with {e['n_steps']} Gauss-Legendre steps from the baseline row "
        "(training medians), LightGBM TreeSHAP from the run's saved booster.", "",
        "| measure | value |", "| --- | ---: |",
        f"| completeness error, median / max (calibrated log-odds) | {e['completeness_abs']['median']:.2e} / {e['completeness_abs']['max']:.2e} |",
        f"| the same relative to \\|output - baseline\\|, median / max | {e['completeness_rel']['median']:.2e} / {e['completeness_rel']['max']:.2e} |",
        f"| ms per row, one row per call (an API request) | {e['ms_per_row_single']:.1f} |",
        f"| ms per row, all rows in one call (a batch file) | {e['ms_per_row_batch']:.1f} |",
        f"| TreeSHAP ms per row (all rows in one call) | {e['tree_ms_per_row']:.3f} |",
        f"| IG vs TreeSHAP: rank correlation of the columns' mean \\|attribution\\| | {e['spearman_mean_abs']:.3f} |",
        f"| IG vs TreeSHAP: top-5 columns shared per row (of 5) | {e['top5_shared_mean']:.2f} |",
        f"| IG vs TreeSHAP: same sign on IG's top-5 columns | {e['top5_sign_agreement']:.2%} |", "",
        f"Leading columns by mean \\|attribution\\|: transformer {', '.join(e['leading_features_ig'])}; "
        f"LightGBM {', '.join(e['leading_features_tree'])}.",
    ])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("/tmp/guimo-risk-privacy"), help="run folders (a finished fold is reused)")
    ap.add_argument("--render", action="store_true", help="rewrite the sections from the record")
    args = ap.parse_args(argv)
    if args.render:
        rec = json.loads(RESULT.read_text())
    else:
        rec = measure(args.folds, args.out)
        from guimo.io import atomic_write_json

        atomic_write_json(RESULT, rec)
    write_section("privacy", render_privacy(rec), heading="Differential privacy: DP-SGD on breast cancer", doc=page("risk"))
    write_section("explain", render_explain(rec), heading="Explanations: completeness, cost, IG vs TreeSHAP", doc=page("risk"))
    print(render_privacy(rec) + "\n\n" + render_explain(rec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
