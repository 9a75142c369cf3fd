"""Exploratory, post hoc: the held-out check of bench/scale_lm.py with Kaplan et al. (2020)'s joint form
L(N, D) = E + [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D in place of the additive Chinchilla law.

    python bench/scale_fit_forms.py runs/bench-scale-stdlib-v2 [more sweep folders]   # ~30 s per folder

Why: on the recorded sweeps the larger model's advantage grows with D (an N x D interaction), which the
additive form cannot express and the joint form can. These folders were seen before this script was
written, so its numbers suggest a candidate; they do not test it. Same loss (summed Huber, delta 1e-2,
on log residuals), L-BFGS from a grid; no bootstrap, no repeated-data correction.
"""
import sys, itertools, numpy as np
from scipy.optimize import minimize
from scipy.special import huber, logsumexp
from guimo.scale.points import collect_points

DELTA = 1e-2

def kaplan(x, logn, logd):
    an, ad, lnc, ldc, e = x  # L = E + [(Nc/N)^(an/ad) + Dc/D]^ad
    inner = logsumexp([an / ad * (lnc - logn), ldc - logd], axis=0)
    return np.logaddexp(e, ad * inner)

def fit(logn, logd, logl):
    best = None
    for an, ad, lnc, ldc, e in itertools.product([0.1, 0.3, 0.6], [0.1, 0.3, 0.6], [5, 10, 15], [5, 10, 15], [-1, 0, 1]):
        obj = lambda x: huber(DELTA, kaplan(x, logn, logd) - logl).sum()
        r = minimize(obj, [an, ad, lnc, ldc, e], method="L-BFGS-B", bounds=[(1e-3, 3), (1e-3, 3), (-5, 40), (-5, 40), (-10, 2)])
        if best is None or r.fun < best.fun:
            best = r
    return best.x

for folder in sys.argv[1:]:
    pts, _ = collect_points(folder)
    n = np.array([p.n for p in pts], float); d = np.array([p.d for p in pts], float); l = np.array([p.value for p in pts])
    top = n.max(); fit_mask = n < top
    x = fit(np.log(n[fit_mask]), np.log(d[fit_mask]), np.log(l[fit_mask]))
    pred = np.exp(kaplan(x, np.log(n[~fit_mask]), np.log(d[~fit_mask])))
    err = np.abs(pred - l[~fit_mask]) / l[~fit_mask]
    full = d[~fit_mask] >= d[~fit_mask].max() * (1 - 1e-9)
    print(f"{folder}: Kaplan joint form, held-out largest N: max {err.max():.2%}, mean {err.mean():.2%}, at full data {err[full].max():.2%}; "
          f"alpha_N {x[0]:.3f}, alpha_D {x[1]:.3f}, E {np.exp(x[4]):.3f}", flush=True)
