"""Gradient descent on J(w) = (w*x - y)^2: exact steps, closed-form count, the 1/x^2 bound."""

from __future__ import annotations

import math

import pytest

from guimo.errors import GuimoError
from guimo.principles.gradient_descent import gradient_descent, predicted_steps


def test_first_steps_follow_the_update_rule_exactly():
    r = gradient_descent(x=2.0, y=4.0, lr=0.01, w0=1.0)
    s0, s1, s2 = r.steps[:3]
    # Hand-computed: grad(1) = 2*(2-4)*2 = -8, w1 = 1 + 0.08; grad(1.08) = 2*(2.16-4)*2 = -7.36.
    assert (s0.w, s0.loss, s0.grad) == (1.0, 4.0, -8.0)
    assert s1.w == pytest.approx(1.08, abs=1e-15) and s1.grad == pytest.approx(-7.36, abs=1e-12)
    assert s2.w == pytest.approx(1.08 + 0.0736, abs=1e-12)
    assert s1.loss == pytest.approx((1.08 * 2 - 4) ** 2, abs=1e-12)


def test_converges_to_the_closed_form_optimum_in_the_predicted_number_of_steps():
    r = gradient_descent(x=2.0, y=4.0, lr=0.01, tolerance=1e-6)
    assert r.status == "converged" and r.optimum == 2.0 and r.lr_bound == 0.25
    # |grad_t| = 8 * 0.92^t <= 1e-6  <=>  t >= log(1.25e-7) / log(0.92) = 190.4...
    assert r.steps_taken == 191 == r.predicted_steps == math.ceil(math.log(1e-6 / 8) / math.log(0.92))
    assert abs(r.final_w - 2.0) < 1e-6 / 8 and abs(r.steps[-1].grad) <= 1e-6 < abs(r.steps[-2].grad)
    assert not r.warnings


@pytest.mark.parametrize("x, y", [(2.0, 4.0), (0.5, -3.0), (-3.0, 1.0)])
def test_learning_rate_just_above_one_over_x_squared_diverges_and_just_below_converges(x, y):
    bound = 1.0 / (x * x)
    above = gradient_descent(x=x, y=y, lr=bound * 1.02, steps=3000)
    below = gradient_descent(x=x, y=y, lr=bound * 0.98, steps=3000)
    assert above.status == "diverged" and above.warnings and "diverges" in above.warnings[0]
    distances = [abs(s.w - above.optimum) for s in above.steps]
    assert all(b > a for a, b in zip(distances, distances[1:]))  # the distance grows every step
    assert below.status == "converged" and not below.warnings
    assert abs(below.final_w - below.optimum) <= 1e-6 / (2 * x * x)  # |grad| = 2 x^2 |w - w*|
    assert below.steps_taken == below.predicted_steps


def test_exactly_at_the_bound_it_oscillates_without_converging():
    r = gradient_descent(x=2.0, y=4.0, lr=0.25, steps=50)
    assert r.status == "not converged" and r.warnings
    assert {round(s.w, 12) for s in r.steps} == {1.0, 3.0}  # w - w* flips sign, same size


def test_optimal_learning_rate_lands_in_one_step():
    r = gradient_descent(x=2.0, y=4.0, lr=1 / 8)
    assert r.steps_taken == 1 == predicted_steps(2.0, 4.0, 1 / 8, 1e-6) and r.final_w == 2.0


def test_a_diverging_run_stops_before_overflowing():
    r = gradient_descent(x=10.0, y=1.0, lr=1.0, steps=10_000)
    assert r.status == "diverged" and r.steps_taken < 20 and math.isfinite(r.final_w)


@pytest.mark.parametrize("kwargs, message", [
    ({"x": 0.0}, "x must be non-zero"),
    ({"steps": -1}, "steps must be >= 0"),
    ({"lr": 0.0}, "learning rate must be > 0"),
    ({"lr": -0.1}, "learning rate must be > 0"),
    ({"tolerance": 0.0}, "tolerance must be > 0"),
    ({"y": float("nan")}, "y must be a finite number"),
])
def test_bad_values_raise_a_one_line_error(kwargs, message):
    with pytest.raises(GuimoError, match=message) as e:
        gradient_descent(**kwargs)
    assert "\n" not in str(e.value)
