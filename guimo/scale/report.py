"""Fit a folder of runs and write DIR/scale/{report.md, fit.json, plots/*.png}.

Two modes, picked from the runs' metrics.json:
- a loss (lower is better, e.g. the `lm` scenario): L(N, D) by Chinchilla approach 3, Kaplan's
  L(N) and L(D), the extrapolation check, compute-optimal plans and training economics;
- a business metric (higher is better, e.g. NDCG@10 of `recommend`): the saturating learning
  curve of the largest model vs data size, its 2x/4x predictions and a half-data check.
Every number in the report names the runs (measurement) and price entries (assumption) behind it.
"""

from __future__ import annotations

import datetime as dt
import platform
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from guimo.errors import GuimoError
from guimo.io import atomic_write_json, atomic_write_text
from guimo.pipeline.progress import Progress
from guimo.scale.labels import is_classifier, label_section
from guimo.scale.points import PARAM_COUNTS, Point, collect_points
from guimo.scale.verdict import curve_verdict, law_predictions, law_verdict
from guimo.scale.verdict import markdown as verdict_markdown


def _verdict(result: dict[str, Any], criterion: Any) -> dict[str, Any]:
    """The verdict of the fit the report made: a law's, or the largest model's learning curve's."""
    from guimo.scale.recipe import Criterion

    criterion = criterion or Criterion()
    return law_verdict(result, criterion) if "fit" in result else curve_verdict(result, criterion)


def build_report(
    root: str | Path,
    *,
    metric: str | None = None,
    prices_path: str | Path | None = None,
    n_bootstrap: int = 100,
    correction: str | None = None,
    allow_missing: bool = False,
    seed: int = 0,
    delta: float | None = None,
    alt_delta: float | None = None,
    noise_sims: int = 50,
    form: str = "chinchilla",
    params: str = "total",
    fix_E: float | None = None,
    quiet: bool = True,
    criterion: Any = None,
) -> dict[str, Any]:
    """Fit the runs under ``root`` and write the report; returns what fit.json holds.

    ``delta`` is the Huber threshold of the L(N, D) fit (default: ``fit.HUBER_DELTA``); the
    extrapolation check is also run with ``alt_delta`` (default: ``fit.ALT_HUBER_DELTA``) and
    reported beside it as a sensitivity row, so the choice of delta is visible, not hidden.
    ``noise_sims`` simulations give the check's noise floor (``extrapolate``; 0 turns it off).
    ``form`` is the law shape of the main fit ("chinchilla" or "kaplan"); the other one is always
    fitted beside it as a sensitivity row. ``params`` is what N counts (``points.PARAM_COUNTS``); the
    extrapolation check is repeated with the other count, also as a sensitivity row. ``fix_E`` holds the
    irreducible loss at a value in every L(N, D) fit of the report instead of fitting it. Unless ``quiet``,
    a progress bar names the fitting phase under way (with 40 runs and 100 bootstrap refits, about 3 minutes on one core).
    ``criterion`` (a ``recipe.Criterion``; default: the recipe's defaults) judges the held-out check in the verdict that
    opens report.md and fit.json's "verdict" (``verdict``).
    """
    from guimo.scale.fit import ALT_HUBER_DELTA, HUBER_DELTA
    from guimo.scale.record import read_sweep

    if params not in PARAM_COUNTS:
        raise GuimoError(f"unknown parameter count '{params}'; choose {' or '.join(PARAM_COUNTS)}")
    root = Path(root)
    sweep = read_sweep(root) if root.is_dir() else None
    expected = [str(root / p["run"]) for p in sweep["points"] if p.get("status") == "done"] if sweep else None
    if correction is None and sweep and sweep["spec"].get("repeat_to_full"):
        correction = "muennighoff"  # every point saw the full data's tokens: only the effective data varies
    metric = metric or _headline(root)
    probes = [str(root / p["run"]) for p in sweep.get("probes", [])] if sweep else None
    points, notes = collect_points(root, metric, expected=expected, allow_missing=allow_missing, exclude=probes)
    if sweep:
        skipped = [p for p in sweep["points"] if p.get("status") == "skipped"]
        if skipped:  # what the budget's order kept and gave up, before the list of points
            order = sweep["spec"].get("order", "cheapest")  # records older than the option ran cheapest first
            budget = sweep["spec"].get("budget_s")
            by_size = Counter(p["size"] for p in skipped)
            notes.append(f"the {_duration(budget) + ' ' if budget else ''}budget, in `{order}` order, skipped {len(skipped)} of "
                         f"{len(sweep['points'])} points: " + ", ".join(f"{size} x{n}" for size, n in by_size.items()))
        notes += [f"{p['run']}: {p['status']} — {p.get('reason', '')}" for p in sweep["points"] if p.get("status") in ("skipped", "failed")]
    left_out = _left_out(sweep)
    out_dir = root / "scale"
    plots_dir = out_dir / "plots"
    higher = _higher_is_better(points)
    result: dict[str, Any] = {
        "root": str(root), "metric": metric, "higher_is_better": higher, "created": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''} {platform.platform()}".strip(),
        "points": [p.as_dict() for p in points], "notes": notes, "sweep": sweep["spec"] if sweep else None,
        "invocations": sweep.get("invocations", []) if sweep else [],
        "lr_probe": sweep.get("lr_probe") if sweep else None,
        "left_out": left_out if sweep else None,
        "set_probe": {"key": sweep["spec"].get("probe_key"), "choices": sweep["set_probe"]} if sweep and sweep.get("set_probe") else None,
    }
    if higher and is_classifier(points):  # a classifier's sweep: accuracy against labels per class, its baselines' curves, labels priced
        md = label_section(points, result, plots_dir, prices_path=prices_path, n_bootstrap=n_bootstrap, seed=seed, noise_sims=noise_sims)
    elif higher:
        md = _curve_section(points, result, plots_dir, n_bootstrap, seed, noise_sims)
    else:
        with Progress(quiet) as bar, bar.task("scale fit", total=len(LAW_PHASES)) as task:
            md = _law_section(points, result, plots_dir, n_bootstrap, correction, seed,
                              HUBER_DELTA if delta is None else delta, ALT_HUBER_DELTA if alt_delta is None else alt_delta, noise_sims, form, params,
                              fix_E, phase=lambda name: task.update(completed=LAW_PHASES.index(name), info=name))
    md += _economics_section(points, result, prices_path)
    result["verdict"] = _verdict(result, criterion)
    title, rest = _header(root, points, notes, result).split("\n", 1)
    text = title + "\n\n" + verdict_markdown(result["verdict"]) + rest.lstrip("\n") + md
    atomic_write_json(out_dir / "fit.json", result)
    atomic_write_text(out_dir / "report.md", text)
    return result


