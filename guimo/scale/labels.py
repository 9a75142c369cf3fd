"""Learning curves of labels: a classifier's accuracy against labelled examples per class, priced.

A team that owns a classifier (product categories, support intents) asks one data question: *what would more
labels buy, and what would they cost?* A sweep of `guimo scale categorize|support` trains the scenario on
stratified shares of its labelled training data, so every class keeps its share of examples; this module reads
those runs and answers it:

- the x axis is **labelled examples per class** (the training split over its classes), the unit a labelling
  budget is planned in and the one that transfers between tasks of different sizes (Figueroa et al. 2012,
  "Predicting sample size required for classification performance");
- each contender gets a saturating curve, the model *and* its baselines (TF-IDF + linear SVM, frozen encoder +
  logistic regression: the scenario's evaluate scores them on the same subsample), because the answer a team
  needs is often that the cheap baseline closes the gap with more labels, or that it never does;
- the curve is the power law in error of Figueroa et al. and Hestness et al. 2017, err(n) = alpha n^(-beta) + gamma,
  which is ``guimo.scale.curves``' m(n) = a + b n^(-c) with a = 1 - gamma (the accuracy the labels saturate at),
  b = -alpha, c = beta; the same fit, its bootstrap bands and its half-data check serve loss and accuracy alike;
- 2x and 4x the labels are predicted with their 95% bootstrap band, and priced: labelling the added examples at
  the price table's ``[labels] per_example``, and that cost per point of accuracy gained (the gain's band from
  the same bootstrap refits, so a gain whose band reaches zero is said to be one).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from guimo.errors import GuimoError
from guimo.scale.curves import Curve, fit_curve
from guimo.scale.points import Point

MULTIPLES = (2, 4)
# metrics.json keys of a classifier's headline and its class-balanced twin; the second is plotted and fitted beside it
ACCURACY = "accuracy"
MACRO_F1_KEYS = ("macro_f1", "f1_macro", "macro-f1")
MODEL = "model"  # the contender name of the scenario's own model (baselines keep their metrics.json names)


def is_classifier(points: Sequence[Point]) -> bool:
    """Runs of a classification scenario: every one says how many classes its training split holds."""
    return bool(points) and all(p.classes for p in points)


def macro_f1_key(points: Sequence[Point]) -> str | None:
    """The metrics.json key of macro-F1 when every run reports it (scenarios spell it differently), else None."""
    for key in MACRO_F1_KEYS:
        if all(key in (p.metrics or {}) for p in points):
            return key
    return None


def contender_values(points: Sequence[Point], metric: str) -> dict[str, list[tuple[float, float]]]:
    """(labels per class, metric) of every run for the model and for each baseline that every run scored."""
    out: dict[str, list[tuple[float, float]]] = {MODEL: []}
    baselines = set.intersection(*(set(n for n, m in (p.baseline_metrics or {}).items() if metric in m) for p in points)) if points else set()
    for name in sorted(baselines):
        out[name] = []
    for p in points:
        x = p.per_class
        if x is None:
            raise GuimoError(f"{p.run}: the preprocess stage reports no classes (preprocess 'labels'), so its labels per class are unknown")
        if metric not in (p.metrics or {}):
            raise GuimoError(f"{p.run}/metrics.json: no model metric '{metric}' (has: {', '.join(p.metrics or {}) or 'none'})")
        out[MODEL].append((x, p.metrics[metric]))
        for name in baselines:
            out[name].append((x, p.baseline_metrics[name][metric]))
    return out


@dataclass(frozen=True)
class LabelPrice:
    """What ``multiple`` x the labels of the largest run would cost and buy, by one contender's curve."""

    multiple: int
    labelled: float  # labelled training examples at that multiple (all classes)
    per_class: float
    added: float  # examples to label on top of the largest run's
    cost: float  # added x the price per example
    predicted: float
    band: tuple[float, float]
    gain: float  # predicted minus the curve's value at the largest run's labels
    gain_band: tuple[float, float]

    @property
    def cost_per_point(self) -> float | None:
        """Cost per percentage point of the metric gained; None when the curve predicts no gain."""
        return self.cost / (100 * self.gain) if self.gain > 0 else None

    def as_dict(self) -> dict[str, Any]:
        return {"multiple": self.multiple, "labelled": self.labelled, "per_class": self.per_class, "added": self.added, "cost": self.cost,
                "predicted": self.predicted, "band": list(self.band), "gain": self.gain, "gain_band": list(self.gain_band),
                "cost_per_point": self.cost_per_point}


