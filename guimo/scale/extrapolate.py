"""The extrapolation check, always on: a fit is only worth what it predicts outside its data.

Hold out every point of the largest model (and, separately, of the largest data size), fit
L(N, D) on the rest, predict the held-out losses and report the relative error and whether each
observed loss lies inside the bootstrap band of the prediction.

A single run's loss differs from the law's expected loss by its seed (initialisation and data
order), so two more numbers say how much of a miss noise alone explains:

- the **prediction interval**: the bootstrap band of the expected loss widened by the seed noise
  measured between replicated points (same N and D, different seeds). The bootstrap band alone
  covers the *mean* loss; comparing one noisy run with it calls many honest predictions misses;
- the **noise floor**: treat the fit on *all* points as the exact law, redraw every run's loss
  with the measured seed noise, redo the held-out fit and record its max relative error. Its
  median and 90th percentile are what this grid's extrapolation error would be if the law held
  exactly; an observed error far above them is the law failing, not the seeds.

The **horizon** repeats the model-size check from every cut (fit the sizes up to one, predict each
larger one), so a report says how the error grows with the distance, not only at the largest step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from guimo.errors import GuimoError
from guimo.scale.fit import fit_law


@dataclass
class Holdout:
    axis: str  # "N" (largest model held out) or "D" (largest data size held out)
    held_out: float  # the N or D value that was held out
    largest_fitted: float  # the largest N or D left in the fit
    rows: list[dict] = field(default_factory=list)  # per held-out point: n, d, actual, predicted, band, interval, relative_error, inside_*
    skipped: str | None = None  # why the check could not run (too few points left)
    fit_at_bound: list[str] = field(default_factory=list)  # parameters of the fit (without the held-out points) left at a search bound
    fit_unidentified: list[str] = field(default_factory=list)  # those, and the ones whose bootstrap interval reaches a bound
    noise: float | None = None  # seed noise: pooled sd of log loss between seeds of one (N, D); None without replicates
    noise_floor: dict | None = None  # max relative error if the law held exactly: sims, median, p90, observed_percentile

    @property
    def ratio(self) -> float:
        """How far beyond the fitted range the prediction reaches (4 means a 4x larger model)."""
        return self.held_out / self.largest_fitted if self.largest_fitted else float("nan")

    @property
    def max_relative_error(self) -> float:
        return max((r["relative_error"] for r in self.rows), default=float("nan"))

    @property
    def mean_relative_error(self) -> float:
        return float(np.mean([r["relative_error"] for r in self.rows])) if self.rows else float("nan")

    @property
    def all_inside(self) -> bool:
        return bool(self.rows) and all(r["inside_band"] for r in self.rows)

    @property
    def all_inside_interval(self) -> bool:
        """Every held-out run inside its prediction interval (bootstrap band widened by the seed noise)."""
        return bool(self.rows) and all(r["inside_interval"] for r in self.rows)

    def as_dict(self) -> dict:
        return {
            "axis": self.axis, "held_out": self.held_out, "largest_fitted": self.largest_fitted, "ratio": self.ratio,
            "mean_relative_error": self.mean_relative_error, "max_relative_error": self.max_relative_error,
            "all_inside_band": self.all_inside, "all_inside_interval": self.all_inside_interval, "noise": self.noise,
            "noise_floor": self.noise_floor, "rows": self.rows, "skipped": self.skipped, "fit_at_bound": self.fit_at_bound,
            "fit_unidentified": self.fit_unidentified,
        }


def seed_noise(n, d, loss) -> float | None:
    """Pooled standard deviation of log loss between runs of the same (N, D): the relative noise of one run.

    Pooled over every replicated (N, D) with its own mean removed (degrees of freedom: runs minus
    groups), so differences between sizes never count as noise. None when no (N, D) has two runs.
    """
    groups: dict[tuple[float, float], list[float]] = {}
    for a, b, y in zip(np.asarray(n, float), np.asarray(d, float), np.log(np.asarray(loss, float))):
        groups.setdefault((a, b), []).append(y)
    ss = sum(float(((np.array(v) - np.mean(v)) ** 2).sum()) for v in groups.values())
    dof = sum(len(v) - 1 for v in groups.values())
    return float(np.sqrt(ss / dof)) if dof > 0 else None


def holdout_checks(n, d, loss, *, noise_sims: int = 0, full_law=None, axes: tuple[str, ...] = ("N", "D"), **fit_kwargs) -> list[Holdout]:
    """The checks of ``axes`` (largest N, largest D); each is skipped with a reason when too few points remain.

    ``noise_sims`` > 0 also simulates the noise floor that many times per check (needs replicated
    points for the seed noise, and a fit of all points to serve as the exact law: ``full_law`` when
    the caller has fitted it already with the same settings, else fitted here).
    """
    n, d, loss = (np.asarray(v, dtype=float) for v in (n, d, loss))
    noise = seed_noise(n, d, loss)
    truth = None
    if noise_sims > 0 and noise:
        truth = full_law
        if truth is None:
            try:
                truth = fit_law(n, d, loss, **{**fit_kwargs, "n_bootstrap": 0}).law
            except GuimoError:
                truth = None  # too few points for any fit: each check says why it was skipped
    return [_holdout(axis, key, n, d, loss, fit_kwargs, noise, truth, noise_sims) for axis, key in (("N", n), ("D", d)) if axis in axes]


def _holdout(axis: str, key: np.ndarray, n, d, loss, fit_kwargs, noise, truth, noise_sims) -> Holdout:
    top = key.max() if len(key) else float("nan")
    held = key >= top * (1 - 1e-9)
    rest = ~held
    largest = float(key[rest].max()) if rest.any() else float("nan")
    out = Holdout(axis, float(top), largest, noise=noise)
    try:
        fit = fit_law(n[rest], d[rest], loss[rest], **fit_kwargs)
    except GuimoError as e:
        out.skipped = f"without the largest {axis}: {e}"
        return out
    out.fit_at_bound, out.fit_unidentified = fit.at_bound, fit.unidentified
    pred = fit.predict(n[held], d[held])
    lo, hi = fit.predict_band(n[held], d[held])
    plo, phi = prediction_interval(fit, n[held], d[held], noise or 0.0, fit_kwargs.get("seed", 0))
    for i, j in enumerate(np.flatnonzero(held)):
        out.rows.append({
            "n": float(n[j]), "d": float(d[j]), "actual": float(loss[j]), "predicted": float(pred[i]),
            "band": [float(lo[i]), float(hi[i])], "interval": [float(plo[i]), float(phi[i])],
            "relative_error": float(abs(pred[i] - loss[j]) / loss[j]),
            "inside_band": bool(lo[i] <= loss[j] <= hi[i]),
            "inside_interval": bool(plo[i] <= loss[j] <= phi[i]),
        })
    if truth is not None:
        out.noise_floor = _noise_floor(truth, n, d, held, noise, noise_sims, out.max_relative_error, fit_kwargs)
    return out


def prediction_interval(fit, n, d, noise: float, seed: int, draws: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Percentiles of (a bootstrap law's prediction) x exp(seed noise): where one new run should land."""
    rng = np.random.default_rng(seed + 1)
    laws = fit.sample_laws() or [fit.law]
    logp = np.log(np.stack([law.loss(n, d) for law in laws]))  # (B, m)
    sims = logp[:, None, :] + noise * rng.standard_normal((len(laws), draws, logp.shape[1]))
    q = np.percentile(sims.reshape(-1, logp.shape[1]), [50 * (1 - fit.level), 50 * (1 + fit.level)], axis=0)
    return np.exp(q[0]), np.exp(q[1])


