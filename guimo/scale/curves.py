"""Learning curves of a business metric: m(n) = a + b n^(-c), a saturating power law in data size n.

The same form serves a metric that rises with data (NDCG@10: b < 0, it saturates at a from below)
and one that falls (a loss: b > 0). For a fixed exponent c the model is linear in (a, b), so the
fit scans c on a log grid with exact linear least squares at each value and then polishes c with
a bounded 1-D search: deterministic, no initial guess to get wrong. Bootstrap bands come from
refitting resampled points.

Points may carry weights: a metric averaged over k test cases has a variance ~ 1/k, so weighting
each point by its number of test cases is the inverse-variance (weighted least squares) fit. It
matters for learning curves, where the small-data runs are also scored on fewer users (a
marketplace of 750 users has 750 test cases, one of 12,000 has 12,000), so their metrics are the
noisiest; unweighted, each of them pulls the curve as hard as a large-data point.

The half-data check also gives a prediction interval when some data size has several seeds: the
bootstrap band (where the *expected* metric lies) widened by one run's noise, measured between
those seeds. With weights the noise is taken to shrink as 1/cases (variance per test case pooled
over the replicates), so the small-data seeds do not inflate the interval at the full data.
It also gives a noise floor, as the L(N, D) check does (guimo.scale.extrapolate): the curve fitted
to all points taken as the exact truth, every run redrawn with that noise, the half-data check
redone; the observed error's percentile among those says whether a miss is noise or the shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from guimo.errors import GuimoError


C_MIN, C_MAX = 1e-3, 5.0  # the exponents searched; an optimum at either end is no saturating power law


@dataclass
class Curve:
    a: float  # the asymptote: the metric with unlimited data
    b: float
    c: float  # the exponent; larger means faster saturation
    n_points: int
    max_n: float  # the largest data size fitted (2x / 4x predictions are relative to it)
    samples: np.ndarray = field(repr=False, default_factory=lambda: np.empty((0, 3)))  # bootstrap (a, b, c)
    level: float = 0.95

    def predict(self, n):
        return self.a + self.b * np.asarray(n, dtype=float) ** (-self.c)

    def predict_band(self, n) -> tuple[np.ndarray, np.ndarray]:
        if len(self.samples) == 0:
            p = self.predict(n)
            return p, p
        n = np.asarray(n, dtype=float)
        preds = np.stack([a + b * n ** (-c) for a, b, c in self.samples])
        q = np.percentile(preds, [50 * (1 - self.level), 50 * (1 + self.level)], axis=0)
        return q[0], q[1]

    @property
    def at_bound(self) -> bool:
        """The exponent sits at an end of the searched range: at C_MIN the points grow like log n with no
        saturation in sight (a and b are then huge and cancel), at C_MAX they are flat; either way the
        2x/4x predictions extrapolate a shape the data did not pin down."""
        return self.c <= C_MIN * 1.01 or self.c >= C_MAX * 0.99

    def as_dict(self) -> dict:
        out = {"law": "m(n) = a + b * n^(-c)", "a": self.a, "b": self.b, "c": self.c, "n_points": self.n_points, "max_n": self.max_n,
               "c_at_search_bound": self.at_bound}
        for mult in (2, 4):
            lo, hi = self.predict_band(mult * self.max_n)
            out[f"predicted_{mult}x"] = {"n": mult * self.max_n, "value": float(self.predict(mult * self.max_n)), "band": [float(lo), float(hi)]}
        return out


def fit_curve(n: Sequence[float], metric: Sequence[float], *, weights: Sequence[float] | None = None, n_bootstrap: int = 200,
              level: float = 0.95, seed: int = 0) -> Curve:
    """Fit m(n) = a + b n^(-c) to (data size, metric) points; needs >= 3 distinct sizes.

    ``weights`` (optional, e.g. each point's number of test cases) make it a weighted least-squares
    fit; bootstrap resamples carry their points' weights.
    """
    x, y = np.asarray(n, dtype=float).ravel(), np.asarray(metric, dtype=float).ravel()
    w = _weights(weights, len(x))
    if len(x) != len(y):
        raise GuimoError(f"learning curve: {len(x)} data sizes but {len(y)} metric values")
    if len(x) == 0:
        raise GuimoError("learning curve: no points (no finished runs)")
    if not (np.all(np.isfinite(x)) and np.all(x > 0) and np.all(np.isfinite(y))):
        raise GuimoError("learning curve: data sizes must be positive and metrics finite")
    if len(np.unique(x)) < 3:
        raise GuimoError(f"learning curve: a saturating power law has 3 parameters and needs >= 3 distinct data sizes; got {len(np.unique(x))}")
    a, b, c = _solve(x, y, w)
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n_bootstrap):
        ix = rng.integers(0, len(x), len(x))
        if len(np.unique(x[ix])) >= 3:
            samples.append(_solve(x[ix], y[ix], w[ix]))
    return Curve(a, b, c, len(x), float(x.max()), np.array(samples).reshape(-1, 3), level)


@dataclass(frozen=True)
class CurveCheck:
    """Fit on the points with n <= fraction * max n, predict the metric at max n."""

    fraction: float
    n_fitted: int
    target_n: float
    actual: float
    predicted: float
    band: tuple[float, float]
    interval: tuple[float, float] | None = None  # 95% prediction interval of the observed value; None without seed replicates
    run_sd: float | None = None  # sd of the observed value (the mean of the runs at target_n), from the fitted runs' seed replicates
    noise_floor: dict | None = None  # the check's relative error under noise alone (see _noise_floor); None without replicates

    @property
    def relative_error(self) -> float:
        return abs(self.predicted - self.actual) / abs(self.actual)

    def as_dict(self) -> dict:
        return {"fraction": self.fraction, "n_fitted": self.n_fitted, "target_n": self.target_n, "actual": self.actual,
                "predicted": self.predicted, "band": list(self.band), "relative_error": self.relative_error,
                "inside_band": self.band[0] <= self.actual <= self.band[1],
                "interval": list(self.interval) if self.interval else None, "run_sd": self.run_sd,
                "inside_interval": self.interval[0] <= self.actual <= self.interval[1] if self.interval else None,
                "noise_floor": self.noise_floor}


# A run planned at half the data can measure a little more than half: the marketplace draws each
# user's interactions at random, so 6,000 of 12,000 users held 50.3% of the training interactions.
# Sizes within 2% of the cut count as inside it.
SIZE_TOLERANCE = 0.02


def check_curve(n: Sequence[float], metric: Sequence[float], fraction: float = 0.5, *, weights: Sequence[float] | None = None,
                n_bootstrap: int = 200, tolerance: float = SIZE_TOLERANCE, noise_sims: int = 0) -> CurveCheck:
    """Predict the full-data metric (the mean over its runs) from the points at <= ``fraction`` of the data
    (``tolerance``: relative slack on that cut, for data sizes that are only nominally a fraction);
    ``noise_sims`` > 0 also simulates the check's noise floor when seeds are replicated."""
    x, y = np.asarray(n, dtype=float), np.asarray(metric, dtype=float)
    w = _weights(weights, len(x))
    top = x.max()
    keep = x <= fraction * top * (1 + tolerance)
    curve = fit_curve(x[keep], y[keep], weights=w[keep], n_bootstrap=n_bootstrap)
    actual = float(y[x == top].mean())
    lo, hi = curve.predict_band(top)
    # the noise is measured on the fitted runs only; the observed value is the mean of the runs at the top
    run_sd = _run_sd(x[keep], y[keep], None if weights is None else w[keep], float(w[x == top].mean()) if weights is not None else None)
    interval = None
    if run_sd is not None:
        run_sd /= math.sqrt(int((x == top).sum()))
        rng = np.random.default_rng(1)
        means = np.array([a + b * top ** (-c) for a, b, c in curve.samples]) if len(curve.samples) else np.array([curve.predict(top)])
        draws = (means[:, None] + run_sd * rng.standard_normal((len(means), 50))).ravel()
        q = np.percentile(draws, [50 * (1 - curve.level), 50 * (1 + curve.level)])
        interval = (float(q[0]), float(q[1]))
    predicted = float(curve.predict(top))
    floor = None
    if noise_sims > 0 and run_sd is not None:
        floor = _noise_floor(x, y, w if weights is not None else None, keep, noise_sims, abs(predicted - actual) / abs(actual))
    return CurveCheck(fraction, int(keep.sum()), float(top), actual, predicted, (float(lo), float(hi)), interval, run_sd, floor)


def _noise_floor(x: np.ndarray, y: np.ndarray, w: np.ndarray | None, keep: np.ndarray, sims: int, observed: float, seed: int = 0) -> dict | None:
    """The half-data check's relative error when the curve fitted to all points is the exact truth and every
    run is redrawn with its own noise: one run's sd pooled over all replicated sizes (per test case when
    weighted, so a run's sd is that over sqrt(its cases)). Returns median, p90 and the observed error's
    percentile among the simulations; None when the all-points fit itself fails."""
    try:
        truth = fit_curve(x, y, weights=w, n_bootstrap=0)
    except GuimoError:
        return None
    noise = _run_sd(x, y, w, 1.0 if w is not None else None)
    sd = noise / np.sqrt(w) if w is not None else np.full(len(x), noise)
    top = x == x.max()
    mean, rng, errs = truth.predict(x), np.random.default_rng(seed + 2), []
    for _ in range(sims):
        ys = mean + sd * rng.standard_normal(len(x))
        try:
            pred = float(fit_curve(x[keep], ys[keep], weights=None if w is None else w[keep], n_bootstrap=0).predict(x.max()))
        except GuimoError:
            continue  # a redraw too flat to fit; rare, and it only thins the sample
        actual = float(ys[top].mean())
        errs.append(abs(pred - actual) / abs(actual))
    if not errs:
        return None
    e = np.array(errs)
    return {"sims": len(e), "noise_per_run": float(np.median(sd[top])), "median": float(np.median(e)), "p90": float(np.percentile(e, 90)),
            "observed_percentile": float((e < observed).mean() * 100)}


def _run_sd(x: np.ndarray, y: np.ndarray, w: np.ndarray | None, target_w: float | None) -> float | None:
    """One run's sd at the target, pooled over data sizes with several runs; None without replicates.

    Unweighted: the pooled sd. Weighted by test cases: variance per case, sum w (y - mean)^2 / dof,
    divided by the target's cases (the mean of a metric over k cases has variance ~ 1/k).
    """
    ss, dof = 0.0, 0
    for v in np.unique(x):
        sel = x == v
        if sel.sum() < 2:
            continue
        r = y[sel] - y[sel].mean()
        ss += float((r * r * (w[sel] if w is not None else 1.0)).sum())
        dof += int(sel.sum()) - 1
    if dof == 0:
        return None
    var = ss / dof
    return float(np.sqrt(var / target_w if w is not None and target_w else var))


def _weights(weights, size: int) -> np.ndarray:
    if weights is None:
        return np.ones(size)
    w = np.asarray(weights, dtype=float).ravel()
    if len(w) != size:
        raise GuimoError(f"learning curve: {size} points but {len(w)} weights")
    if not (np.all(np.isfinite(w)) and np.all(w > 0)):
        raise GuimoError("learning curve: weights must be positive and finite")
    return w


def _solve(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> tuple[float, float, float]:
    from scipy.optimize import minimize_scalar

    scale = x.max()  # work with n / max n so n^(-c) stays O(1)
    xs = x / scale
    sw = np.sqrt(w / w.mean()) if w is not None else np.ones_like(x)  # sqrt weights: lstsq minimises sum w r^2

    def sse(c: float) -> tuple[float, float, float]:
        basis = np.stack([np.ones_like(xs), xs ** (-c)], axis=1)
        coef, *_ = np.linalg.lstsq(basis * sw[:, None], y * sw, rcond=None)
        resid = (y - basis @ coef) * sw
        return float(resid @ resid), float(coef[0]), float(coef[1])

    grid = np.geomspace(C_MIN, C_MAX, 120)
    errs = [sse(c)[0] for c in grid]
    i = int(np.argmin(errs))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    c = float(minimize_scalar(lambda c: sse(c)[0], bounds=(lo, hi), method="bounded").x) if hi > lo else float(grid[i])
    _, a, b_scaled = sse(c)
    # back to raw n: b_scaled * (n / scale)^(-c) = (b_scaled * scale^c) * n^(-c)
    return a, b_scaled * math.exp(c * math.log(scale)), c
