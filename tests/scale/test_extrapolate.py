"""The extrapolation check on a known law: small errors, inside the band; skipped with a reason when it cannot run."""

from __future__ import annotations

import numpy as np

from guimo.scale.extrapolate import holdout_checks
from guimo.scale.fit import Law

TRUE = Law(E=1.8, A=400.0, B=1200.0, alpha=0.34, beta=0.30)


def test_holdout_largest_model_and_data():
    rng = np.random.default_rng(3)
    n, d = np.meshgrid(np.geomspace(1e6, 4e8, 5), np.geomspace(1e8, 1e11, 4))
    n, d = n.ravel(), d.ravel()
    loss = TRUE.loss(n, d) * np.exp(rng.normal(0, 0.002, n.shape))
    by_n, by_d = holdout_checks(n, d, loss, n_bootstrap=20)
    assert by_n.axis == "N" and by_n.skipped is None
    assert len(by_n.rows) == 4 and by_n.ratio > 4
    assert by_n.max_relative_error < 0.02
    assert by_d.skipped is None and len(by_d.rows) == 5
    assert by_d.max_relative_error < 0.02
    for r in by_n.rows:
        assert r["relative_error"] == abs(r["predicted"] - r["actual"]) / r["actual"]


def test_skipped_with_reason_when_too_few_points_remain():
    n = np.array([1e6, 2e6, 4e6, 1e6, 2e6, 4e6])
    d = np.array([1e8, 1e8, 1e8, 2e8, 2e8, 2e8])
    by_n, by_d = holdout_checks(n, d, TRUE.loss(n, d), n_bootstrap=0)
    assert by_n.skipped and "only 4 point(s)" in by_n.skipped
    assert by_d.skipped and "only 3 point(s)" in by_d.skipped


def test_plot_when_the_prediction_lies_outside_its_band(tmp_path):
    """The full fit's prediction can fall outside its bootstrap band (few refits, or a poor fit): the plot still draws."""
    from guimo.scale.extrapolate import Holdout
    from guimo.scale.plots import extrapolation

    rows = [{"n": 4e6, "d": d, "actual": 3.0, "predicted": 3.2, "band": [3.25, 3.4], "relative_error": 0.2 / 3.0, "inside_band": False}
            for d in (1e8, 2e8)]
    out = extrapolation([Holdout(axis="N", held_out=4e6, largest_fitted=1e6, rows=rows)], tmp_path / "x.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
