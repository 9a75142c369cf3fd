"""Refits of the recorded scale_lm sweeps: the held-out check of bench/scale_lm.py with one analysis
choice varied, no new training.

    python bench/scale_refit.py param-count    # N = total vs non-embedding parameters (~1 min per sweep and variant)
    python bench/scale_refit.py eval-split     # loss on the test split vs validation vs both pooled
    python bench/scale_refit.py floor --bootstrap 0 --noise-sims 0   # E fitted vs held at 0 .. 2 nats (exploratory, seconds)
    python bench/scale_refit.py param-count --render   # rewrite the docs block from the saved JSON

The pre-registered experiments were written down in bench/prereg/ before any of their refits: the
candidate variant, the baseline it is compared with, and the reading. An exploratory one (no
prereg) only tabulates; it supports no claim beyond its numbers. Every sweep is refitted as its report was
(Chinchilla form, Huber delta 1e-2, 200 bootstrap refits, 50 noise-floor simulations).
Writes bench/results/scale_refit_<experiment>.json and its block of docs/benchmarks/scale.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchdoc import page, write_section  # noqa: E402  (bench/ is on sys.path when run as a script)

# record name in bench/results/scale_lm_<name>.json; the target is judged on the first four
SWEEPS = ["stdlib", "zh-poetry", "shakespeare", "stdlib-seeds23", "stdlib-ms840", "stdlib-depth2", "zh-poetry-depth2",
          "shakespeare-4ep", "shakespeare-depth2"]
PRIMARY = SWEEPS[:4]  # the three corpora's sweeps and the stdlib replication
TARGET = 0.03


# -- what each variant fits: (N, loss) of one point ----------------------------------------------


def _config(point) -> dict:
    return json.loads((Path(point.run) / "model_config.json").read_text())


def _matmul(point) -> tuple[float, float]:
    """Non-embedding + output head: the N of 6N in flops_per_token."""
    cfg = _config(point)
    return point.n_non_embedding + cfg["vocab_size"] * cfg["d_model"], point.value


def _held_out(point) -> dict[str, tuple[float, int]]:
    """A run's loss on each held-out split and the tokens it averages (whole blocks of the context)."""
    run = Path(point.run)
    metrics = json.loads((run / "metrics.json").read_text())
    tokens = json.loads((run / "manifest.json").read_text())["stages"]["preprocess"]["val_tokens"]
    block = _config(point)["max_len"]
    return {"test": (metrics["model"]["loss"], metrics["eval_tokens"]), "val": (metrics["val"]["loss"], (tokens - 1) // block * block)}


def _pooled(point) -> tuple[float, float]:
    (lt, nt), (lv, nv) = _held_out(point).values()
    return point.n, (lt * nt + lv * nv) / (nt + nv)


@dataclass(frozen=True)
class Experiment:
    prereg: str
    baseline: str
    candidate: str
    variants: dict[str, Callable]  # name -> point -> (N, loss)
    exploratory: tuple[str, ...] = ()  # shown, not part of the reading
    option: str = ""  # what a supported result became in guimo
    fits: dict[str, dict] = field(default_factory=dict)  # name -> extra fit_law settings of that variant


FLOORS = (0.0, 0.5, 1.0, 1.5, 2.0)  # nats per token: E held at each by `guimo scale fit --fix-E`


EXPERIMENTS = {
    "param-count": Experiment(
        prereg="bench/prereg/scale_lm_parameter_count.md", baseline="total", candidate="non_embedding",
        variants={"total": lambda p: (p.n, p.value), "non_embedding": lambda p: (p.n_non_embedding, p.value), "matmul": _matmul},
        exploratory=("matmul",),
        option="Total stays the default count; `guimo scale ... --params non-embedding` fits on the other, and every report repeats the "
               "held-out check in the other count as a sensitivity row."),
    "eval-split": Experiment(
        prereg="bench/prereg/scale_lm_eval_split.md", baseline="test", candidate="pooled",
        variants={"test": lambda p: (p.n, p.value), "val": lambda p: (p.n, _held_out(p)["val"][0]), "pooled": _pooled},
        exploratory=("val",)),
    "floor": Experiment(
        prereg="", baseline="fitted", candidate="", variants={k: lambda p: (p.n, p.value) for k in ["fitted", *(f"E={e:g}" for e in FLOORS)]},
        fits={f"E={e:g}": {"fix_E": e} for e in FLOORS},
        option="`guimo scale fit DIR --fix-E E` holds the floor in every fit of a report."),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", choices=list(EXPERIMENTS))
    p.add_argument("--render", action="store_true", help="only rewrite the docs block from the saved results")
    p.add_argument("--bootstrap", type=int, default=200)
    p.add_argument("--noise-sims", type=int, default=50)
    p.add_argument("--sweeps", help="refit only these (comma-separated record names) and update them in the saved results")
    args = p.parse_args(argv)
    exp = EXPERIMENTS[args.experiment]
    path = ROOT / "bench" / "results" / f"scale_refit_{args.experiment}.json"
    if not args.render:
        only = args.sweeps.split(",") if args.sweeps else SWEEPS
        res = refit_all(exp, args.bootstrap, args.noise_sims, only)
        res["command"] = f"python bench/scale_refit.py {args.experiment}" + "".join(
            f" --{k.replace('_', '-')} {getattr(args, k)}" for k in ("bootstrap", "noise_sims") if getattr(args, k) != p.get_default(k))
        if args.sweeps:  # keep the other sweeps' saved rows
            res["sweeps"] = {**json.loads(path.read_text())["sweeps"], **res["sweeps"]}
        path.write_text(json.dumps(res, indent=1) + "\n")
    write_section(f"scale_refit_{args.experiment}", render(exp, json.loads(path.read_text())),
                  heading=f"Scale: {'pre-registered' if exp.prereg else 'exploratory'} refit, {args.experiment}", doc=page("scale"))
    return 0


def refit_all(exp: Experiment, n_bootstrap: int, noise_sims: int, names: list[str] = SWEEPS) -> dict:
    import numpy as np

    from guimo.scale.extrapolate import holdout_checks
    from guimo.scale.fit import HUBER_DELTA, effective_tokens, fit_law
    from guimo.errors import GuimoError
    from guimo.device import cpu_info
    from guimo.scale.points import collect_points

    out = {"date": dt.date.today().isoformat(), "machine": f"{platform.machine()}, Python {platform.python_version()}", "cpu": cpu_info(),
           "bootstrap": n_bootstrap, "noise_sims": noise_sims, "sweeps": {}}
    for name in names:
        record = json.loads((ROOT / "bench" / "results" / f"scale_lm_{name}.json").read_text())
        folder = Path(record["report"]).parents[1]
        points, _ = collect_points(folder if folder.is_absolute() else ROOT / folder)
        d = np.array([q.d for q in points], dtype=float)
        if record.get("data_correction") == "muennighoff":  # as the sweep's own report (tinyshakespeare-4ep)
            d = effective_tokens(d, [q.unique for q in points])
        row = {}
        for variant, values in exp.variants.items():
            t0 = time.perf_counter()
            n, loss = (np.array(v, dtype=float) for v in zip(*(values(q) for q in points)))
            settings = {"delta": HUBER_DELTA, **exp.fits.get(variant, {})}
            try:
                full = fit_law(n, d, loss, n_bootstrap=0, **settings)
            except GuimoError as e:  # e.g. a floor above the sweep's lowest loss
                row[variant] = {"skipped": str(e)}
                continue
            (h,) = holdout_checks(n, d, loss, noise_sims=noise_sims, full_law=full.law, axes=("N",), n_bootstrap=n_bootstrap, seed=0, **settings)
            top = max(r["d"] for r in h.rows)
            row[variant] = {"ratio": h.ratio, "max_relative_error": h.max_relative_error, "mean_relative_error": h.mean_relative_error,
                            "at_full_data": max(r["relative_error"] for r in h.rows if r["d"] >= top * (1 - 1e-9)),
                            "all_inside_interval": h.all_inside_interval, "noise_floor": h.noise_floor, "fit": full.law.as_dict(),
                            "at_bound": full.at_bound}
            print(f"{name:20s} {variant:14s} held out {h.ratio:.2f}x: max {h.max_relative_error:.2%}, at full data {row[variant]['at_full_data']:.2%} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
        out["sweeps"][name] = row
    return out


def render(exp: Experiment, res: dict) -> str:
    if not exp.prereg:
        return _render_exploratory(exp, res)
    rows = res["sweeps"]
    base, cand = exp.baseline, exp.candidate
    change = {k: v[cand]["max_relative_error"] - v[base]["max_relative_error"] for k, v in rows.items()}
    falls = sum(c < 0 for c in change.values())
    met = all(rows[k][cand]["max_relative_error"] <= TARGET for k in PRIMARY)
    med = float(sorted(change.values())[len(change) // 2])
    lines = [
        f"Pre-registered in `{exp.prereg}` before any refit. `{res['command']}`, {res['date']}, {res['machine']}; no training: each recorded "
        f"sweep refitted ({res['bootstrap']} bootstrap refits, {res['noise_sims']} noise simulations) once per variant. Held-out largest "
        "model: max relative error over its runs (all D), the worst at the full data, and the observed error's percentile in the noise floor.\n",
        f"| sweep | held out | max error: {base} | {cand} | change | at full data: {base} / {cand} | noise-floor percentile: {base} / {cand} |"
        + "".join(f" exploratory: {e} |" for e in exp.exploratory),
        "| --- | --- | ---: | ---: | ---: | --- | --- |" + " ---: |" * len(exp.exploratory),
    ]
    for name, v in rows.items():
        b, c = v[base], v[cand]
        ratio = f"{b['ratio']:.2f}x" + (f" / {c['ratio']:.2f}x" if abs(c["ratio"] - b["ratio"]) > 1e-6 else "")
        lines.append(f"| {name}{' (primary)' if name in PRIMARY else ''} | {ratio} | {b['max_relative_error']:.2%} | {c['max_relative_error']:.2%} "
                     f"| {change[name] * 100:+.2f} pt | {b['at_full_data']:.2%} / {c['at_full_data']:.2%} | {_pct(b)} / {_pct(c)} |"
                     + "".join(f" {v[e]['max_relative_error']:.2%} |" for e in exp.exploratory))
    verdict = "supported: at least 7" if falls >= 7 else "not supported: fewer than 7"
    primary = ", ".join(f"{k} {rows[k][cand]['max_relative_error']:.2%}" for k in PRIMARY)
    lines += ["", f"**Reading, as pre-registered.** With {cand} the error falls on {falls} of {len(rows)} sweeps ({verdict}), median change "
              f"{med * 100:+.2f} points. {TARGET:.0%} on the primary sweeps and the replication: {'met' if met else 'not met'} ({primary}). "
              + exp.option]
    return "\n".join(lines)


def _render_exploratory(exp: Experiment, res: dict) -> str:
    """One row per sweep, one column per variant (max relative error of the held-out largest model), and no verdict."""
    names = list(exp.variants)
    lines = [f"Exploratory (not pre-registered; it tests nothing, it shows how the check moves). `{res['command']}`, {res['date']}, "
             f"{res['machine']}; no training: each recorded sweep refitted once per variant ({res['bootstrap']} bootstrap refits). "
             "Held-out largest model, max relative error over its runs.\n",
             "| sweep | held out | " + " | ".join(names) + " | lowest |", "| --- | --- |" + " ---: |" * (len(names) + 1)]
    for name, v in res["sweeps"].items():
        errs = {k: v[k]["max_relative_error"] for k in names if "skipped" not in v.get(k, {"skipped": 1})}
        best = min(errs, key=errs.get)
        lines.append(f"| {name}{' (primary)' if name in PRIMARY else ''} | {v[names[0]]['ratio']:.2f}x | "
                     + " | ".join(f"{errs[k]:.2%}" if k in errs else "—" for k in names) + f" | {best} |")
    under = [k for k in names[1:] if all(res["sweeps"][s].get(k, {}).get("max_relative_error", 1.0) <= TARGET for s in PRIMARY)]
    lines += ["", f"{TARGET:.0%} on all primary sweeps under one variant: {', '.join(under) if under else 'none'}. {exp.option}"]
    return "\n".join(lines)


def _pct(v: dict) -> str:
    nf = v.get("noise_floor") or {}
    return f"{nf['observed_percentile']:.0f}th" if nf.get("sims") else "—"


if __name__ == "__main__":
    sys.exit(main())
