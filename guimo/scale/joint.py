"""Kaplan et al. (2020)'s joint law, the second form the fitter offers beside Chinchilla's:

    L(N, D) = E + [(N_c / N)^(alpha_N / alpha_D) + D_c / D]^alpha_D

Why a second form: the additive E + A/N^alpha + B/D^beta gives a larger model the same advantage
at every data size. Small-scale sweeps break that: with little data every model is held back by
it, and the larger model's advantage grows with D (an N x D interaction; see the extrapolation
check's noise floor). The joint form has that interaction built in, since the N term is raised to
alpha_D together with the D term. Kaplan et al. fitted it without a floor; E is kept here so both
forms have five parameters, the same objective and the same extrapolation check, and differ only
in shape. The fit itself (summed Huber on log residuals, L-BFGS from the best points of a grid,
bootstrap) is ``guimo.scale.fit.fit_law(..., form="kaplan")``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FORMULA = "L(N, D) = E + [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D"


@dataclass(frozen=True)
class JointLaw:
    """Kaplan's joint L(N, D) with an irreducible floor E (N parameters, D training tokens, L nats per token)."""

    E: float
    N_c: float
    D_c: float
    alpha_N: float
    alpha_D: float

    PARAMS = ("E", "N_c", "D_c", "alpha_N", "alpha_D")
    FORMULA = FORMULA

    def loss(self, n, d):
        n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
        return np.exp(log_loss(self.search_x(), np.log(n), np.log(d)))

    def search_x(self) -> np.ndarray:
        """The parameters in the coordinates the optimizer searches (``BOUNDS`` order)."""
        return np.array([self.alpha_N, self.alpha_D, math.log(self.N_c), math.log(self.D_c), math.log(self.E)])

    def as_dict(self) -> dict[str, float]:
        return {k: float(getattr(self, k)) for k in self.PARAMS}


# x = (alpha_N, alpha_D, log N_c, log D_c, log E); the ranges mirror the additive form's
BOUNDS = [(1e-3, 3.0), (1e-3, 3.0), (-20.0, 100.0), (-20.0, 100.0), (-20.0, 20.0)]
SEARCH_NAMES = ("alpha_N", "alpha_D", "N_c", "D_c", "E")


def to_law(x) -> JointLaw:
    an, ad, lnc, ldc, e = (float(v) for v in x)
    return JointLaw(E=math.exp(e), N_c=math.exp(lnc), D_c=math.exp(ldc), alpha_N=an, alpha_D=ad)


def log_loss(x, logn, logd) -> np.ndarray:
    """log L, computed in log space: N_c/N and D_c/D span many orders of magnitude."""
    an, ad, lnc, ldc, e = x
    return np.logaddexp(e, ad * np.logaddexp(an / ad * (lnc - logn), ldc - logd))


def objective(x, logn, logd, logl, delta):
    """Summed Huber loss of log residuals and its gradient in x (the same objective as the additive form)."""
    an, ad, lnc, ldc, e = x
    u1, u2 = an / ad * (lnc - logn), ldc - logd
    s = np.logaddexp(u1, u2)
    w1 = np.exp(u1 - s)  # share of the N term inside the bracket
    v = ad * s
    pred = np.logaddexp(e, v)
    qe = np.exp(e - pred)  # share of the floor in L
    qv = 1.0 - qe
    r = pred - logl
    absr = np.abs(r)
    value = np.where(absr <= delta, 0.5 * r * r, delta * (absr - 0.5 * delta)).sum()
    g = np.clip(r, -delta, delta) * qv  # d value / d v, per point
    grad = np.array([
        (g * w1 * (lnc - logn)).sum(),  # alpha_N
        (g * (s - w1 * u1)).sum(),  # alpha_D
        (g * w1 * an).sum(),  # log N_c
        (g * ad * (1.0 - w1)).sum(),  # log D_c
        (np.clip(r, -delta, delta) * qe).sum(),  # log E
    ])
    return float(value), grad


def grid_starts(logn, logd, logl, k: int, delta: float, fixed: dict[int, float] | None = None) -> np.ndarray:
    """The k initialisations with the lowest objective over a grid, evaluated in one vectorised pass (``fixed``: coordinates held)."""
    exps = np.array([0.05, 0.1, 0.2, 0.35, 0.6, 1.0])
    logs = np.arange(0.0, 35.0, 5.0)
    es = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 1.5])
    g = np.stack([v.ravel() for v in np.meshgrid(exps, exps, logs, logs, es, indexing="ij")], axis=1)
    if fixed:  # held coordinates: set them, and drop the rows that became duplicates
        for i, v in fixed.items():
            g[:, i] = v
        g = np.unique(g, axis=0)
    an, ad, lnc, ldc, e = (g[:, i : i + 1] for i in range(5))
    inner = np.logaddexp(an / ad * (lnc - logn[None]), ldc - logd[None])
    absr = np.abs(np.logaddexp(e, ad * inner) - logl[None])
    obj = np.where(absr <= delta, 0.5 * absr**2, delta * (absr - 0.5 * delta)).sum(1)
    return g[np.argsort(obj)[:k]]