def _noise_floor(law, n, d, held, noise: float, sims: int, observed: float, fit_kwargs) -> dict:
    """The held-out check's max relative error when ``law`` is exact and runs differ only by seed noise."""
    rng = np.random.default_rng(fit_kwargs.get("seed", 0) + 2)
    kwargs = {**fit_kwargs, "n_bootstrap": 0}  # fitted exactly as the real check is, so the floor is comparable
    expected = law.loss(n, d)
    errors = []
    for _ in range(sims):
        y = expected * np.exp(noise * rng.standard_normal(len(expected)))
        try:
            f = fit_law(n[~held], d[~held], y[~held], **kwargs)
        except GuimoError:
            continue
        errors.append(float(np.max(np.abs(f.predict(n[held], d[held]) - y[held]) / y[held])))
    if not errors:
        return {"sims": 0}
    e = np.array(errors)
    return {"sims": len(e), "noise": noise, "median": float(np.median(e)), "p90": float(np.percentile(e, 90)),
            "observed_percentile": float((e < observed).mean() * 100)}


def horizon(n, d, loss, *, min_sizes: int = 3, **fit_kwargs) -> list[dict]:
    """How the extrapolation error grows with the distance. For each cut, fit the model sizes up to it (at
    least ``min_sizes`` of them) and predict every larger size: the main check is the last cut's row, the
    others show whether a 2x step is safe where a 4x step is not. One row per (cut, predicted size)."""
    n, d, loss = (np.asarray(v, dtype=float) for v in (n, d, loss))
    sizes = np.unique(n)
    top_d = d.max() if len(d) else 0.0
    rows = []
    for i in range(min_sizes - 1, len(sizes) - 1):
        fitted = n <= sizes[i]
        try:
            fit = fit_law(n[fitted], d[fitted], loss[fitted], **{**fit_kwargs, "n_bootstrap": 0})
        except GuimoError:
            continue
        for size in sizes[i + 1:]:
            sel = n == size
            err = np.abs(fit.predict(n[sel], d[sel]) - loss[sel]) / loss[sel]
            full = d[sel] >= top_d * (1 - 1e-9)
            rows.append({"fitted_up_to": float(sizes[i]), "fitted_sizes": i + 1, "n": float(size), "ratio": float(size / sizes[i]),
                         "max_relative_error": float(err.max()), "mean_relative_error": float(err.mean()),
                         "at_full_data": float(err[full].max()) if full.any() else None, "fit_at_bound": fit.at_bound})
    return sorted(rows, key=lambda r: r["ratio"])


