"""Issue #25's accuracy table: the FT-Transformer against logistic regression and LightGBM, 5-fold, on every risk set.

    python bench/risk.py                       # all five sets, 5 folds each (~1 h on 2 busy cores)
    python bench/risk.py --sets breast_cancer german_credit --folds 5
    python bench/risk.py --render              # rewrite the page from bench/results/risk.json

Each fold is an ordinary `guimo run` (``data.folds=5 --set data.fold=i``: stratified folds, or forward-chaining folds
in time for the transaction sets) with the scenario's defaults, so the numbers are what a user gets. Per set: ROC-AUC,
PR-AUC, recall at 1% FPR, ECE, cost per applicant (German credit's 5:1 matrix, at the Bayes threshold), mean and
sample standard deviation over the folds, for the transformer and both baselines, and the run time of each run.
Targets (issue #25): the transformer within 0.01 ROC-AUC of the best baseline on breast cancer and German credit,
within 0.03 PR-AUC on the fraud sets. The record (bench/results/risk.json) keeps every fold's metrics, the machine,
the threads and the load average; the page section ``risk`` of docs/benchmarks/risk.md is rendered from it.
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

RESULT = ROOT / "bench" / "results" / "risk.json"
SHARED = ROOT.parent / "shared" / "data"
METRICS = ("roc_auc", "pr_auc", "recall_at_1pct_fpr", "ece", "cost_per_row")
CONTENDERS = ("model", "logistic_regression", "lightgbm")
# set -> (scenario, settings, the metric its target is on, the tolerance); the transaction sets split in time
SETS: dict[str, tuple[str, list[str], str, float]] = {
    "breast_cancer": ("health", ["data.dataset=breast_cancer"], "roc_auc", 0.01),
    "german_credit": ("credit", [f"data.path={SHARED / 'german_credit' / 'german.csv'}"], "roc_auc", 0.01),
    "paysim": ("fraud", [f"data.path={SHARED / 'paysim_sample' / 'paysim_sample.csv'}"], "pr_auc", 0.03),
    "paysim_leaky": ("fraud", [f"data.path={SHARED / 'paysim_sample' / 'paysim_sample.csv'}", "data.leaky=true"], "pr_auc", 0.03),
    "payments": ("fraud", [], "pr_auc", 0.03),
}
TITLES = {"breast_cancer": "breast cancer (health)", "german_credit": "German credit (credit)", "paysim": "PaySim sample, no balances (fraud)",
          "paysim_leaky": "PaySim sample, with the leaking balances (fraud)", "payments": "generated payments, the default (fraud)"}


def machine() -> dict[str, Any]:
    import torch

    from guimo.device import cpu_info

    return {"cpu": cpu_info(), "torch_threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}


def run_fold(name: str, fold: int, folds: int, out: Path, extra: list[str]) -> dict[str, Any]:
    """One fold as `guimo run` would do it (resumed when the folder holds a killed run); its metrics and timings."""
    from guimo.config import apply_overrides
    from guimo.pipeline.rundir import RunDir
    from guimo.pipeline.runner import run_pipeline
    from guimo.scenarios import get

    scenario, settings, _, _ = SETS[name]
    sc = get(scenario)
    cfg = apply_overrides(sc.config_cls(), [*settings, f"data.folds={folds}", f"data.fold={fold}", *extra], sc.presets)
    load0, t0 = os.getloadavg()[0], time.perf_counter()
    run_pipeline(scenario, cfg, out, quiet=True)
    run = RunDir.open(out)
    m = run.metrics()
    stages = run.manifest["stages"]
    return {"fold": fold, "run": str(out), "seconds": round(sum(s.get("seconds", 0) for s in stages.values()), 1),
            "wall_s": round(time.perf_counter() - t0, 1), "train_s": stages["train"].get("wall_time_s"), "steps": stages["train"].get("steps"),
            "best_step": stages["train"].get("best_step"), "load_avg": [round(load0, 2), round(os.getloadavg()[0], 2)],
            "split": stages["preprocess"].get("split"), "train_rows": stages["preprocess"].get("train_rows"),
            "test_rows": stages["preprocess"].get("test_rows"), "dropped_ids": stages["preprocess"].get("dropped_ids"),
            "model": m["model"], "baselines": m["baselines"]}


def summarize(folds: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    from guimo.evaluate.tabular import summarize_folds

    out = {"model": summarize_folds([f["model"] for f in folds])}
    for b in folds[0]["baselines"]:
        out[b] = summarize_folds([f["baselines"][b] for f in folds])
    return out


def verdict(name: str, summary: dict) -> dict[str, Any]:
    """The issue's target on one set: the transformer's mean within the tolerance of the best baseline's mean."""
    _, _, metric, tol = SETS[name]
    model = summary["model"][metric]["mean"]
    best_name = max((c for c in summary if c != "model"), key=lambda c: summary[c][metric]["mean"])
    best = summary[best_name][metric]["mean"]
    return {"metric": metric, "tolerance": tol, "model": model, "best_baseline": best_name, "best": best, "gap": best - model,
            "met": bool(model >= best - tol)}


