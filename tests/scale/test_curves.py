"""Saturating learning curves of a business metric."""

from __future__ import annotations

import numpy as np
import pytest

from guimo.errors import GuimoError
from guimo.scale.curves import check_curve, fit_curve


def ndcg_points(noise=0.0):
    n = np.array([500, 1000, 2000, 4000, 8000, 16000], dtype=float)
    y = 0.12 - 0.9 * n**-0.45
    return n, y * (1 + np.random.default_rng(0).normal(0, noise, len(n)))


def test_recovers_saturating_law_exactly():
    n, y = ndcg_points()
    c = fit_curve(n, y, n_bootstrap=0)
    assert c.a == pytest.approx(0.12, rel=1e-3)
    assert c.b == pytest.approx(-0.9, rel=1e-2)
    assert c.c == pytest.approx(0.45, rel=1e-3)
    d = c.as_dict()
    assert d["predicted_4x"]["value"] == pytest.approx(0.12 - 0.9 * 64000**-0.45, rel=1e-4)
    assert d["predicted_2x"]["value"] < d["predicted_4x"]["value"] < 0.12


def test_half_the_data_predicts_full_data_within_10_percent():
    n, y = ndcg_points(noise=0.01)
    chk = check_curve(n, y, fraction=0.5, n_bootstrap=50)
    assert chk.n_fitted == 5
    assert chk.relative_error < 0.10


def test_decreasing_metric_too():
    n = np.geomspace(1e3, 1e6, 6)
    c = fit_curve(n, 2.0 + 5.0 * n**-0.3, n_bootstrap=0)
    assert c.b > 0 and c.a == pytest.approx(2.0, rel=1e-3)


def test_too_few_points():
    with pytest.raises(GuimoError, match="3 distinct data sizes"):
        fit_curve([1000, 2000, 2000], [0.05, 0.06, 0.061])
    with pytest.raises(GuimoError, match="no points"):
        fit_curve([], [])


def test_weights_make_it_inverse_variance_least_squares():
    n, y = ndcg_points()
    noisy = y.copy()
    noisy[0] += 0.02  # the smallest run (fewest test cases) is far off the law
    plain = fit_curve(n, noisy, n_bootstrap=0)
    weighted = fit_curve(n, noisy, weights=[1, 1000, 1000, 1000, 1000, 1000], n_bootstrap=0)
    assert abs(weighted.a - 0.12) < 0.2 * abs(plain.a - 0.12)  # the down-weighted point barely moves the fit
    same = fit_curve(n, noisy, weights=np.full(len(n), 7.0), n_bootstrap=0)  # equal weights: the plain fit
    assert same.a == pytest.approx(plain.a, rel=1e-6) and same.c == pytest.approx(plain.c, rel=1e-6)
    chk = check_curve(n, noisy, fraction=0.5, weights=[1, 1000, 1000, 1000, 1000, 1000], n_bootstrap=10)
    assert chk.relative_error < check_curve(n, noisy, fraction=0.5, n_bootstrap=10).relative_error


def test_bad_weights():
    n, y = ndcg_points()
    with pytest.raises(GuimoError, match="weights must be positive"):
        fit_curve(n, y, weights=[1, 1, 1, 1, 1, 0])
    with pytest.raises(GuimoError, match="6 points but 2 weights"):
        fit_curve(n, y, weights=[1, 2])


def test_half_data_cut_tolerates_a_nominal_half_slightly_above_half():
    """6,000 of 12,000 users held 50.3% of the interactions: that run is still the half-data point."""
    n = np.array([35_109, 71_058, 143_636, 285_670, 567_823], dtype=float)
    y = 0.35 - 8.0 * n**-0.35
    chk = check_curve(n, y, fraction=0.5, n_bootstrap=0)
    assert chk.n_fitted == 4 and chk.relative_error < 1e-6
    assert check_curve(n, y, fraction=0.5, n_bootstrap=0, tolerance=0.0).n_fitted == 3


def test_exponent_at_search_bound_is_flagged():
    n = np.geomspace(1e3, 1e6, 6)
    log_like = fit_curve(n, 0.01 + 0.004 * np.log(n), n_bootstrap=0)  # grows like log n: no saturation to fit
    assert log_like.at_bound and log_like.as_dict()["c_at_search_bound"]
    n2, y2 = ndcg_points()
    assert not fit_curve(n2, y2, n_bootstrap=0).at_bound


def test_prediction_interval_from_seed_replicates():
    """Two seeds per size: the interval adds one run's noise (shrinking as 1/cases) to the band of the expected metric."""
    rng = np.random.default_rng(4)
    n = np.repeat(np.geomspace(2000, 64000, 6), 2)
    cases = n / 10  # more data, more test users
    y = 0.12 - 0.9 * n**-0.45 + rng.normal(0, 1, n.size) * 0.3 / np.sqrt(cases)  # per-case sd 0.3
    chk = check_curve(n, y, fraction=0.5, weights=cases, n_bootstrap=40)
    expected_sd = 0.3 / np.sqrt(6400) / np.sqrt(2)  # the observed value is the mean of 2 runs of 6,400 cases
    assert chk.run_sd == pytest.approx(expected_sd, rel=0.6)
    assert chk.interval[0] < chk.band[0] and chk.interval[1] > chk.band[1]
    assert chk.as_dict()["inside_interval"] is True
    single = check_curve(n[::2], y[::2], fraction=0.5, weights=cases[::2], n_bootstrap=10)  # one seed: unmeasured
    assert single.interval is None and single.as_dict()["inside_interval"] is None


def test_noise_floor_is_calibrated_and_flags_a_shape_miss():
    """Data drawn from the curve itself land mid-floor on average; a full-data value off the curve lands above it."""
    n = np.repeat(np.geomspace(2000, 64000, 6), 2)
    cases = n / 10
    truth = 0.12 - 0.9 * n**-0.45

    def draw(seed):
        return truth + np.random.default_rng(seed).normal(0, 1, n.size) * 0.3 / np.sqrt(cases)

    pct = [check_curve(n, draw(s), weights=cases, n_bootstrap=0, noise_sims=40).noise_floor["observed_percentile"] for s in range(12)]
    assert 25 <= np.mean(pct) <= 75
    y = draw(0)
    y[n == n.max()] += 0.01  # the full-data runs beat the curve by ~10%: the shape, not noise
    chk = check_curve(n, y, weights=cases, n_bootstrap=0, noise_sims=40)
    nf = chk.noise_floor
    assert nf["sims"] >= 35 and nf["median"] < chk.relative_error and nf["observed_percentile"] == 100
    assert check_curve(n[::2], y[::2], weights=cases[::2], n_bootstrap=0, noise_sims=40).noise_floor is None  # one seed: no floor