def size_gap(n, d, loss) -> dict | None:
    """The additive law's own assumption, read off the fitted runs before any extrapolation.

    In E + A/N^alpha + B/D^beta two models differ by the same loss at every data size. The gap between
    the smallest and the largest fitted model (the largest N is the held-out one and is left out, with
    three sizes or more) at the smallest and the largest D says whether the runs agree: a ratio well
    above 1 means the larger model gains more from data than the law allows, and the held-out model
    then beats its prediction at large D (on every miss of docs/benchmarks/scale.md whose runs remain it grew 1.9-5.6x).
    None when the two sizes were not both trained at both ends of the data axis."""
    n, d, loss = (np.asarray(a, dtype=float) for a in (n, d, loss))
    sizes, datas = np.unique(n), np.unique(d)
    fitted = sizes[:-1] if len(sizes) >= 3 else sizes
    if len(fitted) < 2 or len(datas) < 2:
        return None
    small, large = fitted[0], fitted[-1]

    def gap(at: float) -> float | None:
        a, b = loss[(n == small) & (d == at)], loss[(n == large) & (d == at)]
        return float(a.mean() - b.mean()) if len(a) and len(b) else None

    lo, hi = gap(datas[0]), gap(datas[-1])
    if lo is None or hi is None:
        return None
    return {"n_small": float(small), "n_large": float(large), "d_small": float(datas[0]), "d_large": float(datas[-1]),
            "gap_small_d": lo, "gap_large_d": hi, "ratio": hi / lo if lo > 0 else None}
