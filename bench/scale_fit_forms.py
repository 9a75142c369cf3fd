"""Exploratory, post hoc: the held-out check of bench/scale_lm.py with Kaplan et al. (2020)'s joint form
L(N, D) = E + [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D in place of the additive Chinchilla law.

    python bench/scale_fit_forms.py runs/bench-scale-stdlib-v2 [more sweep folders]   # ~30 s per folder

Why: on the recorded sweeps the larger model's advantage grows with D (an N x D interaction), which the
additive form cannot express and the joint form can. These folders were seen before this script was
written, so its numbers suggest a candidate; they do not test it. Same loss (summed Huber, delta 1e-2,
on log residuals), L-BFGS from a grid; no bootstrap, no repeated-data correction.
"""
from __future__ import annotations

import itertools
import sys

import numpy as np
from scipy.optimize import minimize
from scipy.special import huber, logsumexp

from guimo.scale.points import collect_points

DELTA = 1e-2  # the same Huber threshold as guimo.scale.fit.HUBER_DELTA
STARTS = list(itertools.product([0.1, 0.3, 0.6], [0.1, 0.3, 0.6], [5, 10, 15], [5, 10, 15], [-1, 0, 1]))  # alpha_N, alpha_D, log N_c, log D_c, log E
BOUNDS = [(1e-3, 3), (1e-3, 3), (-5, 40), (-5, 40), (-10, 2)]


def log_loss(x: np.ndarray, logn: np.ndarray, logd: np.ndarray) -> np.ndarray:
    """log L for L = E + [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D, computed in log space."""
    an, ad, lnc, ldc, e = x
    inner = logsumexp([an / ad * (lnc - logn), ldc - logd], axis=0)
    return np.logaddexp(e, ad * inner)


def fit(logn: np.ndarray, logd: np.ndarray, logl: np.ndarray) -> np.ndarray:
    def objective(x):
        return huber(DELTA, log_loss(x, logn, logd) - logl).sum()

    results = [minimize(objective, list(start), method="L-BFGS-B", bounds=BOUNDS) for start in STARTS]
    return min(results, key=lambda r: r.fun).x


def main(folders: list[str]) -> None:
    for folder in folders:
        pts, _ = collect_points(folder)
        n, d, loss = (np.array([getattr(p, k) for p in pts], float) for k in ("n", "d", "value"))
        held = n == n.max()
        x = fit(np.log(n[~held]), np.log(d[~held]), np.log(loss[~held]))
        pred = np.exp(log_loss(x, np.log(n[held]), np.log(d[held])))
        err = np.abs(pred - loss[held]) / loss[held]
        full = d[held] >= d[held].max() * (1 - 1e-9)
        print(f"{folder}: Kaplan joint form, held-out largest N: max {err.max():.2%}, mean {err.mean():.2%}, at full data {err[full].max():.2%}; "
              f"alpha_N {x[0]:.3f}, alpha_D {x[1]:.3f}, E {np.exp(x[4]):.3f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
