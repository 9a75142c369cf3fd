"""PNG plots for the scale report (matplotlib, Agg backend: no display needed).

Each function draws one figure from fitted objects and measured points and returns the path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    tmp.replace(path)
    _plt().close(fig)
    return path


def loss_vs_axis(n, d, loss, law, path: Path, *, axis: str, ylabel: str = "test loss (nats/token)", n_label: str = "parameters") -> Path:
    """Loss vs N with one line per D (axis='N'), or loss vs D with one line per N (axis='D')."""
    plt = _plt()
    n, d, loss = (np.asarray(v, dtype=float) for v in (n, d, loss))
    x, group = (n, d) if axis == "N" else (d, n)
    fig, ax = plt.subplots(figsize=(6, 4.2))
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(np.unique(group))))
    for c, g in zip(colors, np.unique(group)):
        sel = group == g
        ax.scatter(x[sel], loss[sel], color=c, s=22, label=f"{'D' if axis == 'N' else 'N'} = {g:.3g}")
        if law is not None:
            xs = np.geomspace(x.min() / 1.5, x.max() * 4, 60)
            ys = law.loss(xs, np.full_like(xs, g)) if axis == "N" else law.loss(np.full_like(xs, g), xs)
            ax.plot(xs, ys, color=c, lw=1)
    ax.set_xscale("log")
    ax.set_xlabel(f"N ({n_label})" if axis == "N" else "training tokens D")
    ax.set_ylabel(ylabel)
    ax.set_title(f"loss vs {axis} (points: runs; lines: fitted L(N, D))")
    ax.legend(fontsize=7)
    return _save(fig, path)


def frontier(law, n, d, path: Path, flops_per_param_token: float = 6.0, n_label: str = "parameters") -> Path:
    """Iso-loss contours of the fitted surface over (N, D) with the compute-optimal frontier."""
    from guimo.scale.plan import optimal

    plt = _plt()
    n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
    ns = np.geomspace(n.min() / 4, n.max() * 64, 80)
    ds = np.geomspace(d.min() / 4, d.max() * 64, 80)
    N, D = np.meshgrid(ns, ds)
    L = law.loss(N, D)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    cs = ax.contour(N, D, L, levels=12, cmap="viridis", linewidths=0.8)
    ax.clabel(cs, fontsize=6, fmt="%.2f")
    cs_c = np.geomspace(flops_per_param_token * ns[0] * ds[0], flops_per_param_token * ns[-1] * ds[-1], 60)
    opt = [optimal(law, c, flops_per_param_token) for c in cs_c]
    ax.plot([a.n for a in opt], [a.d for a in opt], "r-", lw=1.5, label="compute-optimal frontier (C = 6ND)")
    ax.plot(ns, 20 * ns, "k--", lw=1, label="20 tokens / parameter (Chinchilla)")
    ax.scatter(n, d, c="k", s=12, label="runs")
    ax.set(xscale="log", yscale="log", xlim=(ns[0], ns[-1]), ylim=(ds[0], ds[-1]), xlabel=f"N ({n_label})", ylabel="training tokens D",
           title="iso-loss contours of the fit")
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def extrapolation(holdouts, path: Path) -> Path:
    """Predicted vs observed loss of the held-out points, with the bootstrap band and (with seed replicates) the prediction interval."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4.5))
    lo_all, hi_all = [], []
    for h, marker in zip(holdouts, ("o", "s")):
        if h.skipped or not h.rows:
            continue
        act = np.array([r["actual"] for r in h.rows])
        pred = np.array([r["predicted"] for r in h.rows])
        band = np.array([r["band"] for r in h.rows])
        # the full fit's prediction can lie outside its own bootstrap band (the report says "inside band: no")
        yerr = np.clip([pred - band[:, 0], band[:, 1] - pred], 0, None)
        bars = ax.errorbar(act, pred, yerr=yerr, fmt=marker, ms=5, capsize=3,
                           label=f"largest {h.axis} held out ({h.ratio:.1f}x beyond the fit): 95% band")
        if h.noise and all("interval" in r for r in h.rows):  # where one run should land: band widened by the seed noise
            interval = np.array([r["interval"] for r in h.rows])
            ax.errorbar(act, pred, yerr=np.clip([pred - interval[:, 0], interval[:, 1] - pred], 0, None), fmt="none", lw=0.6, capsize=0,
                        color=bars[0].get_color(), alpha=0.5, label=f"largest {h.axis}: 95% prediction interval")
            band = np.vstack([band, interval])
        lo_all += [act.min(), band.min()]
        hi_all += [act.max(), band.max()]
    if lo_all:
        lo, hi = min(lo_all), max(hi_all)
        pad = 0.05 * (hi - lo + 1e-9)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k:", lw=1, label="perfect prediction")
        ax.legend(fontsize=7)
    ax.set(xlabel="observed loss", ylabel="predicted loss (fit without the held-out points)", title="extrapolation check")
    return _save(fig, path)


