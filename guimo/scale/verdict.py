"""The answer a sweep gives: what 2x and 4x the model and the data would reach, whether the sweep's own held-out
check passed, and what the fit cannot support.

A fit always returns numbers; whether they mean anything depends on the check it passed and on how far the
question lies from what was measured. So the verdict puts the three side by side:

- **predictions** at 2x and 4x the largest model (at the largest data) and 2x and 4x the largest data (at the
  largest model), each with the fit's 95% bootstrap band and, when seeds were replicated, the 95% interval where
  one run would land (the band widened by the seed noise);
- **the check**: the largest model held out and predicted by the fit of the others (a loss), or the curve fitted
  on <= 50% of the data predicting the full-data value (a business metric), judged by the recipe's ``Criterion``;
- **what the fit cannot support**: parameters the runs leave free, a floor held rather than fitted, predictions
  further from the data than the check reached, models that do not beat the baselines, a check that did not run.

The functions here read the dicts ``report.build_report`` writes to fit.json, so a verdict can be recomputed
from any fit.json.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MULTIPLES = (2, 4)


def law_predictions(fit, n_max: float, d_max: float, noise: float | None, seed: int = 0) -> list[dict[str, Any]]:
    """The fitted law (a ``fit.LawFit``) at 2x and 4x ``n_max`` (at ``d_max``) and 2x and 4x ``d_max`` (at ``n_max``).
    ``noise`` is the seed noise as an sd of log loss (None: unmeasured, the interval is the band)."""
    from guimo.scale.extrapolate import prediction_interval

    out = []
    for axis in ("N", "D"):
        for mult in MULTIPLES:
            n, d = (mult * n_max, d_max) if axis == "N" else (n_max, mult * d_max)
            lo, hi = fit.predict_band(np.array([n]), np.array([d]))
            if noise:
                ilo, ihi = prediction_interval(fit, np.array([n]), np.array([d]), noise, seed)
            else:
                ilo, ihi = lo, hi
            out.append({"axis": axis, "multiple": mult, "n": float(n), "d": float(d), "value": float(fit.predict(n, d)),
                        "band": [float(lo[0]), float(hi[0])], "interval": [float(ilo[0]), float(ihi[0])]})
    return out


def law_verdict(result: dict[str, Any], criterion) -> dict[str, Any]:
    """The verdict of a loss fit from build_report's result (its "fit", "extrapolation" and "predictions")."""
    fit = result["fit"]
    holdout = {h["axis"]: h for h in result.get("extrapolation", [])}
    check = _law_check(holdout.get("N"), criterion)
    limits = []
    if fit.get("unidentified"):
        limits.append(f"{', '.join(fit['unidentified'])} not identified by the runs (at a search bound, or the 95% interval reaching one): "
                      "predictions that lean on them are the bounds' shape, not the data's")
    held_free = [k for k in (holdout.get("N") or {}).get("fit_unidentified") or [] if k not in fit.get("unidentified", [])]
    if held_free:
        limits.append(f"the held-out check's fit leaves {', '.join(held_free)} free, so the check tested a law with a free shape")
    if fit.get("fixed_E") is not None:
        limits.append(f"E is held at {fit['fixed_E']:g}, not fitted: the law assumes no floor below the losses seen, so its predictions "
                      "keep falling with N and D where a real loss would flatten")
    n_reach = _reach(holdout.get("N"))
    d_reach = _reach(holdout.get("D"))
    for axis, reach in (("N", n_reach), ("D", d_reach)):
        beyond = []
        for p in result.get("predictions", []):
            if p["axis"] == axis:
                p["within_checked"] = bool(reach and p["multiple"] <= reach + 1e-9)
                beyond += [] if p["within_checked"] else [f"{p['multiple']}x"]
        if beyond:
            limits.append(f"{' and '.join(beyond)} the {'model' if axis == 'N' else 'data'} lie beyond the checked range: the held-out "
                          "check extrapolated " + (f"{reach:.2f}x in {axis}" if reach else f"nothing in {axis} (it did not run)"))
    if result.get("fit", {}).get("data_correction") == "muennighoff":
        limits.append("D is the effective data of repeated tokens: 2x and 4x the data mean that much more unique data, each trained "
                      "as the sweep trained its full data (one pass over all of it)")
    beats = _beats_baselines(result)
    if beats is False:
        limits.append("not every model beats its best baseline at the largest data: the sweep measured little scaling")
    limits += _left_out(result)
    return {"kind": "law", "metric": result.get("metric", "loss"), "predictions": result.get("predictions", []), "check": check,
            "cannot_support": limits, "passed": check["passed"]}


