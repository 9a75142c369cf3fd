"""Compute-optimal allocation: the closed form, published comparisons, the inverse for a target loss."""

from __future__ import annotations

import math

import numpy as np
import pytest

from guimo.errors import GuimoError
from guimo.scale.fit import BESIROGLU, Law, fit_law
from guimo.scale.plan import caveat, compute_for_loss, optimal, plan


def test_optimum_satisfies_budget_and_minimises_loss():
    c = 5.76e23  # Chinchilla's training compute
    a = optimal(BESIROGLU, c)
    assert 6 * a.n * a.d == pytest.approx(c)
    for scale in (0.8, 0.95, 1.05, 1.25):  # any other split of the same C is worse
        n = a.n * scale
        assert BESIROGLU.loss(n, c / (6 * n)) > a.loss
    # Besiroglu et al.'s refit puts Chinchilla's budget near 70B parameters and ~20 tokens/param
    assert 5e10 < a.n < 9e10
    assert 15 < a.tokens_per_param < 25


def test_plan_compares_with_published_rules():
    p = plan(BESIROGLU, 1e21)
    assert p.chinchilla_20.tokens_per_param == pytest.approx(20.0)
    assert p.chinchilla_20.n == pytest.approx(math.sqrt(1e21 / 120))
    assert p.besiroglu.n == pytest.approx(p.best.n)  # planning with the Besiroglu law itself


def test_plan_bands_from_bootstrap():
    true = Law(E=1.8, A=400.0, B=1200.0, alpha=0.34, beta=0.30)
    rng = np.random.default_rng(0)
    n, d = np.meshgrid(np.geomspace(1e6, 1e9, 5), np.geomspace(1e8, 1e11, 5))
    loss = true.loss(n.ravel(), d.ravel()) * np.exp(rng.normal(0, 0.003, n.size))
    p = plan(fit_law(n.ravel(), d.ravel(), loss, n_bootstrap=10), 1e20)
    for key in ("n", "d", "tokens_per_param", "loss"):
        lo, hi = p.bands[key]
        assert lo <= getattr(p.best, key) <= hi
    assert optimal(true, 1e20).n == pytest.approx(p.best.n, rel=0.5)


def test_plan_says_when_the_fit_cannot_support_it():
    """A plan needs the law's shape: a fit whose beta the runs leave free (interval to the bound) gets a caveat; a law
    the runs pin down, or a published one, does not."""
    from .test_fit import ZH_REPEAT_D, ZH_REPEAT_LOSS, ZH_REPEAT_N, synthetic

    loose = fit_law(ZH_REPEAT_N, ZH_REPEAT_D, ZH_REPEAT_LOSS, n_bootstrap=20)
    assert caveat(loose).startswith("beta not identified") and "N_opt and D_opt are unknown" in caveat(loose)
    assert caveat(fit_law(*synthetic(), n_bootstrap=8)) is None and caveat(BESIROGLU) is None


def test_compute_for_loss_inverts_optimal():
    a = compute_for_loss(BESIROGLU, 2.0)
    assert a.loss == pytest.approx(2.0, rel=1e-6)
    assert optimal(BESIROGLU, a.compute * 0.9).loss > 2.0


def test_unreachable_target_and_bad_compute():
    with pytest.raises(GuimoError, match="irreducible loss"):
        compute_for_loss(BESIROGLU, 1.5)
    with pytest.raises(GuimoError, match="positive number of FLOPs"):
        optimal(BESIROGLU, -1.0)


def test_joint_form_plan_is_the_numeric_optimum():
    """Kaplan's joint law has no closed form here: the 1-D search must meet the budget and beat every other split."""
    from guimo.scale.joint import JointLaw

    law = JointLaw(E=1.8, N_c=8e6, D_c=5e8, alpha_N=0.34, alpha_D=0.3)
    c = 1e20
    a = optimal(law, c)
    assert 6 * a.n * a.d == pytest.approx(c) and a.loss == pytest.approx(float(law.loss(a.n, a.d)))
    for scale in (0.5, 0.9, 1.1, 2.0):
        assert law.loss(a.n * scale, c / (6 * a.n * scale)) > a.loss
    p = plan(law, c)
    assert p.best.n == pytest.approx(a.n)
    need = compute_for_loss(law, a.loss)
    assert need.compute == pytest.approx(c, rel=1e-3)