def price_labels(curve: Curve, labelled: float, per_class: float, price_per_example: float,
                 multiples: Sequence[int] = MULTIPLES) -> list[LabelPrice]:
    """2x and 4x the labels of the largest run (``labelled`` examples, ``per_class`` per class) by ``curve``, fitted
    on labels per class. The gain is measured from the curve at today's labels, not from one run's value, so that
    the seed noise of the largest run does not enter it twice; its band comes from the same bootstrap refits."""
    out = []
    for m in multiples:
        x = m * per_class
        lo, hi = curve.predict_band(x)
        if len(curve.samples):
            _, b, c = curve.samples.T
            gains = b * x ** (-c) - b * per_class ** (-c)
            glo, ghi = np.percentile(gains, [50 * (1 - curve.level), 50 * (1 + curve.level)])
        else:
            glo = ghi = float(curve.predict(x) - curve.predict(per_class))
        added = (m - 1) * labelled
        out.append(LabelPrice(m, m * labelled, x, added, added * price_per_example, float(curve.predict(x)), (float(lo), float(hi)),
                              float(curve.predict(x) - curve.predict(per_class)), (float(glo), float(ghi))))
    return out


def fit_label_curves(points: Sequence[Point], metric: str, *, n_bootstrap: int = 100, seed: int = 0) -> dict[str, dict[str, Any]]:
    """One saturating curve per contender (the model, each baseline) of ``metric`` against labels per class.

    Returns {contender: {"points": [[per_class, value], ...], "curve": Curve} or {..., "skipped": why}}; a
    contender whose runs do not fit (fewer than 3 label counts) is skipped with the reason, never dropped silently.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, pairs in contender_values(points, metric).items():
        x, y = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
        entry: dict[str, Any] = {"points": [[float(a), float(b)] for a, b in pairs]}
        try:
            entry["curve"] = fit_curve(x, y, n_bootstrap=n_bootstrap, seed=seed)
        except GuimoError as e:
            entry["skipped"] = str(e)
        out[name] = entry
    return out


def means_by_labels(pairs: Sequence[Sequence[float]]) -> dict[float, float]:
    """Mean metric over seeds at each labels-per-class value (runs within 2% of one another are one value:
    a stratified share rounds per class, so the same fraction can give 9.9 or 10.0 per class)."""
    groups: list[tuple[float, list[float]]] = []
    for x, y in sorted((float(a), float(b)) for a, b in pairs):
        if groups and x <= groups[-1][0] * 1.02:
            groups[-1][1].append(y)
        else:
            groups.append((x, [y]))
    return {x: float(np.mean(v)) for x, v in groups}


def label_section(points: Sequence[Point], result: dict[str, Any], plots_dir: Path, *, prices_path: str | Path | None = None,
                  n_bootstrap: int = 100, seed: int = 0, noise_sims: int = 0) -> str:
    """The report's section for a classifier's sweep: fills ``result`` ("curve" and "curve_check" of the model's
    headline metric on labels per class, which the verdict reads, and "labels": every contender's curves, the
    prices of 2x and 4x the labels) and returns its Markdown."""
    from guimo.scale import plots
    from guimo.scale.curves import SIZE_TOLERANCE, check_curve
    from guimo.scale.prices import load_prices

    prices = load_prices(prices_path)
    metric = result["metric"]
    metrics = [metric] + [k for k in [macro_f1_key(points)] if k and k != metric]
    fits = {m: fit_label_curves(points, m, n_bootstrap=n_bootstrap, seed=seed) for m in metrics}
    model = fits[metric][MODEL]
    if "skipped" in model:
        raise GuimoError(f"{result['root']}: the {metric} learning curve of labels cannot be fitted: {model['skipped']}")
    curve: Curve = model["curve"]
    x = np.array([p[0] for p in model["points"]])
    y = np.array([p[1] for p in model["points"]])
    top = [p for p in points if p.per_class >= x.max() * (1 - SIZE_TOLERANCE)]
    labelled = float(np.mean([p.unique for p in top]))
    classes = int(round(np.mean([p.classes for p in top])))
    per_class = labelled / classes
    price = prices.labels.per_example
    cite = f"{prices.cite('labels.per_example')} ({prices.source})"
    result["curve_weights"] = "none"
    result["curve"] = curve.as_dict()
    result["labels"] = {
        "axis": "labelled training examples per class", "classes": classes, "labelled": labelled, "per_class": per_class,
        "price_per_example": price, "currency": prices.currency, "price_source": cite,
        "curves": {m: {name: _entry_dict(e) for name, e in by.items()} for m, by in fits.items()},
        "prices": {name: [lp.as_dict() for lp in price_labels(e["curve"], labelled, per_class, price)]
                   for name, e in fits[metric].items() if "curve" in e},
    }
    md = [f"## {metric} against labelled examples per class\n",
          f"{len(points)} runs on stratified shares of the labelled training data ({classes} classes; the largest run: {labelled:,.0f} labelled "
          f"examples, {per_class:,.1f} per class). Each contender is fitted with err(n) = alpha n^(-beta) + gamma, i.e. "
          f"{metric}(n) = a + b n^(-c) with a = 1 - gamma the level the labels saturate at (n: labelled examples per class; "
          f"measurement: each run's test {metric} in metrics.json, the baselines' scored on the same training share; "
          f"{n_bootstrap} bootstrap refits for the 95% bands).\n"]
    for m, by in fits.items():
        md += _values_table(m, by)
    md += _price_table(metric, result["labels"], cite)
    if curve.at_bound:
        md.append("**The model's exponent is at the end of the searched range: no saturation is visible, so a is not a ceiling and the "
                  "2x / 4x predictions extrapolate a shape the runs do not pin down.**\n")
    chk = None
    tolerance = _half_tolerance(points, x.max())
    if len(np.unique(x[x <= 0.5 * x.max() * (1 + tolerance)])) >= 3:
        chk = check_curve(x, y, 0.5, n_bootstrap=n_bootstrap, noise_sims=noise_sims, tolerance=tolerance)
        result["curve_check"] = chk.as_dict()
        md.append(f"Check: the curve fitted on the {chk.n_fitted} runs with <= 50% of the labels predicts the full-label {metric} "
                  f"{chk.predicted:.4f} vs observed {chk.actual:.4f} ({chk.relative_error:.1%} relative error"
                  + (f"; 95% prediction interval [{chk.interval[0]:.4f}, {chk.interval[1]:.4f}] from the seed replicates" if chk.interval else
                     "; no label count has two seeds, so a run's own noise is unmeasured") + ").\n")
    else:
        md.append("Check: not run (it needs 3 label counts at <= 50% of the labels, e.g. fractions 0.1, 0.25, 0.5, 1).\n")
    files = [plots.learning_curve(curve, x, y, plots_dir / "learning_curve.png", metric_name=metric, x_label="labelled examples per class")]
    for m, by in fits.items():
        drawn = [(name, e["curve"], [p[0] for p in e["points"]], [p[1] for p in e["points"]]) for name, e in by.items() if "curve" in e]
        files.append(plots.learning_curves(drawn, plots_dir / f"labels_{m}.png", metric_name=m, x_label="labelled examples per class",
                                           title=f"{m} vs labels per class: the model and its baselines"))
    result["plots"] = [str(f) for f in files]
    md += [f"![{f.stem}](plots/{f.name})" for f in files]
    return "\n".join(md) + "\n\n"


def _half_tolerance(points: Sequence[Point], top: float) -> float:
    """The slack on the half-data cut that keeps every run planned at <= 50% of the labels (``data.fraction``) inside it:
    a stratified share rounds each class's count (half of 17 examples is 8 or 9), so a run at fraction 0.5 can hold
    a few percent more than half of the full run's labels per class. Runs without a recorded fraction get the curve's
    usual 2%."""
    from guimo.scale.curves import SIZE_TOLERANCE

    halves = [p.per_class for p in points if p.fraction is not None and p.fraction <= 0.5]
    above = [p.per_class for p in points if p.fraction is not None and p.fraction > 0.5]
    if not halves:
        return SIZE_TOLERANCE
    tolerance = max(SIZE_TOLERANCE, max(halves) / (0.5 * top) - 1 + 1e-9)
    return tolerance if all(x > 0.5 * top * (1 + tolerance) for x in above) else SIZE_TOLERANCE


def _entry_dict(entry: dict[str, Any]) -> dict[str, Any]:
    out = {"points": entry["points"]}
    if "curve" in entry:
        out["curve"] = entry["curve"].as_dict()
    else:
        out["skipped"] = entry["skipped"]
    return out


def _values_table(metric: str, by: dict[str, dict[str, Any]]) -> list[str]:
    """Mean metric per label count for every contender, then each one's curve and its 2x / 4x values."""
    xs = sorted(means_by_labels([p for e in by.values() for p in e["points"]]))
    md = [f"### {metric}: measured (mean over seeds) and fitted\n",
          "| contender | " + " | ".join(f"{x:,.1f}/class" for x in xs) + " | saturates at a | c | 2x labels [95% band] | 4x labels [95% band] |",
          "| --- | " + " | ".join("---:" for _ in xs) + " | ---: | ---: | --- | --- |"]
    for name, e in by.items():
        means = means_by_labels(e["points"])
        cells = [next((f"{v:.4f}" for k, v in means.items() if abs(k - x) <= 0.02 * x), "—") for x in xs]
        if "skipped" in e:
            md.append(f"| {name} | " + " | ".join(cells) + f" | skipped: {e['skipped']} | | | |")
            continue
        c: Curve = e["curve"]
        pred = c.as_dict()
        band = lambda m: f"{pred[f'predicted_{m}x']['value']:.4f} [{pred[f'predicted_{m}x']['band'][0]:.4f}, {pred[f'predicted_{m}x']['band'][1]:.4f}]"  # noqa: E731
        md.append(f"| {name} | " + " | ".join(cells) + f" | {c.a:.4f}{' (c at a bound)' if c.at_bound else ''} | {c.c:.3g} | {band(2)} | {band(4)} |")
    return md + [""]


