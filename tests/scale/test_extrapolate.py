"""The extrapolation check on a known law: small errors, inside the band; skipped with a reason when it cannot run."""

from __future__ import annotations

import numpy as np
import pytest

from guimo.scale.extrapolate import holdout_checks, horizon, size_gap
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


def _grid(seeds: int):
    n, d = np.meshgrid(np.geomspace(1e6, 4e8, 5), np.geomspace(1e8, 1e11, 4))
    return np.tile(n.ravel(), seeds), np.tile(d.ravel(), seeds)


def test_seed_noise_pools_replicates_around_their_own_means():
    from guimo.scale.extrapolate import seed_noise

    n = np.array([1.0, 1.0, 2.0, 2.0, 3.0])
    d = np.ones(5)
    loss = np.exp([0.0, 0.02, 5.0, 5.04, 9.0])  # size differences are large, seed differences small
    # two groups of two: squared deviations 2 x 0.01^2 + 2 x 0.02^2 over 2 degrees of freedom
    assert seed_noise(n, d, loss) == pytest.approx(np.sqrt((2 * 0.01**2 + 2 * 0.02**2) / 2))
    assert seed_noise(n[[0, 2, 4]], d[[0, 2, 4]], loss[[0, 2, 4]]) is None  # no replicates: unmeasured


def test_prediction_interval_widens_the_band_by_the_seed_noise(tmp_path):
    """One run scatters around the expected loss: the interval must hold runs the band of the mean misses."""
    rng = np.random.default_rng(5)
    n, d = _grid(seeds=2)
    loss = TRUE.loss(n, d) * np.exp(rng.normal(0, 0.02, n.shape))
    by_n, _ = holdout_checks(n, d, loss, n_bootstrap=30)
    assert by_n.noise == pytest.approx(0.02, rel=0.4)
    for r in by_n.rows:
        assert r["interval"][0] < r["band"][0] and r["interval"][1] > r["band"][1]
    from guimo.scale.plots import extrapolation

    png = extrapolation([by_n], tmp_path / "x.png")  # band and prediction interval both drawn
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    inside_band = sum(r["inside_band"] for r in by_n.rows)
    inside_interval = sum(r["inside_interval"] for r in by_n.rows)
    assert inside_interval == len(by_n.rows) > inside_band


def test_noise_floor_tells_noise_from_a_wrong_law():
    """Runs from the additive law itself sit inside the floor; runs with an N x D interaction beat it."""
    rng = np.random.default_rng(11)
    n, d = _grid(seeds=2)
    noise = rng.normal(0, 0.01, n.shape)
    honest, _ = holdout_checks(n, d, TRUE.loss(n, d) * np.exp(noise), n_bootstrap=0, noise_sims=20)
    floor = honest.noise_floor
    assert floor["sims"] == 20 and 0 < floor["median"] <= floor["p90"] < 0.05
    assert honest.max_relative_error <= floor["p90"] * 1.5 and floor["observed_percentile"] < 95
    # Kaplan et al.'s joint form: the larger model's advantage shrinks as data gets scarce
    kaplan = 1.8 + ((8e6 / n) ** (0.34 / 0.3) + 5e8 / d) ** 0.3
    wrong, _ = holdout_checks(n, d, kaplan * np.exp(noise), n_bootstrap=0, noise_sims=20)
    assert wrong.max_relative_error > wrong.noise_floor["p90"] and wrong.noise_floor["observed_percentile"] >= 95
    # fitted in the joint form, the same runs extrapolate within the noise: the miss was the additive law's shape
    joint, _ = holdout_checks(n, d, kaplan * np.exp(noise), n_bootstrap=10, form="kaplan")
    assert joint.max_relative_error < wrong.noise_floor["p90"] and joint.all_inside_interval


def test_noise_floor_needs_replicates():
    n, d = _grid(seeds=1)
    by_n, _ = holdout_checks(n, d, TRUE.loss(n, d), n_bootstrap=0, noise_sims=10)
    assert by_n.noise is None and by_n.noise_floor is None
    assert by_n.all_inside_interval == by_n.all_inside  # without a measured noise the interval is the band


def test_horizon_predicts_every_larger_size_from_every_cut():
    """5 sizes, fits on the first 3 and the first 4: three (cut, size) rows, by distance; an exact law
    is predicted at every distance, a law whose exponent steepens above the third size is not."""
    n, d = _grid(1)
    rows = horizon(n, d, TRUE.loss(n, d))
    sizes = np.unique(n)
    pairs = [(r["fitted_sizes"], r["n"]) for r in rows]
    assert set(pairs[:2]) == {(4, sizes[4]), (3, sizes[3])} and pairs[2] == (3, sizes[4])  # by distance: 4.5x, 4.5x, 20x
    assert rows[2]["ratio"] == pytest.approx(sizes[4] / sizes[2])
    assert max(r["max_relative_error"] for r in rows) < 1e-3
    bent = TRUE.loss(n, d) * np.where(n > sizes[2], (n / sizes[2]) ** -0.02, 1.0)  # larger models gain more than the law
    far = {(r["fitted_sizes"], r["n"]): r for r in horizon(n, d, bent)}
    assert far[(3, sizes[4])]["max_relative_error"] > far[(3, sizes[3])]["max_relative_error"] > 0.01
    assert far[(3, sizes[4])]["at_full_data"] is not None


def test_report_shows_the_horizon_table():
    from guimo.scale.report import _extrapolation_section

    n, d = _grid(2)
    loss = TRUE.loss(n, d) * np.exp(np.random.default_rng(0).normal(0, 0.003, n.shape))
    result: dict = {}
    _, md = _extrapolation_section(n, d, loss, result, n_bootstrap=5, seed=0, correction=None, delta=1e-2, alt_delta=1e-2,
                                   noise_sims=0, form="chinchilla", full_law=None)
    text = "\n".join(md)
    assert "How the error grows with the distance" in text and "| 3 (up to " in text and "| 4 (up to " in text
    assert len(result["horizon"]) == 3 and all(r["max_relative_error"] < 0.03 for r in result["horizon"])


def test_size_gap_tells_the_additive_law_from_an_interaction():
    """The gap between the smallest and largest fitted model is fixed under the additive law; under Kaplan's
    joint form (little data holds every model back) it grows with D. The held-out largest size is left out."""
    from guimo.scale.joint import JointLaw

    n, d = (a.ravel() for a in np.meshgrid(np.geomspace(1e5, 2e7, 5), np.geomspace(1e6, 8e6, 4)))
    additive = size_gap(n, d, TRUE.loss(n, d))
    assert additive["n_small"] == 1e5 and additive["n_large"] < 2e7  # the largest N is the held-out one
    assert additive["ratio"] == pytest.approx(1.0, rel=1e-9)
    joint = JointLaw(E=1.5, N_c=8.8e13, D_c=5.4e13, alpha_N=0.076, alpha_D=0.095)
    interaction = size_gap(n, d, joint.loss(n, d))
    assert interaction["ratio"] > 1.5 and interaction["gap_large_d"] > interaction["gap_small_d"] > 0
    assert size_gap(n[:5], d[:5], TRUE.loss(n[:5], d[:5])) is None  # one data size: nothing to compare
