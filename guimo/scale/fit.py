"""Scaling-law fits: Chinchilla approach 3, L(N, D) = E + A/N^alpha + B/D^beta, and Kaplan's L(N), L(D).

Why this exact recipe (Hoffmann et al. 2022, appendix D.2; Besiroglu et al. 2024):

- the law is fitted in log space, log L = LSE(a - alpha log N, b - beta log D, e) with
  A = exp(a), B = exp(b), E = exp(e), so every parameter is unconstrained and the residuals are
  relative errors;
- the objective is the Huber loss of the log residuals, **summed** over points. The Besiroglu
  replication traced the original paper's implausibly narrow intervals to an averaged objective
  that made L-BFGS stop before converging; summing keeps the gradient large enough for the
  optimizer's tolerances. The threshold is delta = 1e-2, not Hoffmann et al.'s 1e-3: on our own
  sweep grids (5 sizes of 0.07-6.3M parameters x 4 data sizes, one seed per point, 0.5-2% noise)
  a synthetic study (bench/scale_fit_synthetic.py, docs/benchmarks/scale.md) found the largest model
  predicted slightly better with 1e-2 (pooled median max held-out error 2.36% vs 2.46%). With
  16-20 points and per-point noise near 1%, 1e-3 treats almost every residual as an outlier
  (close to least absolute deviations); 1e-2 is close to least squares. Reports always repeat
  the extrapolation check with the other delta (``ALT_HUBER_DELTA``);
- the fit is non-convex, so L-BFGS starts from the best points of a grid of initialisations
  (the grid's objective is evaluated in one vectorised pass, then L-BFGS refines the best few);
- uncertainty comes from the bootstrap: resample the points with replacement, refit, and take
  percentiles of every parameter (and of every prediction made from the fit). Each refit restarts
  from the grid as well as from the full fit's optimum, so a direction the data leave flat shows as a
  wide interval rather than a collapsed one; a parameter at a bound, or whose interval reaches one, is
  ``unidentified``: its value comes from the searched range, not from the points.

Small corpora are repeated for many epochs, so ``effective_tokens`` offers Muennighoff et al.
(2023)'s correction: repeated tokens are worth less than fresh ones, decaying with R* = 15.4.

``form="kaplan"`` fits Kaplan et al. (2020)'s joint law instead (``guimo.scale.joint``), with the
same objective, search and bootstrap, so the two shapes can be compared on the same points.

``fix_E`` holds the irreducible loss at a value instead of fitting it. On small sweeps E is rarely
identified (the losses do not flatten inside the grid, so the optimizer takes E to its bound of ~0
and the curvature of the law comes from the bound); a floor known from elsewhere, e.g. the entropy
of the text or the loss of a much larger model on the same corpus, then fixes the law's shape
where the data cannot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from guimo.errors import GuimoError
from guimo.scale import joint

PARAMS = ("E", "A", "B", "alpha", "beta")
HUBER_DELTA = 1e-2  # the default threshold on log residuals (chosen by bench/scale_fit_synthetic.py, see the module docstring)
ALT_HUBER_DELTA = 1e-3  # Hoffmann et al.'s value, always reported beside it as a sensitivity row
BOOTSTRAP_RESTARTS = 4  # grid starts per bootstrap refit, besides the full fit's optimum (why: fit_law's loop)
MUENNIGHOFF_R_STAR = 15.4  # R_D*: repetitions after which repeated data is worth 1/e less (Muennighoff et al. 2023, eq. 5)


@dataclass(frozen=True)
class Law:
    """L(N, D) = E + A / N^alpha + B / D^beta (N parameters, D training tokens, L nats per token)."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float

    PARAMS = PARAMS
    FORMULA = "L(N, D) = E + A/N^alpha + B/D^beta"

    def loss(self, n, d):
        n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
        return self.E + self.A / n**self.alpha + self.B / d**self.beta

    def search_x(self) -> np.ndarray:
        """The parameters in the coordinates the optimizer searches (``_BOUNDS`` order)."""
        return np.array([math.log(self.A), math.log(self.B), math.log(self.E), self.alpha, self.beta])

    def as_dict(self) -> dict[str, float]:
        return {k: float(getattr(self, k)) for k in PARAMS}