def headline(record: dict) -> dict[str, Any]:
    sets = record["sets"]
    parts = [f"{n} {v['verdict']['metric'].replace('_auc', '')} {v['verdict']['model']:.3f} vs {v['verdict']['best_baseline'].replace('logistic_regression', 'LR').replace('lightgbm', 'LightGBM')} "
             f"{v['verdict']['best']:.3f}" for n, v in sets.items() if "verdict" in v]
    met = all(v["verdict"]["met"] for v in sets.values() if "verdict" in v) and bool(parts)
    return {"text": "FT-Transformer vs best baseline, 5-fold: " + "; ".join(parts), "met": met}


LIMIT_S = 300  # issue #25: every run under 5 minutes on 2 cores


def slowest(v: dict) -> str:
    """The slowest fold's run and the load it met, e.g. ``182 s (load 4.4)``."""
    f = max(v["folds"], key=lambda f: f["seconds"])
    return f"{f['seconds']:.0f} s (load {max(f.get('load_avg', [0])):.1f})"


def fmt(s: dict | None) -> str:
    return "—" if not s else f"{s['mean']:.3f} ± {s['std']:.3f}"


def cpu_words(machine: dict) -> str:
    """'AMD EPYC (flags: avx2)': the CPU a set was measured on, from its record."""
    cpu = machine.get("cpu", {})
    return f"{cpu.get('model', '?')} (flags: {', '.join(cpu.get('flags', [])) or 'none recorded'})"


