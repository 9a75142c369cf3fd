"""The extrapolation check, always on: a fit is only worth what it predicts outside its data.

Hold out every point of the largest model (and, separately, of the largest data size), fit
L(N, D) on the rest, predict the held-out losses and report the relative error and whether each
observed loss lies inside the bootstrap band of the prediction.
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
    rows: list[dict] = field(default_factory=list)  # per held-out point: n, d, actual, predicted, band, relative_error, inside_band
    skipped: str | None = None  # why the check could not run (too few points left)
    fit_at_bound: list[str] = field(default_factory=list)  # parameters of the fit (without the held-out points) left at a search bound

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

    def as_dict(self) -> dict:
        return {
            "axis": self.axis, "held_out": self.held_out, "largest_fitted": self.largest_fitted, "ratio": self.ratio,
            "mean_relative_error": self.mean_relative_error, "max_relative_error": self.max_relative_error,
            "all_inside_band": self.all_inside, "rows": self.rows, "skipped": self.skipped, "fit_at_bound": self.fit_at_bound,
        }


def holdout_checks(n, d, loss, **fit_kwargs) -> list[Holdout]:
    """Both checks (largest N, largest D); each is skipped with a reason when too few points remain."""
    n, d, loss = (np.asarray(v, dtype=float) for v in (n, d, loss))
    return [_holdout("N", n, n, d, loss, fit_kwargs), _holdout("D", d, n, d, loss, fit_kwargs)]


def _holdout(axis: str, key: np.ndarray, n, d, loss, fit_kwargs) -> Holdout:
    top = key.max() if len(key) else float("nan")
    held = key >= top * (1 - 1e-9)
    rest = ~held
    largest = float(key[rest].max()) if rest.any() else float("nan")
    out = Holdout(axis, float(top), largest)
    try:
        fit = fit_law(n[rest], d[rest], loss[rest], **fit_kwargs)
    except GuimoError as e:
        out.skipped = f"without the largest {axis}: {e}"
        return out
    out.fit_at_bound = fit.at_bound
    pred = fit.predict(n[held], d[held])
    lo, hi = fit.predict_band(n[held], d[held])
    for i, j in enumerate(np.flatnonzero(held)):
        out.rows.append({
            "n": float(n[j]), "d": float(d[j]), "actual": float(loss[j]), "predicted": float(pred[i]),
            "band": [float(lo[i]), float(hi[i])],
            "relative_error": float(abs(pred[i] - loss[j]) / loss[j]),
            "inside_band": bool(lo[i] <= loss[j] <= hi[i]),
        })
    return out