# Published fits, for comparison in plans and reports (nats per token on MassiveText).
CHINCHILLA = Law(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)  # Hoffmann et al. 2022, approach 3
BESIROGLU = Law(E=1.82, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658)  # Besiroglu et al. 2024 refit


@dataclass
class LawFit:
    """A fitted law (``Law``, or ``joint.JointLaw`` for form "kaplan"), its objective and its bootstrap
    samples (rows in the law's PARAMS order)."""

    law: Law | joint.JointLaw
    objective: float
    n_points: int
    samples: np.ndarray = field(repr=False)  # (n_boot, 5); empty when the bootstrap was off
    level: float = 0.95
    data_correction: str | None = None  # "muennighoff" when D was replaced by effective tokens
    delta: float = HUBER_DELTA  # the Huber threshold the fit used (on log residuals)
    fixed_E: float | None = None  # the irreducible loss the fit was given instead of fitting it
    restarts: int = 0  # grid starts each bootstrap refit tried besides the full fit's optimum

    def interval(self, name: str) -> tuple[float, float]:
        """Central bootstrap interval of one parameter; the point estimate twice without samples."""
        i = self.law.PARAMS.index(name)
        if len(self.samples) == 0:
            v = getattr(self.law, name)
            return (v, v)
        lo, hi = np.percentile(self.samples[:, i], [50 * (1 - self.level), 50 * (1 + self.level)])
        return float(lo), float(hi)

    @property
    def at_bound(self) -> list[str]:
        """Parameters the optimizer left at an end of their searched range (E ~ 0, an exponent at 3 or 0.001):
        the data do not pin them down, so the law's shape there is an artefact of the bounds."""
        form = _FORMS[self.form]
        return [k for k, v, b in zip(form.names, self.law.search_x(), form.bounds) if self._free(k) and _at_edge(v, *b)]

    @property
    def unidentified(self) -> list[str]:
        """Parameters the data leave free: at a search bound, or with the bootstrap interval reaching one (more
        than (1 - level)/2 of the resamples ended there, so the interval is the search range's, not the data's)."""
        form = _FORMS[self.form]
        out = self.at_bound
        if len(self.samples):
            xs = np.array([law.search_x() for law in self.sample_laws()])
            tail = (1 - self.level) / 2
            out += [k for i, (k, b) in enumerate(zip(form.names, form.bounds))
                    if k not in out and self._free(k) and np.mean([_at_edge(v, *b) for v in xs[:, i]]) > tail]
        return out

    def _free(self, name: str) -> bool:
        return not (name == "E" and self.fixed_E is not None)

    @property
    def form(self) -> str:
        return "chinchilla" if isinstance(self.law, Law) else "kaplan"

    def sample_laws(self) -> list:
        return [type(self.law)(*row) for row in self.samples]

    def predict(self, n, d) -> np.ndarray:
        return self.law.loss(n, d)

    def predict_band(self, n, d) -> tuple[np.ndarray, np.ndarray]:
        """Bootstrap band of the predicted loss at (n, d)."""
        if len(self.samples) == 0:
            p = self.predict(n, d)
            return p, p
        preds = np.stack([law.loss(n, d) for law in self.sample_laws()])
        q = np.percentile(preds, [50 * (1 - self.level), 50 * (1 + self.level)], axis=0)
        return q[0], q[1]

    def as_dict(self) -> dict:
        return {
            "law": self.law.FORMULA,
            "form": self.form,
            "params": self.law.as_dict(),
            "intervals": {k: list(self.interval(k)) for k in self.law.PARAMS},
            "level": self.level,
            "objective": self.objective,
            "n_points": self.n_points,
            "n_bootstrap": int(len(self.samples)),
            "data_correction": self.data_correction,
            "huber_delta": self.delta,
            "fixed_E": self.fixed_E,
            "at_bound": self.at_bound,
            "unidentified": self.unidentified,
            "bootstrap_restarts": self.restarts,
        }