def render(record: dict) -> str:
    m = record.get("machine", {})
    loads = [x for v in record["sets"].values() for f in v.get("folds", []) for x in f.get("load_avg", [])]
    load = f"{min(loads):.1f}-{max(loads):.1f}" if loads else "?"
    cpus = sorted({cpu_words(v.get("machine", m)) for v in record["sets"].values()})
    lines = [f"Measured on {' and on '.join(cpus)} (each set below names its own), {m.get('torch_threads')} torch thread(s), "
             f"OMP_NUM_THREADS={m.get('omp_num_threads')}, 1-minute load average {load} at the folds' starts and ends (a shared 2-core "
             "machine: other jobs ran beside it, so the run times are those of a busy machine; each set below says its own command, "
             "date and load). Each fold is one `guimo run` with the scenario's defaults; mean ± sample sd over the folds. "
             f"Run time: the issue asks for every run under {LIMIT_S // 60} minutes on 2 cores; the table gives the slowest fold's run "
             "(all six stages, the baselines included) at the load it met.", ""]
    lines += ["| set | target | transformer | best baseline | met | slowest run |", "|---|---|---:|---:|:---:|---:|"]
    for name, v in record["sets"].items():
        if "verdict" not in v:
            continue
        vd = v["verdict"]
        s = v["summary"]
        lines.append(f"| {TITLES.get(name, name)} | {vd['metric']} within {vd['tolerance']} | {fmt(s['model'][vd['metric']])} | "
                     f"{vd['best_baseline']} {fmt(s[vd['best_baseline']][vd['metric']])} | {'yes' if vd['met'] else 'no'} (gap {vd['gap']:+.3f}) | "
                     f"{slowest(v)} |")
    lines.append("")
    for name, v in record["sets"].items():
        if "summary" not in v:
            continue
        s = v["summary"]
        secs = [f["seconds"] for f in v["folds"]]
        k = len(v["folds"])
        how = (f"forward-chaining folds in time: fold i trains on the time blocks before block i+2 of {k + 1} and tests on it"
               if str(v["folds"][0]["split"]).startswith("forward") else f"stratified {k}-fold")
        tests = [f["test_rows"] for f in v["folds"]]
        fl = [x for f in v["folds"] for x in f.get("load_avg", [])]
        lines += [f"**{TITLES.get(name, name)}** ({how}; test rows per fold {min(tests):,}-{max(tests):,}; ids left out: "
                  f"{v['folds'][0]['dropped_ids']}; run time {min(secs):.0f}-{max(secs):.0f} s per run at load {min(fl):.1f}-{max(fl):.1f}; "
                  f"measured {v.get('date', record['date'])} on {cpu_words(v.get('machine', m))} with "
                  f"`{v.get('command', record['command'])}`)", "",
                  "| metric | transformer | logistic regression | LightGBM |", "|---|---:|---:|---:|"]
        for metric in METRICS:
            if metric in s["model"]:
                lines.append(f"| {metric} | {fmt(s['model'].get(metric))} | {fmt(s.get('logistic_regression', {}).get(metric))} | "
                             f"{fmt(s.get('lightgbm', {}).get(metric))} |")
        lines.append("")
    return "\n".join(lines)


