"""Gradient descent on the article's one-weight linear model, with its closed form beside it.

The model predicts ``w * x`` for one example ``(x, y)`` and is scored by the squared loss
``J(w) = (w*x - y)^2`` whose gradient is ``dJ/dw = 2*(w*x - y)*x``. Because the gradient is
``2*x^2*(w - w*)`` with the optimum ``w* = y/x``, one step multiplies the distance to the optimum
by the constant factor ``r = 1 - 2*lr*x^2``. Everything about the run follows from ``r``:

* it converges when ``|r| < 1``, i.e. ``0 < lr < 1/x^2``, monotonically below ``1/(2 x^2)`` and
  oscillating around ``w*`` above it;
* at ``lr = 1/x^2`` (``r = -1``) it oscillates forever with constant amplitude;
* above ``1/x^2`` (``|r| > 1``) it diverges geometrically.

The step count to reach a gradient tolerance is therefore predictable in closed form, and the run
checks its own count against that prediction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from guimo.errors import GuimoError

# Past this |gradient| a diverging run is stopped: the point is made and floats would overflow.
DIVERGENCE_LIMIT = 1e12


@dataclass(frozen=True)
class Step:
    """One row of the table: the weight *before* the update, its loss and its gradient."""

    step: int
    w: float
    loss: float
    grad: float


@dataclass(frozen=True)
class GradientDescentResult:
    x: float
    y: float
    lr: float
    tolerance: float
    max_steps: int
    optimum: float  # closed form y/x
    lr_bound: float  # 1/x^2: diverges above it
    rate: float  # r = 1 - 2*lr*x^2, the per-step factor on w - w*
    steps: list[Step] = field(repr=False)
    status: str = "converged"  # converged | not converged | diverged
    steps_taken: int = 0  # updates applied before stopping
    predicted_steps: int | None = None  # closed-form step count to reach the tolerance, if it does
    warnings: list[str] = field(default_factory=list)

    @property
    def final_w(self) -> float:
        return self.steps[-1].w


def gradient_descent(
    x: float = 2.0,
    y: float = 4.0,
    lr: float = 0.01,
    steps: int = 1000,
    tolerance: float = 1e-6,
    w0: float = 1.0,
) -> GradientDescentResult:
    """Run gradient descent on ``J(w) = (w*x - y)^2`` until ``|dJ/dw| <= tolerance``.

    Args:
        x, y: the single training example (``x`` must be non-zero, or there is no optimum).
        lr: learning rate (> 0); the run diverges when ``lr > 1/x^2`` and a warning says so.
        steps: the most updates to apply (>= 0).
        tolerance: stop once the gradient's magnitude is at most this (> 0).
        w0: the initial weight (the article starts at 1).

    Returns the table of steps (including the final, un-updated weight) and the verdict. A
    divergent learning rate is not an error: the result carries the warning and the blow-up.
    """
    _validate(x, y, lr, steps, tolerance, w0)
    optimum = y / x
    bound = 1.0 / (x * x)
    rate = 1.0 - 2.0 * lr * x * x
    warnings = []
    if lr > bound:
        warnings.append(
            f"learning rate {lr:g} > 1/x^2 = {bound:g}: each step multiplies the distance to the optimum "
            f"by |1 - 2*lr*x^2| = {abs(rate):g} > 1, so gradient descent diverges"
        )
    elif lr == bound:
        warnings.append(f"learning rate {lr:g} = 1/x^2: w oscillates around the optimum with constant amplitude and never converges")

    rows: list[Step] = []
    w = w0
    status = "not converged"
    for t in range(steps + 1):
        grad = 2.0 * (w * x - y) * x
        rows.append(Step(t, w, (w * x - y) ** 2, grad))
        if abs(grad) <= tolerance:
            status = "converged"
            break
        if not math.isfinite(grad) or abs(grad) > DIVERGENCE_LIMIT:
            status = "diverged"
            break
        if t == steps:
            break
        w = w - lr * grad
    if status == "not converged" and lr > bound:
        status = "diverged"  # stopped by the step budget before reaching the limit, but growing
    return GradientDescentResult(
        x=x, y=y, lr=lr, tolerance=tolerance, max_steps=steps, optimum=optimum, lr_bound=bound, rate=rate,
        steps=rows, status=status, steps_taken=rows[-1].step,
        predicted_steps=predicted_steps(x, y, lr, tolerance, w0), warnings=warnings,
    )


def predicted_steps(x: float, y: float, lr: float, tolerance: float, w0: float = 1.0) -> int | None:
    """Closed-form count of updates until ``|grad| <= tolerance``; None if that never happens.

    ``grad_t = grad_0 * r^t`` with ``r = 1 - 2*lr*x^2``, so the count is the smallest integer
    ``t >= log(tolerance/|grad_0|) / log|r|``.
    """
    g0 = abs(2.0 * (w0 * x - y) * x)
    if g0 <= tolerance:
        return 0
    r = abs(1.0 - 2.0 * lr * x * x)
    if r == 0.0:
        return 1  # lr = 1/(2 x^2) lands on the optimum in one step
    if r >= 1.0:
        return None
    t = math.log(tolerance / g0) / math.log(r)
    n = math.ceil(t - 1e-9)  # tolerance for rounding when t is an integer up to float error
    # Floating point can put the exact crossing one step either side; check with the same formula.
    while n > 0 and g0 * r ** (n - 1) <= tolerance:
        n -= 1
    while g0 * r**n > tolerance:
        n += 1
    return n


def _validate(x: float, y: float, lr: float, steps: int, tolerance: float, w0: float) -> None:
    for name, v in (("x", x), ("y", y), ("lr", lr), ("tolerance", tolerance), ("w0", w0)):
        if not math.isfinite(v):
            raise GuimoError(f"{name} must be a finite number, got {v}")
    if x == 0:
        raise GuimoError("x must be non-zero: with x = 0 the loss does not depend on w and there is no optimum y/x")
    if lr <= 0:
        raise GuimoError(f"learning rate must be > 0, got {lr:g}")
    if steps < 0:
        raise GuimoError(f"steps must be >= 0, got {steps}")
    if tolerance <= 0:
        raise GuimoError(f"tolerance must be > 0, got {tolerance:g}")