def effective_tokens(tokens, unique, r_star: float = MUENNIGHOFF_R_STAR) -> np.ndarray:
    """Muennighoff's effective data D' = U + U R* (1 - exp(-R / R*)), R = D/U - 1 repeats.

    ``tokens`` D is what the model saw, ``unique`` U the distinct training tokens. One epoch or
    less gives D' = D; infinitely many epochs saturate at U (1 + R*).
    """
    d, u = np.asarray(tokens, dtype=float), np.asarray(unique, dtype=float)
    if np.any(u <= 0):
        raise GuimoError("unique token counts must be positive for the repeated-data correction")
    r = np.maximum(d / u - 1.0, 0.0)
    return np.where(d <= u, d, u + u * r_star * (1.0 - np.exp(-r / r_star)))


def fit_law(
    n: Sequence[float],
    d: Sequence[float],
    loss: Sequence[float],
    *,
    n_bootstrap: int = 100,
    level: float = 0.95,
    seed: int = 0,
    starts: int = 20,
    data_correction: str | None = None,
    delta: float = HUBER_DELTA,
    form: str = "chinchilla",
    fix_E: float | None = None,
    restarts: int = BOOTSTRAP_RESTARTS,
) -> LawFit:
    """Fit L(N, D) to points by summed Huber loss on log residuals; bootstrap every parameter.

    ``n`` parameters, ``d`` training tokens (already corrected if ``data_correction`` names the
    correction used), ``loss`` nats per token. Needs at least 5 points over >= 2 model sizes and
    >= 2 data sizes: fewer cannot pin down five parameters. ``form`` is "chinchilla" (the additive
    law above) or "kaplan" (``guimo.scale.joint``). ``fix_E`` holds E at that value (0 allowed: a pure
    power law) and fits the other four. Each bootstrap refit starts from the full fit's optimum and from
    the resample's ``restarts`` best grid points.
    """
    logn, logd, logl = _check_points(n, d, loss)
    if not delta > 0:
        raise GuimoError(f"the Huber delta must be positive; got {delta}")
    if form not in _FORMS:
        raise GuimoError(f"unknown law form '{form}'; choose {' or '.join(_FORMS)}")
    f = _FORMS[form] if fix_E is None else _FORMS[form].holding("E", _log_floor(fix_E, logl))
    x, obj = _refine(f, f.starts(logn, logd, logl, starts, delta), logn, logd, logl, delta)
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n_bootstrap):
        # The full fit's optimum alone is not enough: where the data leave a direction flat (a floor E far
        # below the losses, a beta over a narrow D range) L-BFGS stays where it starts, and the interval
        # collapses onto the estimate (zh-poetry-repeat's E: [0.01086, 0.01087] warm-started, [0.006, 2.8]
        # with 4 grid restarts). Restarting from the resample's own best grid points lets it show the freedom.
        idx = rng.integers(0, len(logl), len(logl))
        starts = np.vstack([x[None], f.starts(logn[idx], logd[idx], logl[idx], restarts, delta)]) if restarts else x[None]
        xb, _ = _refine(f, starts, logn[idx], logd[idx], logl[idx], delta)
        law = f.to_law(xb)
        samples.append([getattr(law, k) for k in law.PARAMS])
    return LawFit(
        law=f.to_law(x),
        objective=obj,
        n_points=len(logl),
        samples=np.array(samples).reshape(-1, 5),
        level=level,
        data_correction=data_correction,
        delta=delta,
        fixed_E=fix_E,
        restarts=restarts if n_bootstrap else 0,
    )


def _at_edge(v: float, lo: float, hi: float) -> bool:
    return v <= lo + 1e-6 * max(1.0, abs(lo)) or v >= hi - 1e-6 * max(1.0, abs(hi))


def _log_floor(value: float, logl: np.ndarray) -> float:
    """log E for a fixed floor; 0 becomes the search's lower bound (E = 2e-9), i.e. no floor."""
    if not (math.isfinite(value) and value >= 0):
        raise GuimoError(f"a fixed E must be a finite number >= 0; got {value}")
    if value >= math.exp(float(logl.min())):
        raise GuimoError(f"a fixed E of {value:g} is not below every observed loss (lowest {math.exp(float(logl.min())):.4g}): "
                         "the law could not reach the data")
    return max(math.log(value), _BOUNDS[2][0]) if value > 0 else _BOUNDS[2][0]