def _left_out(sweep: dict[str, Any] | None) -> dict[str, Any] | None:
    """The planned points that did not run (skipped by the budget, or failed), and the sizes none of whose points ran:
    what the verdict says a longer budget would add."""
    if not sweep:
        return None
    missing = [p for p in sweep["points"] if p.get("status") != "done"]
    ran = {p["size"] for p in sweep["points"] if p.get("status") == "done"}
    sizes = list(dict.fromkeys(p["size"] for p in sweep["points"] if p["size"] not in ran))
    return {"points": len(missing), "of": len(sweep["points"]), "sizes": sizes, "budget_s": sweep["spec"].get("budget_s")}


# -- loss mode ---------------------------------------------------------------------------------


# The law section's steps, each a bootstrap or a simulation of its own (seconds to minutes): the progress bar's ticks.
LAW_PHASES = ("L(N, D) and its bootstrap", "held-out checks and their noise floor", "other Huber delta", "other law form",
              "other parameter count", "horizon", "plans and plots")


def _no_phase(name: str) -> None:
    return None


def _law_section(points: list[Point], result: dict, plots_dir: Path, n_bootstrap: int, correction: str | None, seed: int,
                 delta: float, alt_delta: float, noise_sims: int, form: str, params: str = "total", fix_E: float | None = None,
                 phase=_no_phase) -> str:
    from guimo.scale import plots
    from guimo.scale.extrapolate import size_gap
    from guimo.scale.fit import FORMS, effective_tokens, fit_law, fit_power_law
    from guimo.scale.plan import caveat, plan

    n = np.array([p.params(params) for p in points], dtype=float)
    d = np.array([p.d for p in points], dtype=float)
    loss = np.array([p.value for p in points], dtype=float)
    result["params_count"] = params
    if correction == "muennighoff":
        if any(p.unique is None for p in points):
            raise GuimoError("the repeated-data correction needs each run's unique training tokens (preprocess train_tokens)")
        d = effective_tokens(d, [p.unique for p in points])
    elif correction is not None:
        raise GuimoError(f"unknown data correction '{correction}'; choose muennighoff")
    elif d.max() < 1.1 * d.min() and (u := [p.unique for p in points if p.unique]) and max(u) > 1.5 * min(u):
        raise GuimoError("every run trained on the same number of tokens from different amounts of unique data (runs of a repeat_to_full "
                         "sweep without its sweep.json): fit with --set fit.correction=muennighoff, so that D is the effective data")
    if form not in FORMS:
        raise GuimoError(f"unknown law form '{form}'; choose {' or '.join(FORMS)}")
    phase(LAW_PHASES[0])
    fit = fit_law(n, d, loss, n_bootstrap=n_bootstrap, seed=seed, data_correction=correction, delta=delta, form=form, fix_E=fix_E)
    result["fit"] = fit.as_dict()
    md = [f"## {fit.law.FORMULA} — {_FORM_NAMES[form]}\n",
          f"Fitted on {fit.n_points} runs (measurement: each run's test loss in metrics.json, N = {PARAM_COUNTS[params]}, "
          f"D = {'effective tokens after the Muennighoff repeated-data correction (R* = 15.4)' if correction else 'training tokens seen'}), "
          f"summed Huber loss (delta = {delta:g}) on log residuals, L-BFGS from the best of a grid of initialisations, "
          f"{len(fit.samples)} bootstrap refits (each from the full fit's optimum and the resample's {fit.restarts} best grid points) "
          f"for the {fit.level:.0%} intervals.\n",
          "| parameter | estimate | 95% interval |", "| --- | ---: | --- |"]
    for k in fit.law.PARAMS:
        lo, hi = fit.interval(k)
        md.append(f"| {k} | {getattr(fit.law, k):.4g} | " + ("held (fit.fix_E), not fitted |" if k == "E" and fix_E is not None else f"[{lo:.4g}, {hi:.4g}] |"))
    if fit.at_bound:
        md.append(f"\n**{', '.join(fit.at_bound)} at the end of the searched range**: the points do not pin this down (e.g. the loss does not "
                  "fall with N or flatten with D inside the sweep), so the fitted law's shape there comes from the bounds, not the data.")
    if loose := [k for k in fit.unidentified if k not in fit.at_bound]:
        md.append(f"\n**{', '.join(loose)}: the 95% interval reaches the end of the searched range**: the estimate is inside it, but more "
                  f"than {(1 - fit.level) / 2:.1%} of the bootstrap refits ran to the bound, so the points leave this parameter free (e.g. beta over a data axis "
                  "that spans little, such as a few epochs of repetition, or a floor E far below every loss).")
    md.append("")

    kaplan = {}
    for var, key, other in (("N", n, d), ("D", d, n)):
        sel = other >= other.max() * (1 - 1e-9)  # the largest of the other axis: closest to "not the bottleneck"
        try:
            pl = fit_power_law(key[sel], loss[sel], var, seed=seed)
            kaplan[var] = pl.as_dict()
        except GuimoError as e:
            kaplan[var] = {"skipped": str(e)}
    result["kaplan"] = kaplan
    md.append("## Single-variable laws (Kaplan form)\n")
    for var, k in kaplan.items():
        if "skipped" in k:
            md.append(f"- L({var}): skipped — {k['skipped']}")
        else:
            lo, hi = k["exponent_interval"]
            md.append(f"- L({var}) = ({var}_c / {var})^a: a = {k['exponent']:.4f} (95% [{lo:.4f}, {hi:.4f}]), {var}_c = {k['x_c']:.4g}, "
                      f"fitted on the {k['n_points']} runs at the largest {'D' if var == 'N' else 'N'}")
    md.append("")

    other = next(c for c in PARAM_COUNTS if c != params)
    checks, extra = _extrapolation_section(n, d, loss, result, n_bootstrap=n_bootstrap, seed=seed, correction=correction, delta=delta,
                                           alt_delta=alt_delta, noise_sims=noise_sims, form=form, full_law=fit.law, fix_E=fix_E,
                                           other_count=(other, np.array([p.params(other) for p in points], dtype=float)), phase=phase)
    md += extra
    # the answer the verdict gives: 2x and 4x the largest model and data, with the seed noise the held-out check measured
    result["predictions"] = law_predictions(fit, float(n.max()), float(d.max()), checks[0].noise, seed)

    monotone = _monotone(points)
    result["monotone_in_n"] = monotone
    md.append("## Loss vs model size\n")
    md.append("Mean test loss over seeds per data fraction, smallest to largest model: "
              + "; ".join(f"D = {k}: {' > '.join(f'{v:.4f}' for v in vals)} ({'monotone' if ok else 'NOT monotone'})" for k, (vals, ok) in monotone.items()) + "\n")
    gap = size_gap(n, d, loss)
    result["size_gap"] = gap
    if gap:
        md.append(_size_gap_text(gap) + "\n")

    phase(LAW_PHASES[6])
    flops = np.array([p.flops or 6 * p.n * p.d for p in points])
    budgets = [float(flops.max()) * m for m in (1, 10, 100)]
    plans = [plan(fit, c) for c in budgets]
    result["plans"] = [p.as_dict() for p in plans]
    md += ["## Compute-optimal plans (C = 6ND; attention FLOPs excluded from the closed form)\n",
           "Budgets: the largest run's measured FLOPs x1, x10, x100. Bands: 95% bootstrap. Besiroglu et al. (2024) refit "
           "(E=1.82, A=482, B=2085, alpha=0.348, beta=0.366) and Chinchilla's 20 tokens/param given for the same C; "
           "their losses are in MassiveText nats and are not comparable with this corpus, their allocations are.\n",
           "| C (FLOPs) | N_opt [band] | D_opt [band] | tokens/param [band] | loss [band] | Besiroglu N / tokens per param | 20 tok/param N |",
           "| ---: | --- | --- | --- | --- | --- | ---: |"]
    if warn := caveat(fit):
        md.append(f"**Caveat**: {warn}.\n")
    for p in plans:
        b = p.bands
        md.append(f"| {p.best.compute:.3g} | {p.best.n:.3g} [{b['n'][0]:.3g}, {b['n'][1]:.3g}] | {p.best.d:.3g} [{b['d'][0]:.3g}, {b['d'][1]:.3g}] "
                  f"| {p.best.tokens_per_param:.3g} [{b['tokens_per_param'][0]:.3g}, {b['tokens_per_param'][1]:.3g}] "
                  f"| {p.best.loss:.4f} [{b['loss'][0]:.4f}, {b['loss'][1]:.4f}] | {p.besiroglu.n:.3g} / {p.besiroglu.tokens_per_param:.3g} | {p.chinchilla_20.n:.3g} |")
    md.append("")

    files = [
        plots.loss_vs_axis(n, d, loss, fit.law, plots_dir / "loss_vs_n.png", axis="N", n_label=PARAM_COUNTS[params]),
        plots.loss_vs_axis(n, d, loss, fit.law, plots_dir / "loss_vs_d.png", axis="D", n_label=PARAM_COUNTS[params]),
        plots.frontier(fit.law, n, d, plots_dir / "frontier.png", n_label=PARAM_COUNTS[params]),
        plots.extrapolation(checks, plots_dir / "extrapolation.png"),
    ]
    result["plots"] = [str(f) for f in files]
    md.append("## Plots\n")
    md += [f"![{f.stem}](plots/{f.name})" for f in files]
    md.append("")
    result["_law"] = fit.law  # for the economics section; removed before writing
    return "\n".join(md) + "\n"