def curve_verdict(result: dict[str, Any], criterion) -> dict[str, Any]:
    """The verdict of a business metric's learning curves (the largest model's "curve" and "curve_check")."""
    curve = result["curve"]
    raw = result.get("curve_check")
    preds = [{"axis": "D", "multiple": m, "n": curve[f"predicted_{m}x"]["n"], "value": curve[f"predicted_{m}x"]["value"],
              "band": curve[f"predicted_{m}x"]["band"], "interval": curve[f"predicted_{m}x"]["band"], "within_checked": m <= 2}
             for m in MULTIPLES]
    if raw is None:
        check = {"what": "half-data check", "ran": False, "passed": False, "criterion": criterion.max_relative_error,
                 "why": "fewer than 3 data sizes at <= 50% of the data"}
    else:
        err = raw["relative_error"]
        check = {"what": "half-data check", "ran": True, "passed": bool(err <= criterion.max_relative_error), "criterion": criterion.max_relative_error,
                 "relative_error": err, "ratio": 2.0, "predicted": raw["predicted"], "actual": raw["actual"],
                 "inside_interval": raw.get("inside_interval")}
    labels = result.get("labels")
    if labels:  # a classifier's sweep: the data axis is labels, and each multiple is priced
        for p, lp in zip(preds, labels["prices"].get("model", [])):
            p.update(axis="labels", n=lp["per_class"], labels_added=lp["added"], cost=lp["cost"], currency=labels["currency"], gain=lp["gain"],
                     gain_band=lp["gain_band"])
    limits = ["one model trained at every label count: the sweep predicts more labels, not a larger model" if labels else
              "a learning curve per model size has no law in model size: 2x and 4x the model are not predicted" + _size_gain(result)]
    if curve.get("c_at_search_bound"):
        limits.append("the curve's exponent is at a search bound: no saturation is visible, so its asymptote is not a ceiling")
    limits.append(f"4x the {'labels lie' if labels else 'data lies'} beyond the checked range: the half-data check extrapolated 2x")
    beats = _beats_baselines(result)
    if beats is False:
        limits.append("the model does not beat its best baseline at the most labels" if labels else
                      "the largest model does not beat its best baseline at the largest data")
    limits += _left_out(result)
    return {"kind": "curve", "metric": result.get("metric"), "predictions": preds, "check": check, "cannot_support": limits,
            "passed": check["passed"]}


def lines(verdict: dict[str, Any]) -> list[str]:
    """The verdict in words: what the CLI prints and report.md opens with."""
    metric = verdict["metric"]
    out = []
    for p in verdict["predictions"]:
        what = {"N": "model", "D": "data", "labels": "labels"}[p["axis"]] + f" x{p['multiple']}"
        at = f"N = {p['n']:.4g}, D = {p['d']:.4g}" if "d" in p else f"{p['n']:,.1f} per class" if p["axis"] == "labels" else f"n = {p['n']:,.0f}"
        if "cost" in p:  # labels, priced: what labelling the added examples costs and what the curve says it buys
            at += (f"; {p['labels_added']:,.0f} more labels cost {p['cost']:,.2f} {p['currency']} for {100 * p['gain']:+.2f} points "
                   f"[{100 * p['gain_band'][0]:+.2f}, {100 * p['gain_band'][1]:+.2f}]")
        interval = f"; one run: [{p['interval'][0]:.4f}, {p['interval'][1]:.4f}]" if p["interval"] != p["band"] else ""
        far = "" if p.get("within_checked") else "  (beyond the checked range)"
        out.append(f"  {what}: {metric} {p['value']:.4f}  [95% band {p['band'][0]:.4f}, {p['band'][1]:.4f}{interval}] at {at}{far}")
    c = verdict["check"]
    if not c["ran"]:
        out.append(f"  held-out check: did not run ({c['why']}): NOT passed")
    else:
        ratio = f" from {c['ratio']:.2f}x beyond the fit" if c.get("ratio") else ""
        out.append(f"  held-out check ({c['what']}{ratio}): max relative error {c['relative_error']:.2%} vs the criterion "
                   f"{c['criterion']:.0%}" + (f" at >= {c['min_ratio']:g}x" if c.get("min_ratio") else "")
                   + f": {'passed' if c['passed'] else 'NOT passed'}" + (f" ({c['why']})" if c.get("why") else ""))
    if verdict["cannot_support"]:
        out.append("  the fit cannot support:")
        out += [f"    - {x}" for x in verdict["cannot_support"]]
    return out