# What the second and third attempts at the unmet targets tried (2026-12-07), rendered under the table. Recipes were chosen on
# inner validation (bench/risk_recipes.py: each fold's training rows split into fitting and early-stopping rows, scored
# on the fold's validation rows; test folds never read), then measured once by this script.
NOTES = """**Second attempt (2026-12-07) at the three unmet targets.** Recipes were compared on inner validation, never on
the test folds: `bench/risk_recipes.py` splits each fold's training rows 80/20 into fitting and early-stopping rows and
scores ROC-AUC on the fold's validation rows (mean of 5 folds; logistic regression on the same rows for scale).

- German credit, inner validation (LR 0.758): the default single model 0.735; early stopping on validation log-loss
  instead of ROC-AUC 0.704; a smaller, more regularised model (d_model 32, 2 blocks, dropout 0.2, weight decay 1e-4)
  0.725; 3 separately trained models averaged 0.748 (log-loss stopping: 0.742). Breast cancer (LR 0.992): single model
  0.982, log-loss stopping 0.986.
- Adopted: an ensemble of 5 FT-Transformers in one module below 5,000 training rows (`model.members`, trained side by
  side on their own losses, logits averaged, one early-stopping point; `model=tiny`, DP-SGD runs and larger tables keep
  one model). Early stopping stays on ROC-AUC (`eval.select_on=loss` is an option). The transaction sets (5,153 or more
  training rows in every fold) were untouched by it (one model); the third attempt below re-measured them.
- Measured on the test folds (the rows above): breast cancer 0.983 -> 0.986 ± 0.011 against LR 0.995 (gap 0.009:
  inside the 0.01 target, by less than a fold's spread); German credit 0.760 -> 0.761 ± 0.029 against LR 0.784 (gap
  0.023: NOT met; the ensemble's inner-validation gain did not show on the test folds). Run time went up 5x on these
  small sets: 40-184 s per run at load 3-5.6, under the 5-minute limit.
- Generated payments (PR-AUC gap 0.112) was not worked on again: both contenders already see the same columns (the
  generator's stream features: amount, account age, prior transactions, amount over the account's mean, new
  destination, the destination's distinct senders, hours since and amount over the last incoming money, and the type),
  so the gap is the model's, not the features'. Folds 3-4 ended at the 1,500-step cap with their best validation at
  the last steps (under-trained), folds 0-1 stopped early on a noisy validation PR-AUC.
**Third attempt (2026-12-07, 09:00-10:45 UTC, AVX2-only AMD EPYC, load ~2: two recipe processes on its 2 cores).** The
recipes the second attempt named next, compared again on inner validation only (`bench/risk_recipes.py`, which now also
scores PR-AUC and fits LightGBM on the same fitting and early-stopping rows). Payments (PR-AUC; LightGBM 0.366, LR 0.204
on the same rows):

| recipe (batch 256, lr 1e-3, validated every 50 steps) | PR-AUC | ROC-AUC |
| --- | ---: | ---: |
| linear tokens, 1,500 steps, patience 6, stop on ROC-AUC (the old default) | 0.295 | 0.960 |
| PLR tokens (16 frequencies, sigma 0.1), same schedule | 0.304 | 0.961 |
| PLR, sigma 1.0 | 0.176 | 0.954 |
| PLR, 3,000 steps, patience 10, stop on ROC-AUC | 0.271 | 0.956 |
| PLR, 3,000 steps, patience 10, stop on log-loss | 0.343 | 0.949 |
| PLR, 3,000 steps, patience 10, stop on PR-AUC | 0.334 | 0.955 |
| linear tokens, 3,000 steps, patience 10, stop on log-loss | 0.284 | 0.961 |

German credit (ROC-AUC; LR 0.758, LightGBM 0.724): 5 members 0.740; with PLR (sigma 0.1) 0.746, (sigma 1.0) 0.704,
(sigma 0.03) 0.738; with a linear skip from the feature tokens to the logits (`model.linear_skip`) 0.745; PLR and the
skip 0.737. Breast cancer (LR 0.992): 5 members 0.989, with PLR 0.984. On the small sets nothing moved beyond the seed
noise (about ±0.006 between recipes that differ only in their draw), so they keep linear tokens and no skip.

- Adopted: `model.num_embedding=auto`, PLR tokens from 5,000 training rows up (linear below and under DP-SGD, where
  Opacus has no per-sample rule for them), and for `fraud` 3,000 steps with patience 10 (the 200 s budget still caps a
  run) and early stopping on validation PR-AUC (`eval.select_on=pr_auc`).
- Stopping on log-loss, the best recipe above, was measured first on the test folds: generated payments 0.337 ± 0.105
  against LightGBM 0.401 (gap 0.064, from 0.112), but PaySim without balances fell to 0.323 (gap 0.032; it had met the
  target at 0.348): its validation log-loss rises from step 50-350 on while the ranking still improves, and fold 0 kept
  its step-50 checkpoint. PR-AUC, the metric of the target, is the adopted rule; the three fraud rows above are its
  test folds: generated payments **0.350 ± 0.103** against LightGBM 0.401 (gap 0.051, from 0.112: NOT met), PaySim
  without balances 0.338 against 0.355 (met, gap 0.017; 0.348 under the old recipe), PaySim with them 0.869 against
  0.857 (the transformer now leads). One payments fold (0, 5,623 training rows) kept a checkpoint with the best
  validation PR-AUC but a test ROC-AUC of 0.675: PR-AUC over a few dozen validation frauds still picks noisy points.
- Next: separately stopped members on the transaction sets (one model per fold now; 3 would fit the 5-minute limit on
  the smaller folds only), LightGBM's own features handed to the transformer as extra tokens (leaf indices), and for
  German credit a pretrained-free remedy for its 800 rows: stronger weight decay on the blocks with the linear skip
  left free, chosen by inner validation as above.

**Fourth attempt (2026-12-07, 12:25-13:30 UTC, AVX2-only AMD EPYC, load 2-3), German credit.** Every regularisation
tried above left the transformer from random weights below logistic regression on 650 training rows, so the model now
*starts* at logistic regression (`model.linear_start`, `guimo.models.tabular.linear_warm_start`): each member's linear
skip is set to the baseline's coefficients read through its initial feature tokens (numeric tokens `x w + b`: readout
`beta w / |w|^2`; a categorical column's table: least squares, exact up to the token width), the head starts at zero,
and the whole model trains at 0.4x the lr, so the blocks learn only what the linear model misses (Wide & Deep, Cheng et
al. 2016) and early stopping keeps the start when they find nothing. Inner validation (`bench/risk_recipes.py`, key
`lrinit`; LR 0.758): 5 members from random weights 0.740; started at LR, 5 members 0.755 at lr 5e-4 and at 2e-4, one
model 0.755 at 5e-4 and 0.773 at 2e-4. Adopted as `model.linear_start=auto`: binary tables below 5,000 training rows,
never under DP-SGD (the fit would read the rows outside the privacy account; an explicit `logistic` there is refused),
not for multiclass or regression (unmeasured; `logistic` runs them with multinomial LR or ridge). The transaction sets
(5,153 training rows and up) are untouched. Test folds, the rows above: German credit **0.788 ± 0.033 against LR
0.784** (from 0.761: the transformer now leads by 0.004); the kept checkpoints sit at steps 10, 60, 1,030, 1,070 and
510, so in three folds the blocks trained on for hundreds of steps and added 0.005-0.010 over the start, and in two
the start itself (within 0.001 of LR) was kept. Breast cancer, which the same rule covers (370 training rows): 0.995 ±
0.005 against LR 0.995 (from 0.986), and there the start was kept in four folds of five (step 10; 180 in the other):
on that set the transformer now adds nothing measurable to the linear model it starts from, and the report's parameters
row says it was set to it.

**Fifth attempt (2026-12-07, 14:27-15:35 UTC, AVX2-only AMD EPYC, two recipe processes on its 2 cores), generated
payments.** Three remedies for the noisy early stopping the third attempt found, on inner validation only
(`bench/risk_recipes.py` on the folds of `runs/bench-risk-5`; the scenario's recipe: PLR tokens, batch 256, lr 1e-3,
3,000 steps, validated every 50, patience 10, stopped on PR-AUC; LightGBM 0.366, LR 0.204 on the same rows):

| recipe | PR-AUC | ROC-AUC |
| --- | ---: | ---: |
| the scenario's recipe, seed 0 / seed 1 | 0.334 / 0.338 | 0.955 / 0.952 |
| weights averaged (EMA, decay 0.99), validated and kept | 0.323 | 0.927 |
| frauds repeated 10x in the epoch order, their weight divided by 10 | 0.316 | 0.947 |
| the stop on the mean of 3 validations, the window's middle kept (`train.select_window=3`), seed 0 / seed 1 | 0.354 / 0.323 | 0.924 / 0.927 |

None moved PR-AUC beyond the seed noise (per fold, the same recipe at two seeds differs by up to 0.14), and the windowed
stop, +0.020 at seed 0, lost 0.015 at seed 1 and kept later, worse-ranking checkpoints (ROC-AUC -0.03). So the
scenario's defaults are unchanged and the test-fold rows above stand: **generated payments 0.350 against LightGBM 0.401,
NOT met (gap 0.051)**. `train.select_window` stays in the training loop as an option (a window's weights travel in
the checkpoints, so kill and resume keep the same weights; tested), set by no scenario. What is left, measured: the
seed-to-seed spread is as large as the gap, so the next remedy is one that averages it away, separately trained models
averaged; a step of the 64-wide, 3-block model costs ~0.4 ms per row on one core, so three of them fit the 200 s budget
only at a third of today's steps (the larger folds already end at the budget, before their best validation), and a
cheaper step (narrower tokens, 2 threads) must come first. A first probe of that (16:24-17:06 UTC, inner validation,
two processes): 32-wide tokens alone 0.305 (ROC-AUC 0.957); three of them trained separately and averaged 0.333
(ROC-AUC 0.961), so averaging three models added 0.028 and brought the narrower model back to the 64-wide single one,
at 1.6x its step cost under load (a 32-wide step measured 116 ms against 184 ms for 256 rows). Three 64-wide models
averaged are the next measurement.

**Sixth change (2026-12-07, 17:30-18:50 UTC, AVX2-only AMD EPYC, two bench processes on its 2 cores): determinism and
run time, not accuracy.** Two defaults broke the issue's or the brief's rules, and the rows above are re-measured with
them fixed:

- `fraud` no longer takes a 200 s time budget (`train.max_time_s`): the budget timed the first 10 steps and fixed the
  count from them, so a busier machine trained fewer steps with another cosine horizon and got other weights from
  the same command and seed (non-negotiable 4: nothing the wall clock decides may change a run's numbers). It trains
  a fixed count, and a test now holds every scenario's defaults and presets to no time budget. First 2,400 steps, about
  what the budget chose on these folds (2,325-2,583): generated payments 0.320, and the same fold run twice, at load 2.9
  and at load 1.1, gave byte-identical weights; but the default `guimo run fraud` took 286 s (275 s of training, 0.1 s
  a step) on a quiet 2-core EPYC with 2 threads, and a fold 334 s on one thread beside another job, against the
  issue's 5 minutes. So **1,800 steps**: the default run 266 s (252 s of training; the same machine's step time moves
  by ~20% between runs), the folds 92-269 s. The rows above are 1,800 steps: PaySim without balances 0.373 (was
  0.338 under the budget), with them 0.873 (was 0.869), both met and both now ahead of LightGBM; generated payments
  **0.335 against LightGBM 0.401, gap 0.066** (0.350 and 0.051 under the budget; per fold 0.198 -> 0.201, 0.404 ->
  0.386, 0.334 -> 0.296, 0.340 -> 0.313, 0.476 -> 0.477). The recipe is the same but for the horizon; the per-fold
  moves are the stopping noise the fifth attempt measured between seeds (up to 0.14 per fold). Still NOT met.
- Below 5,000 rows a binary table that starts at the logistic regression (`model.linear_start`) is one model, not an
  ensemble of 5: German credit's slowest fold took 526 s with 5 (the issue: every run under 5 minutes). Inner
  validation (`bench/risk_recipes.py`, key `lrinit`; LR 0.758): one model 0.773 / 0.754 / 0.755 at seeds 0-2 against
  0.755 for 5 members; breast cancer one model 0.992 / 0.991 at seeds 0-1 (LR 0.992). Test folds, the rows above:
  German credit **0.786 ± 0.030 against LR 0.784** (was 0.788 with 5 members), runs 15-59 s (were 94-526 s); breast
  cancer 0.994 against LR 0.995 (gap 0.001, inside the 0.01 target; was 0.995), runs 17-72 s (were 80-154 s).
  Multiclass and regression tables below 5,000 rows keep the 5 members.
- Not finished: three 64-wide models trained separately and averaged on payments' inner validation (the fifth
  attempt's next step) was started and stopped after 25 minutes for the runs above; at 3x a model's step it could not
  be a default inside 5 minutes anyway without a cheaper step. Where a step goes (torch.profiler, the default run's
  model: 11 numeric PLR columns and one categorical, 64 wide, 3 blocks, 107,888 parameters, batch 256, fused AdamW):
  116 ms on one thread, 92 ms on two; matmuls (mm, addmm, bmm) 43% of it, dropout's Bernoulli sampling 18% (9
  dropout sites a step; CPU sampling costs ~10 ns an element), tensor copies 8%. The FT-Transformer paper's own
  dropout layout (attention 0.2, FFN 0.1, residual 0; Gorishniy et al. 2021) would drop 6 of the 9 sites: a cheaper
  step to measure on inner validation before the ensemble.

**Seventh attempt (2026-12-07, 20:10-21:52 UTC, AMD EPYC with AVX-512 and avx512_bf16, two processes on its 2 cores),
generated payments: the FT-Transformer paper's dropout layout.** On inner validation only (`bench/risk_recipes.py` on
the folds of `runs/bench-risk-10`, keys `drop 0, adrop 0.2, fdrop 0.1`; the scenario's recipe otherwise: PLR tokens,
batch 256, lr 1e-3, 1,800 steps, validated every 50, patience 10, stopped on PR-AUC; LightGBM 0.366 PR-AUC and 0.970
ROC-AUC, LR 0.204 on the same rows):

| dropout | PR-AUC, seed 0 / 1 | ROC-AUC, seed 0 / 1 |
| --- | ---: | ---: |
| 0.1 on attention and both residual branches (the default until now) | 0.326 / 0.326 | 0.954 / 0.939 |
| attention 0.2, inside the MLP 0.1, residual 0 (the paper's) | 0.334 / 0.379 | 0.964 / 0.954 |

Better at both seeds on both metrics, so adopted as `model.dropout_layout=auto`: the paper's layout from 5,000 training
rows up (the same line as the PLR tokens), 0.1 uniform below, where the small tables' linear start and ensembles were
measured. It also takes 6 of a step's 9 dropout draws away. **The test folds did not confirm the gain** (the rows
above): generated payments **0.332 against LightGBM 0.401, gap 0.070, NOT met** (was 0.335; per fold 0.201 -> 0.181,
0.386 -> 0.371, 0.296 -> 0.302, 0.313 -> 0.356, 0.477 -> 0.448); PaySim without balances 0.368 (was 0.373, met); PaySim
with them 0.835 (was 0.873, still within 0.03 of LightGBM's 0.857; its fold 0 fell from 0.759 to 0.596). The per-fold
moves are the size of the seed noise measured before (up to 0.14 a fold), and the layout stays, chosen as the protocol
says on inner validation, not on the test folds. The slowest payments run took 144 s (was 269 s on the AVX2-only EPYC:
another machine, so the share of the fewer dropout draws is not separated from it). What is left for payments, 0.04
beyond the target after seven attempts: the seed spread dominates every comparison, so the next step is averaging it
away, separately trained models (now that a run takes ~2 minutes, three fit the 5-minute limit on this machine).

**Measured next, inner validation only (2026-12-07, 22:05-22:40 UTC, same machine and folds): three separately
trained models averaged, the paper's layout each.** PR-AUC 0.363 at seeds 0-2 and 0.397 at seeds 10-12 (their first
models alone 0.334 and 0.374: averaging added 0.029 and 0.023), ROC-AUC 0.964 and 0.963, against LightGBM's 0.366 and
0.970 on the same rows; the seed-0 model alone reproduced the single-model row above exactly (0.3338). Not adopted
yet: it triples training, and the largest payments fold's run (144 s, of which ~120 s training) would pass the
issue's 5 minutes on one thread; the next session can make it the default from 5,000 training rows up where three
fit (two threads, or fewer steps each: their kept checkpoints sat at 300-1,750 of the 1,800 steps), then measure
the test folds.

**Eighth attempt (2026-12-07, 22:55-23:50 UTC, same machine and folds, inner validation only): ensembles that could fit
the 5 minutes.** Three separately trained 64-wide models cost 3x a run, so two cheaper ways to the same average were
measured first (two processes on the 2 cores, one thread each; the paper's dropout layout, the recipe above):

| model | PR-AUC, seed 0 / 10 | ROC-AUC, seed 0 / 10 | 5 folds, s |
| --- | ---: | ---: | ---: |
| one 64-wide model (the default; from the seventh attempt) | 0.334 / 0.374 | 0.964 / 0.954 | - |
| three 64-wide models trained separately, averaged (measured next, above; seeds 0-2 / 10-12) | 0.363 / 0.397 | 0.964 / 0.963 | - |
| `model.members=3`: three 64-wide members in one module, one stopping point | 0.359 / 0.367 | 0.930 / 0.959 | 1,835 / 1,818 |
| three 32-wide models trained separately, averaged | 0.319 / - | 0.944 / - | 1,375 |
| `model.members=3` at `model.d_model=32` | 0.308 / - | 0.911 / - | 1,305 |

(LightGBM 0.366 PR-AUC, 0.970 ROC-AUC on the same rows.) Members trained side by side share one stopping point, and
that took most of the averaging's gain away (+0.009 PR-AUC over one model on the mean of the two seeds, against +0.026
for separately stopped models) and once cost ROC-AUC on the smallest fold (0.775 at seed 0); they cost the full 3x
too (a member's FLOPs are the model's: on 3,072-token batches the step is compute-bound, not per-op overhead, so
running members as one batched op would not make them cheaper). Members half as wide cost ~1.2x one model but each
fell far below it (a 32-wide model alone 0.258), so their average is below one 64-wide model. The seed-10 rows of the
32-wide variants were stopped: seed 0 had already ruled them out. **Nothing adopted; generated payments stays NOT met
(gap 0.070 on the test folds).** The only measured gain left is separately stopped full-width models, which the issue's
5 minutes rule out on 2 cores (the default run's one model already takes ~half of them on the slower AVX2 EPYC). What I
would try next: a per-member stopping point inside one run (each member's own best weights kept at its own best
validation, stopped when all have run out of patience), which is what separate training buys, in one process, still at
3x the FLOPs, so only with a shorter schedule (the kept checkpoints of the runs above sat at 450-1,800 steps).
"""