def _extrapolation_section(n, d, loss, result: dict, *, n_bootstrap: int, seed: int, correction: str | None, delta: float,
                           alt_delta: float, noise_sims: int, form: str, full_law, other_count: tuple[str, np.ndarray] | None = None,
                           fix_E: float | None = None, phase=_no_phase) -> tuple[list, list[str]]:
    """The held-out checks in the main form, with the other delta, the other law shape and the other parameter count
    (``other_count``: its name and N per point) beside them; fills result["extrapolation"], ["sensitivity"],
    ["form_sensitivity"] and ["count_sensitivity"] and returns the main checks and the Markdown."""
    from guimo.scale.extrapolate import holdout_checks, horizon
    from guimo.scale.fit import FORMS, fit_law

    other_form = next(f for f in FORMS if f != form)
    md: list[str] = []
    main = {"data_correction": correction, "delta": delta, "form": form, "fix_E": fix_E}  # every fit below varies one of these
    phase(LAW_PHASES[1])
    checks = holdout_checks(n, d, loss, n_bootstrap=n_bootstrap, seed=seed, noise_sims=noise_sims, full_law=full_law, **main)
    result["extrapolation"] = [h.as_dict() for h in checks]
    alt_checks = []
    phase(LAW_PHASES[2])
    if alt_delta != delta:  # sensitivity: the same checks with the other delta, always reported beside the primary
        alt_checks = holdout_checks(n, d, loss, n_bootstrap=n_bootstrap, seed=seed, **{**main, "delta": alt_delta})
        alt_fit = fit_law(n, d, loss, n_bootstrap=0, **{**main, "delta": alt_delta})
        result["sensitivity"] = {"huber_delta": alt_delta, "params": alt_fit.law.as_dict(), "extrapolation": [h.as_dict() for h in alt_checks]}
    # the other law shape, same delta: says how much of a miss is the shape's (the additive form has no N x D interaction)
    phase(LAW_PHASES[3])
    form_checks = holdout_checks(n, d, loss, n_bootstrap=n_bootstrap, seed=seed, **{**main, "form": other_form})
    form_fit = fit_law(n, d, loss, n_bootstrap=0, **{**main, "form": other_form})
    result["form_sensitivity"] = {"form": other_form, "law": form_fit.law.FORMULA, "params": form_fit.law.as_dict(), "at_bound": form_fit.at_bound,
                                  "extrapolation": [h.as_dict() for h in form_checks]}
    count_checks = []
    phase(LAW_PHASES[4])
    if other_count is not None:  # the other parameter count, same form and delta: the held-out model's step differs with the embeddings' share
        count_name, n_other = other_count
        count_checks = holdout_checks(n_other, d, loss, n_bootstrap=n_bootstrap, seed=seed, axes=("N",), **main)
        count_fit = fit_law(n_other, d, loss, n_bootstrap=0, **main)
        result["count_sensitivity"] = {"params": count_name, "law_params": count_fit.law.as_dict(), "at_bound": count_fit.at_bound,
                                       "extrapolation": [h.as_dict() for h in count_checks]}
    noise = checks[0].noise
    md += ["## Extrapolation check (always on)\n",
           "Each held-out run is compared with the fit's 95% bootstrap band (the *expected* loss) and with its 95% prediction interval "
           "(that band widened by the seed noise: where one run should land). "
           + (f"Seed noise, pooled between runs of the same N and D: {noise:.2%} of the loss. " if noise else
              "No (N, D) has two seeds, so the seed noise is unmeasured and the interval equals the band. ")
           + ("The noise floor is the max relative error of the same check when the fit of all points is taken as the exact law and every run "
              "is redrawn with that seed noise: what noise alone gives on this grid.\n" if noise and noise_sims else "\n"),
           "| held out | law, Huber delta | beyond the fit | points | mean rel. error | max rel. error | inside 95% band | inside 95% prediction interval | noise floor: median / p90 (observed percentile) |",
           "| --- | --- | ---: | ---: | ---: | ---: | --- | --- | --- |"]
    tagged = ([(h, f"{_SHORT[form]}, {delta:g}") for h in checks] + [(h, f"{_SHORT[form]}, {alt_delta:g} (sensitivity)") for h in alt_checks]
              + [(h, f"{_SHORT[other_form]}, {delta:g} (form sensitivity)") for h in form_checks]
              + [(h, f"{_SHORT[form]}, {delta:g}, N = {PARAM_COUNTS[other_count[0]]} (count sensitivity)") for h in count_checks])
    for h, tag in tagged:
        if h.skipped:
            md.append(f"| largest {h.axis} | {tag} | — | — | — | — | skipped: {h.skipped} | — | — |")
        else:
            flag = f" (fit with {', '.join(h.fit_unidentified)} at a bound or its interval reaching one)" if h.fit_unidentified else ""
            nf = h.noise_floor
            floor = f"{nf['median']:.2%} / {nf['p90']:.2%} ({nf['observed_percentile']:.0f}th)" if nf and nf.get("sims") else "—"
            inside = sum(r["inside_interval"] for r in h.rows)
            md.append(f"| largest {h.axis} = {h.held_out:.4g} | {tag} | {h.ratio:.2f}x | {len(h.rows)} | {h.mean_relative_error:.2%} | {h.max_relative_error:.2%}{flag} "
                      f"| {'yes' if h.all_inside else 'no'} | {'yes' if h.all_inside_interval else f'no ({inside} of {len(h.rows)} inside)'} | {floor} |")
    if alt_checks:
        md.append(f"\nWith delta = {alt_delta:g} the full fit is {_params_text(alt_fit.law)}.")
    md.append(f"\nThe {_FORM_NAMES[other_form]} {form_fit.law.FORMULA} ({_FORM_WHY[other_form]}) fitted the same way to all points: "
              f"{_params_text(form_fit.law)}" + (f" ({', '.join(form_fit.at_bound)} at a search bound)" if form_fit.at_bound else "")
              + f". The plans and plots use the {_FORM_NAMES[form]}.")
    if count_checks:
        md.append(f"\nWith N = {PARAM_COUNTS[other_count[0]]} the full fit is {_params_text(count_fit.law)}; the held-out model is "
                  f"{count_checks[0].ratio:.2f}x the largest fitted one in that count.")
    phase(LAW_PHASES[5])
    reach = horizon(n, d, loss, seed=seed, **main)
    result["horizon"] = reach
    if len(reach) > 1:
        md += ["\nHow the error grows with the distance (each row: fit the model sizes up to one, predict a larger one; max and mean "
               "relative error over its runs, and the worst at the largest D):\n",
               "| fitted sizes (up to N) | predicted N | beyond the fit | max rel. error | mean | at the largest D |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for r in reach:
            bound = " (fit at a bound)" if r["fit_at_bound"] else ""
            full = f"{r['at_full_data']:.2%}" if r["at_full_data"] is not None else "—"
            md.append(f"| {r['fitted_sizes']} (up to {r['fitted_up_to']:.4g}) | {r['n']:.4g} | {r['ratio']:.2f}x | {r['max_relative_error']:.2%}{bound} "
                      f"| {r['mean_relative_error']:.2%} | {full} |")
    by_n = checks[0]
    if by_n.rows:  # how data-starved the extrapolation target is, beside the models it was extrapolated from
        held_tpp = [r["d"] / r["n"] for r in by_n.rows]
        rest = n < by_n.held_out * (1 - 1e-9)
        md.append(f"\nTokens per parameter (D/N): the held-out model {min(held_tpp):.3g}-{max(held_tpp):.3g}, the fitted runs "
                  f"{(d[rest] / n[rest]).min():.3g}-{(d[rest] / n[rest]).max():.3g}. Chinchilla-optimal training is about 20.")
    md.append("")
    return checks, md

_FORM_NAMES = {"chinchilla": "Chinchilla approach 3 (additive law)", "kaplan": "Kaplan et al. (2020) joint form"}
_SHORT = {"chinchilla": "additive", "kaplan": "Kaplan joint"}
_FORM_WHY = {"chinchilla": "a model's advantage from its size is the same at every data size",
             "kaplan": "an N x D interaction: with little data every model is held back"}


def _size_gap_text(gap: dict) -> str:
    """The additive law's assumption checked on the fitted runs, in words."""
    ratio = gap["ratio"]
    if ratio is None or gap["gap_large_d"] <= 0:
        ratio, verdict = None, "the larger fitted model is not ahead at both ends, so the gap says nothing about the law's shape"
    elif ratio > 1.5:
        verdict = ("the larger model gains more from data than the additive law allows (an N x D interaction): expect the held-out "
                   "model to beat its prediction at large D. When the gap follows training length, a sweep with sweep.repeat_to_full "
                   "(every point as long as the full data) holds it fixed: on the stdlib and tinyshakespeare it took the ratio from "
                   "4-6x to 1.2-1.3x")
    elif ratio < 1 / 1.5:
        verdict = ("the gap shrinks with D: the smaller model gains more from data than the additive law allows (on zh-poetry, where "
                   "the law extrapolated within 3%, it shrank to 0.4-0.6x)")
    else:
        verdict = "about constant, as the additive law assumes"
    return (f"Additive-law check on the fitted runs: the loss gap between the smallest ({gap['n_small']:.4g}) and the largest fitted model "
            f"({gap['n_large']:.4g}) is {gap['gap_small_d']:.4f} nats at D = {gap['d_small']:.4g} and {gap['gap_large_d']:.4f} at "
            f"D = {gap['d_large']:.4g}" + (f" ({ratio:.2f}x)" if ratio is not None else "") + f". The law holds it fixed; here {verdict}.")


def _params_text(law) -> str:
    return ", ".join(f"{k} = {getattr(law, k):.4g}" for k in law.PARAMS)


def _monotone(points: list[Point]) -> dict[str, tuple[list[float], bool]]:
    groups: dict[float, dict[int, list[float]]] = {}
    for p in points:
        groups.setdefault(p.d, {}).setdefault(p.n, []).append(p.value)
    out = {}
    for d in sorted(groups):
        by_n = groups[d]
        vals = [float(np.mean(by_n[k])) for k in sorted(by_n)]
        out[f"{d:.4g}"] = (vals, all(a > b for a, b in zip(vals, vals[1:])))
    return out


# -- business-metric mode ----------------------------------------------------------------------


def _curve_section(points: list[Point], result: dict, plots_dir: Path, n_bootstrap: int, seed: int, noise_sims: int = 0) -> str:
    from guimo.scale import plots
    from guimo.scale.curves import SIZE_TOLERANCE, check_curve, fit_curve

    # one curve for the largest model configuration; its parameter count may vary a little with the
    # data (a recommender's item table grows with the catalogue), so group by configuration, not by N
    groups: dict[str, list[Point]] = {}
    for p in points:
        groups.setdefault(p.size, []).append(p)
    sel = max(groups.values(), key=lambda g: max(p.n for p in g))
    top = max(p.n for p in sel)
    x = np.array([_data_size(p) for p in sel], dtype=float)
    y = np.array([p.value for p in sel], dtype=float)
    # inverse-variance weights when every run says how many test cases its metric averages over
    w = np.array([p.cases for p in sel], dtype=float) if all(p.cases for p in sel) else None
    curve = fit_curve(x, y, weights=w, n_bootstrap=n_bootstrap, seed=seed)
    result["curve_weights"] = "test cases per run (inverse variance)" if w is not None else "none"
    result["curve"] = curve.as_dict()
    md = [f"## Learning curve of {points[0].metric} (model '{sel[0].size}', up to {top:,} parameters)\n",
          f"Fit m(n) = a + b n^(-c) on {len(sel)} runs (measurement: each run's test {points[0].metric}; n = training data size from the preprocess stage; "
          f"{'weighted by each run' + chr(39) + 's number of test cases' if w is not None else 'unweighted'}).\n",
          f"- a (saturation) = {curve.a:.4f}, b = {curve.b:.4g}, c = {curve.c:.4f}"
          + (" — **c is at the end of the searched range: no saturation is visible (log-like growth), so a is not a ceiling and the "
             "predictions below extrapolate a shape the data do not pin down**" if curve.at_bound else "")]
    for mult in (2, 4):
        pr = result["curve"][f"predicted_{mult}x"]
        md.append(f"- predicted with {mult}x data (n = {pr['n']:,.0f}): {pr['value']:.4f} (95% band [{pr['band'][0]:.4f}, {pr['band'][1]:.4f}])")
    chk = None
    if len(np.unique(x[x <= 0.5 * x.max() * (1 + SIZE_TOLERANCE)])) >= 3:
        chk = check_curve(x, y, 0.5, weights=w, n_bootstrap=n_bootstrap, noise_sims=noise_sims)
        result["curve_check"] = chk.as_dict()
        md.append(f"- check: fitted on the {chk.n_fitted} runs with <= 50% of the data, predicts the full-data value {chk.predicted:.4f} vs observed "
                  f"{chk.actual:.4f} ({chk.relative_error:.1%} relative error, {'inside' if chk.as_dict()['inside_band'] else 'outside'} the band"
                  + (f"; {'inside' if chk.as_dict()['inside_interval'] else 'outside'} the 95% prediction interval [{chk.interval[0]:.4f}, "
                     f"{chk.interval[1]:.4f}], one run's sd there {chk.run_sd:.4f} from the seed replicates)" if chk.interval else
                     "; no data size has two seeds, so a run's own noise is unmeasured)"))
        if chk.noise_floor:
            nf = chk.noise_floor
            md.append(f"- noise floor of this check ({nf['sims']} simulations: the curve fitted to all runs taken as exact, every run redrawn with "
                      f"the seed noise): relative error median {nf['median']:.1%}, p90 {nf['p90']:.1%}; the observed {chk.relative_error:.1%} is at "
                      f"the {nf['observed_percentile']:.0f}th percentile")
    md.append("")
    f = plots.learning_curve(curve, x, y, plots_dir / "learning_curve.png", metric_name=points[0].metric)
    result["plots"] = [str(f)]
    md.append(f"![learning curve](plots/{f.name})\n")
    if len(groups) > 1:
        md += _curves_by_size(groups, result, plots_dir, n_bootstrap, seed, points[0].metric, done={sel[0].size: (curve, chk)}, noise_sims=noise_sims)
    return "\n".join(md) + "\n"


def _curves_by_size(groups: dict[str, list[Point]], result: dict, plots_dir: Path, n_bootstrap: int, seed: int, metric: str,
                    done: dict | None = None, noise_sims: int = 0) -> list[str]:
    """One learning curve per model size: what a larger model buys at each data size, and whether it
    keeps buying it as the data grows (the data x model interplay of a business metric). ``done``: sizes
    whose (curve, check) the caller has already fitted with the same settings; ``noise_sims``: the noise floor of
    every other size's check (when its seeds are replicated)."""
    from guimo.scale import plots
    from guimo.scale.curves import SIZE_TOLERANCE, check_curve, fit_curve

    order = sorted(groups, key=lambda k: max(p.n for p in groups[k]))
    sizes = sorted({_data_size(p) for g in groups.values() for p in g})
    md = [f"## {metric} by model size and data size\n",
          "Mean over seeds; one saturating curve per model size (fitted as above), with its predictions at 2x and 4x the largest data size "
          "and its half-data check (fitted on the runs with <= 50% of the data, predicting the full-data value).\n",
          "| model | parameters | " + " | ".join(f"n = {x:,.0f}" for x in sizes) + " | curve: a, c | 2x | 4x | half-data check |",
          "| --- | ---: | " + " | ".join("---:" for _ in sizes) + " | --- | ---: | ---: | ---: |"]
    result["curves"], drawn = {}, []
    for name in order:
        g = groups[name]
        x = np.array([_data_size(p) for p in g], dtype=float)
        y = np.array([p.value for p in g], dtype=float)
        w = np.array([p.cases for p in g], dtype=float) if all(p.cases for p in g) else None
        cells = [f"{y[x == v].mean():.4f}" if (x == v).any() else "—" for v in sizes]
        try:
            c, chk = (done or {}).get(name) or (fit_curve(x, y, weights=w, n_bootstrap=n_bootstrap, seed=seed), None)
        except GuimoError as e:
            result["curves"][name] = {"skipped": str(e)}
            md.append(f"| {name} | {max(p.n for p in g):,} | " + " | ".join(cells) + " | skipped: too few data sizes | — | — | — |")
            continue
        d = c.as_dict()
        result["curves"][name] = {**d, "parameters": max(p.n for p in g)}
        check = "—"
        if chk is None and len(np.unique(x[x <= 0.5 * x.max() * (1 + SIZE_TOLERANCE)])) >= 3:  # every size's half-data check
            chk = check_curve(x, y, 0.5, weights=w, n_bootstrap=n_bootstrap, noise_sims=noise_sims)
        if chk is not None:
            result["curves"][name]["check"] = chk.as_dict()
            nf = chk.noise_floor or {}
            floor = f"; noise alone {nf['median']:.1%} / p90 {nf['p90']:.1%}" if nf.get("sims") else ""
            check = f"{chk.predicted:.4f} vs {chk.actual:.4f} ({chk.relative_error:.1%}{floor})"
        drawn.append((name, c, x, y))
        md.append(f"| {name} | {max(p.n for p in g):,} | " + " | ".join(cells) + f" | {c.a:.4g}, {c.c:.3g}{' (c at a bound)' if c.at_bound else ''} "
                  f"| {d['predicted_2x']['value']:.4f} | {d['predicted_4x']['value']:.4f} | {check} |")
    if drawn:
        f = plots.learning_curves(drawn, plots_dir / "learning_curves.png", metric_name=metric)
        result["plots"].append(str(f))
        md.append(f"\n![learning curves by model size](plots/{f.name})\n")
    return md


def _data_size(p: Point) -> float:
    if p.unique:
        return p.unique
    raise GuimoError(f"{p.run}: the preprocess stage reports no training data size (train_tokens, train_interactions or train_examples)")


# -- economics ---------------------------------------------------------------------------------


def _economics_section(points: list[Point], result: dict, prices_path) -> str:
    from guimo.scale.economics import figures_markdown, hardware_mismatch, optimal_run_cost, training_cost
    from guimo.scale.plan import compute_for_loss
    from guimo.scale.prices import load_prices

    law = result.pop("_law", None)
    prices = load_prices(prices_path)
    figs = []
    for p in points:
        figs += [f for f in training_cost(Path(p.run).name, p.train_seconds, prices, source=f"{Path(p.run).name}/manifest.json") if f.name.startswith("training cost")]
    measured = [p for p in points if p.flops and p.train_seconds > 0]
    if law is not None and measured:
        rate = sum(p.flops for p in measured) / sum(p.train_seconds for p in measured)
        best = min(p.value for p in points)
        for target in (best, best * 0.95):
            try:
                alloc = compute_for_loss(law, target)
            except GuimoError as e:
                result.setdefault("notes", []).append(f"no compute-optimal run for loss {target:.4f}: {e}")
                continue
            label = f"compute-optimal run for loss {target:.4f} (N {alloc.n:.3g} {PARAM_COUNTS[result.get('params_count', 'total')]}, D {alloc.d:.3g}, C {alloc.compute:.3g})"
            figs += optimal_run_cost(alloc.compute, rate, prices, measured=f"FLOPs / train wall time over {len(measured)} runs", label=label)
    result["economics"] = [f.as_dict() for f in figs]
    warning = result["hardware_warning"] = hardware_mismatch([p.device for p in points], prices)
    return "## Training economics\n\nPrices: " + prices.source + "\n\n" + (f"**{warning}**\n\n" if warning else "") + figures_markdown(figs) + "\n"


# -- header ------------------------------------------------------------------------------------


def _header(root: Path, points: list[Point], notes: list[str], result: dict) -> str:
    lines = [f"# Scale report: {root}\n",
             f"{len(points)} runs of scenario `{points[0].scenario}`, metric `{points[0].metric}` (test split). "
             f"Created {result['created']} on {result['machine']}." + _sweep_time(result["invocations"]) + "\n",
             "| run | size | N total | N non-emb. | fraction | seed | D tokens | unique | epochs | scored step | " + points[0].metric + " | best baseline | train s |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for p in sorted(points, key=lambda p: (p.n, p.d, p.seed)):
        base = (max if result["higher_is_better"] else min)(p.baselines.values()) if p.baselines else float("nan")
        epochs = p.d / p.unique if p.unique else float("nan")
        lines.append(f"| {Path(p.run).name} | {p.size} | {p.n:,} | {p.n_non_embedding:,} | {p.fraction if p.fraction is not None else '—'} | {p.seed} "
                     f"| {p.d:,.0f} | {p.unique or 0:,.0f} | {epochs:.2f} | {_scored_step(p)} | {p.value:.4f} | {base:.4f} | {p.train_seconds:.1f} |")
    validated = [p for p in points if p.best_step]
    if validated:  # sweep --evals: did the runs peak before their last step (past their best) or were they still improving?
        early = [p.best_step / p.steps for p in validated if p.steps and p.best_step < p.steps]
        lines.append(f"\n{len(early)} of {len(validated)} runs scored weights from an earlier validation than their last"
                     + (f" (at {min(early):.0%}-{max(early):.0%} of their steps)" if early else "")
                     + f"; the other {len(validated) - len(early)} were still improving when they stopped.")
    if result.get("sweep"):
        lines.append("\n" + _lr_rule_text(result["sweep"]))
    if result.get("set_probe"):
        key = result["set_probe"]["key"]
        lines.append("\n" + _probe_text(f"`{key}`: each size's points use the value its probe (or the nearest probed width's) scored best on "
                                         "the validation split, at the rule's lr, before any lr probe:", result["set_probe"]["choices"], key))
    if result.get("lr_probe"):
        lines.append("\n" + _probe_text("Learning rate: each size's points use the multiple of the lr rule its probe (or the nearest probed "
                                         "width's) scored best on the validation split:", result["lr_probe"]))
    if notes:
        lines.append("\nLeft out or not run:\n")
        lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n\n"


def _sweep_time(invocations: list[dict]) -> str:
    """' The sweep trained for X min ...': summed over the invocations that trained points (a resumed sweep has several)."""
    if not invocations:
        return ""
    from guimo.scale.planning import sweep_minutes

    minutes = sweep_minutes(invocations)
    stopped = sum(not i.get("complete", True) for i in invocations)
    text = f" The sweep trained for {minutes:.1f} min of wall time"
    if len(invocations) > 1:
        text += f" over {len(invocations)} invocations"
    if stopped:
        text += f" ({stopped} stopped before it finished: counted up to its last finished point)"
    return text + "."


def _lr_rule_text(spec: dict) -> str:
    """The learning rate each size trained at: the sweep's width rule, or muP's one lr."""
    sets = dict(o.split("=", 1) for o in spec.get("overrides") or [] if "=" in o)
    batch = (f" A point trained at a batch b smaller than {spec.get('batch_size')} uses lr x (b / {spec.get('batch_size')})^"
             f"{spec.get('lr_batch_exponent', 0.5):g}." if spec.get("min_steps") else "")
    if spec.get("sizes") == ["default"]:  # the scenario's own model (a pretrained encoder): no width rule to state
        return f"Learning rate: {spec['lr_ref']:.4g} for every point (the scenario's own model, size 'default')." + batch
    if "model.mup_base_width" in sets:
        return (f"Parametrization: muP with d{sets['model.mup_base_width']} as the base (head dimension {sets.get('model.mup_base_head_dim', 'its own')}): "
                f"one lr, {spec['lr_ref']:.4g}, for every size; the model trains its hidden matrices at lr / (d_model / "
                f"{sets['model.mup_base_width']}) and divides its logits by the same." + batch)
    return (f"Learning rate: lr = {spec['lr_ref']:.4g} x ({spec.get('d_ref', 64)} / d_model)^{spec.get('lr_exponent', 0.5):g} "
            "(standard parametrization)." + batch)


def _probe_text(heading: str, choices: dict[str, dict], key: str | None = None) -> str:
    """Which lr multiple (or, with ``key``, which value of that config key) each size trained with, and the probe
    scores that chose it."""
    from guimo.scale.probe import describe_choice

    return heading + "\n\n" + "\n".join(f"- {describe_choice(size, choice, key)}" for size, choice in choices.items())


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _scored_step(p: Point) -> str:
    """'best / steps' when validation picked the scored weights, else the last step."""
    if p.best_step:
        return f"{p.best_step} / {p.steps}"
    return f"{p.steps} (last)" if p.steps else "—"


def _headline(root: Path) -> str:
    from guimo.pipeline.rundir import list_runs

    for run in list_runs(root):
        m = run.metrics()
        if m and m.get("headline") == "bits_per_byte":
            return "loss"  # fit nats per token: the unit of the published laws
        if m and m.get("headline"):
            return m["headline"]
    return "loss"


def _higher_is_better(points: list[Point]) -> bool:
    from guimo.pipeline.rundir import RunDir

    m = RunDir.open(points[0].run).metrics() or {}
    return bool(m.get("higher_is_better", False)) and points[0].metric == m.get("headline")