def _price_table(metric: str, labels: dict[str, Any], cite: str) -> list[str]:
    cur = labels["currency"]
    md = [f"### What 2x and 4x the labels would buy, priced\n",
          f"Assumption: {cite}. The gain is the curve's value at more labels minus its value at today's "
          f"{labels['per_class']:,.1f} per class; a band that reaches 0 means the runs cannot tell the gain from none.\n",
          f"| contender | labels | per class | to label | cost ({cur}) | predicted {metric} [95% band] | gain [95% band] | cost per point ({cur}) |",
          "| --- | ---: | ---: | ---: | ---: | --- | --- | ---: |"]
    for name, rows in labels["prices"].items():
        for r in rows:
            per_point = f"{r['cost_per_point']:,.2f}" if r["cost_per_point"] is not None else "no gain"
            md.append(f"| {name} | {r['multiple']}x = {r['labelled']:,.0f} | {r['per_class']:,.1f} | {r['added']:,.0f} | {r['cost']:,.2f} | "
                      f"{r['predicted']:.4f} [{r['band'][0]:.4f}, {r['band'][1]:.4f}] | {100 * r['gain']:+.2f} pt "
                      f"[{100 * r['gain_band'][0]:+.2f}, {100 * r['gain_band'][1]:+.2f}] | {per_point} |")
    return md + [""]