HEADER = """# Risk: fraud, credit and health (issue #25)

The FT-Transformer of `guimo run fraud|credit|health` against logistic regression and LightGBM on the same rows, by
`python bench/risk.py` (5-fold cross-validation; each fold an ordinary run with the scenario's defaults). The sections
below are written by their scripts: `risk` by bench/risk.py (accuracy), the privacy and explanation sections by
bench/risk_privacy.py.
"""


def write_page(record: dict) -> None:
    """The page's header (this script's), then its section; other scripts' sections stay as they are."""
    from guimo.io import atomic_write_text

    doc = page("risk")
    text = doc.read_text(encoding="utf-8") if doc.exists() else ""
    if not text.startswith(HEADER):
        body = text.split("\n", 1)[1] if text.startswith("# ") else text  # another script's placeholder title
        atomic_write_text(doc, HEADER + "\n" + body.lstrip("\n"))
    write_section("risk", render(record) + "\n" + NOTES, heading="Accuracy: transformer vs baselines, 5-fold", doc=doc)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--out", default=str(ROOT / "runs" / "bench-risk"), help="where the fold runs go (resumed when there)")
    p.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE", help="extra settings for every run")
    p.add_argument("--render", action="store_true", help="rewrite the page from the record only")
    args = p.parse_args()
    record = json.loads(RESULT.read_text()) if RESULT.exists() else {"sets": {}}
    if not args.render:
        record.update(date=dt.date.today().isoformat(), machine=machine(), load_avg_start=[round(x, 2) for x in os.getloadavg()],
                      command="python bench/risk.py " + " ".join(sys.argv[1:]))
        measured: list[str] = []  # the sets this process measured: the only ones it writes over another process's record
        for name in args.sets:
            folds = []
            for fold in range(args.folds):
                res = run_fold(name, fold, args.folds, Path(args.out) / name / f"fold{fold}", args.extra)
                print(f"{name} fold {fold}: transformer {res['model'].get('roc_auc'):.4f} ROC / {res['model'].get('pr_auc'):.4f} PR, "
                      f"LR {res['baselines']['logistic_regression'].get('roc_auc'):.4f}, LightGBM {res['baselines']['lightgbm'].get('roc_auc'):.4f} "
                      f"({res['seconds']:.0f} s, load {res['load_avg']})", flush=True)
                folds.append(res)
            summary = summarize(folds)
            # read again: another `bench/risk.py --sets ...` may have recorded its sets meanwhile (each writes only its own)
            on_disk = json.loads(RESULT.read_text()) if RESULT.exists() else {"sets": {}}
            record["sets"] = {**on_disk.get("sets", {}), **{n: record["sets"][n] for n in measured}}
            measured.append(name)
            record["sets"][name] = {"folds": folds, "summary": summary, "verdict": verdict(name, summary), "settings": SETS[name][1] + args.extra,
                                    "date": dt.date.today().isoformat(), "machine": record["machine"], "command": record["command"]}
            record["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
            record["headline"] = headline(record)
            from guimo.io import atomic_write_json

            atomic_write_json(RESULT, record)
            write_page(record)
    write_page(record)
    print(render(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