def learning_curves(curves, path: Path, *, metric_name: str, x_label: str = "training data size", title: str | None = None) -> Path:
    """One fitted learning curve per model size: ``curves`` holds (name, Curve, data sizes, metric values)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(curves)))
    for color, (name, curve, n, metric) in zip(colors, curves):
        n = np.asarray(n, dtype=float)
        xs = np.geomspace(n.min() / 1.5, 4 * n.max(), 80)
        # an asymptote far beyond the measured values (NDCG 1.57) is the fit's extrapolation, not a ceiling in sight
        near = not curve.at_bound and abs(curve.a) <= 2 * np.abs(metric).max()
        ax.plot(xs, curve.predict(xs), lw=1.2, color=color, label=f"{name}: " + (f"saturates at {curve.a:.3g}" if near else "no saturation in sight"))
        ax.scatter(n, metric, color=color, s=18)
    ax.set(xscale="log", xlabel=x_label, ylabel=metric_name, title=title or f"{metric_name} vs data, one curve per model size")
    ax.legend(fontsize=7)
    return _save(fig, path)


def learning_curve(curve, n, metric, path: Path, *, metric_name: str, x_label: str = "training data size") -> Path:
    """A business metric vs data size with the saturating power-law fit, its band and 2x/4x predictions."""
    plt = _plt()
    n, metric = np.asarray(n, dtype=float), np.asarray(metric, dtype=float)
    xs = np.geomspace(n.min() / 1.5, 4 * n.max(), 80)
    lo, hi = curve.predict_band(xs)
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.fill_between(xs, lo, hi, alpha=0.2, label="95% bootstrap band")
    ax.plot(xs, curve.predict(xs), lw=1.2, label=f"fit: {curve.a:.4g} + {curve.b:.3g} n^(-{curve.c:.3g})")
    ax.scatter(n, metric, c="k", s=18, label="runs")
    for mult in (2, 4):
        ax.scatter([mult * curve.max_n], [curve.predict(mult * curve.max_n)], marker="x", s=40, c="r")
    ax.set(xscale="log", xlabel=x_label, ylabel=metric_name, title=f"{metric_name} learning curve (x: predicted at 2x, 4x data)")
    ax.legend(fontsize=7)
    return _save(fig, path)


def serving_cost(rows: Sequence, per_hour: float, path: Path, currency: str = "USD") -> Path:
    """Cost per 1,000 requests vs traffic, batching on and off (one replica at each load point)."""
    from guimo.scale.economics import cost_per_1k

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for batching in (False, True):
        sel = sorted((r for r in rows if r.batching == batching), key=lambda r: r.requests_per_s)
        if sel:
            ax.plot([r.requests_per_s for r in sel], [cost_per_1k(per_hour, r.requests_per_s) for r in sel], "o-",
                    label=f"batching {'on' if batching else 'off'}")
    ax.set(xscale="log", yscale="log", xlabel="served traffic (requests/s, measured)", ylabel=f"{currency} per 1,000 requests",
           title="serving cost vs traffic")
    ax.legend(fontsize=7)
    return _save(fig, path)
