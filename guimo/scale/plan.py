"""Compute-optimal planning from a fitted L(N, D): how big a model and how many tokens for C FLOPs.

With training compute C = k N D (k = 6: forward + backward over every weight; the attention term
12 L d T per token is left out of the closed form and reported separately by the sweep), minimising
E + A/N^alpha + B/D^beta subject to that constraint gives (Hoffmann et al. 2022, eq. 4)

    N_opt(C) = G (C/k)^(beta/(alpha+beta)),   D_opt(C) = G^-1 (C/k)^(alpha/(alpha+beta)),
    G = (alpha A / (beta B))^(1/(alpha+beta)).

Bands come from applying the same formula to every bootstrap sample of the fit. Kaplan's joint
form (``guimo.scale.joint``) has no closed form here: its optimum along C = k N D is found by a
bounded 1-D search over log N (the loss along the constraint is unimodal: the N term falls and the
D term rises with N).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from guimo.errors import GuimoError
from guimo.scale.fit import BESIROGLU, CHINCHILLA, Law, LawFit
from guimo.scale.joint import JointLaw

FLOPS_PER_PARAM_TOKEN = 6.0
CHINCHILLA_TOKENS_PER_PARAM = 20.0  # the rule of thumb read off Hoffmann et al. 2022, table 3


@dataclass(frozen=True)
class Allocation:
    compute: float  # FLOPs
    n: float  # parameters
    d: float  # training tokens
    loss: float  # predicted nats per token

    @property
    def tokens_per_param(self) -> float:
        return self.d / self.n

    def as_dict(self) -> dict[str, float]:
        return {"compute": self.compute, "n": self.n, "d": self.d, "tokens_per_param": self.tokens_per_param, "loss": self.loss}


def optimal(law: Law | JointLaw, compute: float, k: float = FLOPS_PER_PARAM_TOKEN) -> Allocation:
    """The compute-optimal (N, D) of ``law`` (a ``Law`` or a ``joint.JointLaw``) for ``compute`` FLOPs."""
    if not (compute > 0 and math.isfinite(compute)):
        raise GuimoError(f"compute must be a positive number of FLOPs; got {compute!r}")
    if not isinstance(law, Law):
        return _optimal_numeric(law, compute, k)
    s = law.alpha + law.beta
    g = (law.alpha * law.A / (law.beta * law.B)) ** (1.0 / s)
    n = g * (compute / k) ** (law.beta / s)
    d = (compute / k) / n
    return Allocation(compute, n, d, float(law.loss(n, d)))


def _optimal_numeric(law: JointLaw, compute: float, k: float) -> Allocation:
    from scipy.optimize import minimize_scalar

    total = math.log(compute / k)  # log N + log D
    res = minimize_scalar(lambda ln: float(law.loss(math.exp(ln), math.exp(total - ln))), bounds=(0.0, total), method="bounded",
                          options={"xatol": 1e-6})
    n = math.exp(res.x)
    return Allocation(compute, n, (compute / k) / n, float(res.fun))


@dataclass
class Plan:
    """The fit's allocation with bootstrap bands, beside published allocations for the same C."""

    best: Allocation
    bands: dict[str, tuple[float, float]]  # n, d, tokens_per_param, loss -> (low, high)
    level: float
    besiroglu: Allocation
    chinchilla: Allocation
    chinchilla_20: Allocation  # D = 20 N with C = 6 N D

    def as_dict(self) -> dict:
        return {
            "compute": self.best.compute,
            "fit": self.best.as_dict(),
            "bands": {k: list(v) for k, v in self.bands.items()},
            "level": self.level,
            "besiroglu_2024": self.besiroglu.as_dict(),
            "chinchilla_2022": self.chinchilla.as_dict(),
            "chinchilla_20_tokens_per_param": self.chinchilla_20.as_dict(),
        }


def plan(fit: LawFit | Law | JointLaw, compute: float, k: float = FLOPS_PER_PARAM_TOKEN) -> Plan:
    """N_opt, D_opt, tokens per parameter and loss for ``compute`` FLOPs, with bootstrap bands (``fit``: a LawFit or a bare law)."""
    law = fit.law if isinstance(fit, LawFit) else fit
    best = optimal(law, compute, k)
    level = fit.level if isinstance(fit, LawFit) else 0.95
    bands = {"n": (best.n, best.n), "d": (best.d, best.d), "tokens_per_param": (best.tokens_per_param,) * 2, "loss": (best.loss, best.loss)}
    if isinstance(fit, LawFit) and len(fit.samples):
        with np.errstate(all="ignore"):  # a degenerate bootstrap sample may give inf; it counts as an extreme
            allocs = [optimal(s, compute, k) for s in fit.sample_laws()]
            q = (50 * (1 - level), 50 * (1 + level))
            for key in bands:
                vals = np.nan_to_num(np.array([getattr(a, key) for a in allocs], dtype=float), nan=np.inf)
                lo, hi = np.percentile(vals, q)
                bands[key] = (float(lo), float(hi))
    n20 = math.sqrt(compute / (k * CHINCHILLA_TOKENS_PER_PARAM))
    return Plan(
        best=best,
        bands=bands,
        level=level,
        besiroglu=optimal(BESIROGLU, compute, k),
        chinchilla=optimal(CHINCHILLA, compute, k),
        chinchilla_20=Allocation(compute, n20, CHINCHILLA_TOKENS_PER_PARAM * n20, float("nan")),
    )


def caveat(fit: LawFit | Law | JointLaw) -> str | None:
    """What a plan from this fit cannot be trusted for: the allocation needs the law's shape (the exponents and
    coefficients), the predicted loss also its floor. None when the runs pin every fitted parameter down."""
    free = fit.unidentified if isinstance(fit, LawFit) else []
    if not free:
        return None
    shape = [k for k in free if k != "E"]
    if shape:
        return (f"{', '.join(shape)} not identified by the runs (at a search bound, or the 95% interval reaching one): the allocation "
                "follows from the searched range, not the data, so N_opt and D_opt are unknown beyond what the bands say")
    return "E not identified by the runs: the allocation stands, but the predicted loss's floor comes from the searched range"


def compute_for_loss(law: Law | JointLaw, target: float, k: float = FLOPS_PER_PARAM_TOKEN) -> Allocation:
    """The least compute whose optimal allocation reaches ``target`` loss (bisection in log C)."""
    if target <= law.E:
        raise GuimoError(f"target loss {target:.4g} is at or below the fitted irreducible loss E = {law.E:.4g}: no amount of compute reaches it")
    lo, hi = 0.0, 120.0  # log10 FLOPs; 1e120 is beyond any budget
    if optimal(law, 10**hi, k).loss > target:
        raise GuimoError(f"target loss {target:.4g} needs more than 1e120 FLOPs under this fit")
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if optimal(law, 10**mid, k).loss > target:
            lo = mid
        else:
            hi = mid
    return optimal(law, 10**hi, k)