def headline(verdict: dict[str, Any]) -> str:
    return f"the held-out check {'passed' if verdict['passed'] else 'did NOT pass'}"


def markdown(verdict: dict[str, Any]) -> str:
    return f"## Verdict: {headline(verdict)}\n\n```\n" + "\n".join(lines(verdict)) + "\n```\n\n"


def _law_check(h: dict[str, Any] | None, criterion) -> dict[str, Any]:
    base = {"what": "largest model held out", "criterion": criterion.max_relative_error, "min_ratio": criterion.min_ratio}
    if not h or h.get("skipped"):
        return {**base, "ran": False, "passed": False, "why": (h or {}).get("skipped") or "no held-out check in the report"}
    err, ratio = h["max_relative_error"], h["ratio"]
    why = []
    if err > criterion.max_relative_error:
        why.append(f"error above {criterion.max_relative_error:.0%}")
    if ratio < criterion.min_ratio:
        why.append(f"only {ratio:.2f}x beyond the fit, the criterion asks {criterion.min_ratio:g}x")
    return {**base, "ran": True, "passed": not why, "relative_error": err, "ratio": ratio,
            "inside_interval": h.get("all_inside_interval"), "why": "; ".join(why)}


def _left_out(result: dict[str, Any]) -> list[str]:
    """The design's points that did not run: a fit of fewer points, and without whole sizes, answers a narrower question."""
    lo = result.get("left_out")
    if not lo or not lo["points"]:
        return []
    sizes = f"; no run of {', '.join(lo['sizes'])} (the largest planned model is the held-out check's)" if lo["sizes"] else ""
    why = "the budget skipped or the sweep failed" if lo.get("budget_s") else "the sweep did not finish"
    return [f"{why} {lo['points']} of the design's {lo['points'] + (lo['of'] - lo['points'])} points{sizes}: a longer --budget "
            "(or more --workers on more cores) trains them, and the same command resumes the sweep"]


def _reach(h: dict[str, Any] | None) -> float | None:
    """How far the held-out check on an axis extrapolated, when it ran."""
    if not h or h.get("skipped") or not h.get("ratio"):
        return None
    return float(h["ratio"])


def _beats_baselines(result: dict[str, Any]) -> bool | None:
    """Whether every run at the largest data beats its best baseline (None when the runs have no baselines)."""
    pts = [p for p in result.get("points", []) if p.get("baselines")]
    if not pts:
        return None
    higher = result.get("higher_is_better", False)
    key = "unique" if higher else "d"
    top = max(p[key] or 0 for p in pts)
    at_top = [p for p in pts if (p[key] or 0) >= top * (1 - 1e-9)]
    best = max if higher else min
    return all((p["value"] > best(p["baselines"].values())) if higher else (p["value"] < best(p["baselines"].values())) for p in at_top)


def _size_gain(result: dict[str, Any]) -> str:
    """'; measured at the largest data: d32x2 0.19, small 0.20, medium 0.24': what the sizes did reach."""
    pts = result.get("points", [])
    if not pts:
        return ""
    top = max(p["unique"] or 0 for p in pts)
    by: dict[str, list[float]] = {}
    for p in pts:
        if (p["unique"] or 0) >= top * 0.98:
            by.setdefault(p["size"], []).append(p["value"])
    order = sorted(by, key=lambda s: max(p["n"] for p in pts if p["size"] == s))
    return "; measured at the largest data: " + ", ".join(f"{s} {np.mean(by[s]):.4f}" for s in order)