@dataclass(frozen=True)
class PowerLaw:
    """Kaplan's single-variable law y = (x_c / x)^exponent, with bootstrap intervals."""

    variable: str  # "N" or "D"
    x_c: float
    exponent: float
    exponent_interval: tuple[float, float]
    n_points: int

    def predict(self, x):
        return (self.x_c / np.asarray(x, dtype=float)) ** self.exponent

    def as_dict(self) -> dict:
        return {
            "law": f"L({self.variable}) = ({self.variable}_c / {self.variable})^alpha_{self.variable}",
            "x_c": self.x_c,
            "exponent": self.exponent,
            "exponent_interval": list(self.exponent_interval),
            "n_points": self.n_points,
        }


def fit_power_law(x: Sequence[float], y: Sequence[float], variable: str, *, n_bootstrap: int = 200, level: float = 0.95, seed: int = 0) -> PowerLaw:
    """Least squares of log y = k (log x_c - log x): Kaplan et al. (2020) eq. 1.1/1.2."""
    lx, ly = np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float))
    if len(np.unique(lx)) < 2:
        raise GuimoError(f"L({variable}) needs at least 2 distinct {variable} values; got {len(np.unique(lx))}")

    def solve(ix):
        slope, icept = np.polyfit(lx[ix], ly[ix], 1)
        return -slope, icept

    k, c = solve(np.arange(len(lx)))
    rng = np.random.default_rng(seed)
    ks = []
    for _ in range(n_bootstrap):
        ix = rng.integers(0, len(lx), len(lx))
        if len(np.unique(lx[ix])) >= 2:
            ks.append(solve(ix)[0])
    lo, hi = np.percentile(ks, [50 * (1 - level), 50 * (1 + level)]) if ks else (k, k)
    x_c = math.exp(c / k) if k != 0 else float("inf")
    return PowerLaw(variable, x_c, float(k), (float(lo), float(hi)), len(lx))


# -- internals ---------------------------------------------------------------------------------


def _check_points(n, d, loss):
    n, d, loss = (np.asarray(v, dtype=float).ravel() for v in (n, d, loss))
    if not (len(n) == len(d) == len(loss)):
        raise GuimoError(f"points disagree in length: {len(n)} N, {len(d)} D, {len(loss)} losses")
    if len(loss) == 0:
        raise GuimoError("no points to fit: the sweep has no finished runs")
    if len(loss) < 5:
        raise GuimoError(f"only {len(loss)} point(s): L(N, D) has 5 parameters and needs at least 5 points")
    for name, v in (("N", n), ("D", d), ("loss", loss)):
        if not np.all(np.isfinite(v)) or np.any(v <= 0):
            raise GuimoError(f"every {name} must be a positive finite number; got {v[~(np.isfinite(v) & (v > 0))][0]!r}")
    if len(np.unique(n)) < 2 or len(np.unique(d)) < 2:
        raise GuimoError(f"L(N, D) needs >= 2 model sizes and >= 2 data sizes; got {len(np.unique(n))} and {len(np.unique(d))}")
    return np.log(n), np.log(d), np.log(loss)


def _objective(x, logn, logd, logl, delta=HUBER_DELTA):
    """Summed Huber loss of log residuals and its gradient, x = (a, b, e, alpha, beta)."""
    a, b, e, alpha, beta = x
    u = np.stack([a - alpha * logn, b - beta * logd, np.full_like(logn, e)])  # (3, P)
    m = u.max(0)
    w = np.exp(u - m)
    s = w.sum(0)
    r = m + np.log(s) - logl  # (P,) log predicted - log observed
    w /= s  # d LSE / d u
    absr = np.abs(r)
    value = np.where(absr <= delta, 0.5 * r * r, delta * (absr - 0.5 * delta)).sum()
    g = np.clip(r, -delta, delta)
    grad = np.array([(g * w[0]).sum(), (g * w[1]).sum(), (g * w[2]).sum(), -(g * w[0] * logn).sum(), -(g * w[1] * logd).sum()])
    return float(value), grad


def _grid() -> np.ndarray:
    """Initialisations (a, b, e, alpha, beta): a superset of Hoffmann et al.'s grid."""
    alphas = np.array([0.05, 0.2, 0.35, 0.5, 1.0, 1.5])
    es = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 1.5])
    ab = np.arange(0.0, 27.5, 2.5)
    g = np.meshgrid(ab, ab, es, alphas, alphas, indexing="ij")
    return np.stack([v.ravel() for v in g], axis=1)


def _grid_starts(logn, logd, logl, k: int, delta: float = HUBER_DELTA, fixed: dict[int, float] | None = None) -> np.ndarray:
    """The k grid points with the lowest objective, evaluated in one vectorised pass (``fixed``: coordinates held at a value)."""
    g = _fix_columns(_grid(), fixed)
    a, b, e, al, be = (g[:, i : i + 1] for i in range(5))
    u1, u2 = a - al * logn[None], b - be * logd[None]
    m = np.maximum(np.maximum(u1, u2), e)
    pred = m + np.log(np.exp(u1 - m) + np.exp(u2 - m) + np.exp(e - m))
    absr = np.abs(pred - logl[None])
    obj = np.where(absr <= delta, 0.5 * absr**2, delta * (absr - 0.5 * delta)).sum(1)
    return g[np.argsort(obj)[:k]]


def _fix_columns(g: np.ndarray, fixed: dict[int, float] | None) -> np.ndarray:
    """A start grid with some coordinates held (duplicate rows dropped)."""
    if not fixed:
        return g
    g = g.copy()
    for i, v in fixed.items():
        g[:, i] = v
    return np.unique(g, axis=0)


# log A, log B within exp(+-100) and log E within exp(+-20) keep every parameter a finite float;
# exponents above 3 are not a scaling law any more (and make A/N^alpha underflow).
_BOUNDS = [(-20.0, 100.0), (-20.0, 100.0), (-20.0, 20.0), (1e-3, 3.0), (1e-3, 3.0)]


def _refine(form: _Form, starts: np.ndarray, logn, logd, logl, delta: float = HUBER_DELTA) -> tuple[np.ndarray, float]:
    from scipy.optimize import minimize
    from threadpoolctl import threadpool_limits

    best_x, best_f = None, math.inf
    # 5 parameters: BLAS threads only add synchronisation (10-50x slower on a busy machine)
    with threadpool_limits(limits=1, user_api="blas"):
        for x0 in starts:
            res = minimize(form.objective, x0, args=(logn, logd, logl, delta), jac=True, method="L-BFGS-B", bounds=form.bounds,
                           options={"maxiter": 1000, "ftol": 1e-15, "gtol": 1e-12})
            if np.isfinite(res.fun) and res.fun < best_f:
                best_x, best_f = res.x, float(res.fun)
    if best_x is None:
        raise GuimoError("the scaling-law fit did not converge from any initialisation")
    return best_x, best_f


def _to_law(x: np.ndarray) -> Law:
    a, b, e, alpha, beta = (float(v) for v in x)
    return Law(E=math.exp(e), A=math.exp(a), B=math.exp(b), alpha=alpha, beta=beta)


@dataclass(frozen=True)
class _Form:
    """What the search needs of a law's shape: start grid, objective, bounds and the law from a search point."""

    starts: Callable
    objective: Callable
    bounds: list
    names: tuple  # the parameter each search coordinate sets (for at_bound)
    to_law: Callable

    def holding(self, name: str, x: float) -> _Form:
        """The same form with one search coordinate held at ``x``: equal bounds, and a start grid searched with it set."""
        i = self.names.index(name)
        bounds = [(x, x) if j == i else b for j, b in enumerate(self.bounds)]
        return _Form(lambda *a, **k: self.starts(*a, **k, fixed={i: x}), self.objective, bounds, self.names, self.to_law)


_FORMS = {
    "chinchilla": _Form(_grid_starts, _objective, _BOUNDS, ("A", "B", "E", "alpha", "beta"), _to_law),
    "kaplan": _Form(joint.grid_starts, joint.objective, joint.BOUNDS, joint.SEARCH_NAMES, joint.to_law),
}
FORMS = tuple(_FORMS)  # the law shapes fit_law offers
