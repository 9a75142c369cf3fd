"""Backpropagation on a real 2-2-1 network with matrix weights, by hand and by autograd.

The article's example uses element-wise weights, which hides the matrix algebra of the general
algorithm. Here the same procedure runs on the smallest network where it matters::

    z = X @ W1.T + b1      (N, 2)   hidden pre-activation
    a = act(z)             (N, 2)   tanh or sigmoid
    o = a @ W2.T + b2      (N, 1)   linear output
    e = o - Y              (N, 1)   L = 1/2 * sum(e^2)

Backward, each line the chain rule through one line above (``*`` element-wise)::

    dO  = e                           dW2 = dO.T @ a      db2 = sum(dO)
    dA  = dO @ W2                     dZ  = dA * act'(z)
    dW1 = dZ.T @ X                    db1 = sum(dZ)

The data are the four XOR points, which a 2-2-1 network can fit but a linear model cannot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from guimo.errors import GuimoError
from guimo.principles.threads import single_thread

X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
Y = np.array([[0.0], [1.0], [1.0], [0.0]])
ACTIVATIONS = ("tanh", "sigmoid")
PARAMS = ("W1", "b1", "W2", "b2")


@dataclass(frozen=True)
class MLPBackprop:
    activation: str
    lr: float
    seed: int
    initial: dict[str, list]  # W1 (2, 2), b1 (2,), W2 (1, 2), b2 (1,)
    forward: dict[str, list]  # z, a, o, e at the initial weights
    grads: dict[str, list]  # hand-written backprop at the initial weights
    autograd: dict[str, list]  # torch autograd at the initial weights
    max_autograd_diff: float  # the largest |hand - autograd| over every gradient of every step
    losses: list[float] = field(repr=False)  # loss before each step, then after the last one
    diverged: bool = False  # the loss overflowed (learning rate too large); training stopped there
    final: dict[str, list] = field(default_factory=dict)
    predictions: list[float] = field(default_factory=list)  # o after the last step


def init_params(seed: int) -> dict[str, np.ndarray]:
    """Seeded normal weights (std 1) and zero biases, float64."""
    rng = np.random.default_rng(seed)
    return {"W1": rng.normal(size=(2, 2)), "b1": np.zeros(2), "W2": rng.normal(size=(1, 2)), "b2": np.zeros(1)}


def forward(p: dict[str, np.ndarray], activation: str) -> dict[str, np.ndarray]:
    z = X @ p["W1"].T + p["b1"]
    a = np.tanh(z) if activation == "tanh" else 1.0 / (1.0 + np.exp(-z))
    o = a @ p["W2"].T + p["b2"]
    e = o - Y
    return {"z": z, "a": a, "o": o, "e": e, "L": np.array(0.5 * np.sum(e**2))}


def backward(p: dict[str, np.ndarray], f: dict[str, np.ndarray], activation: str) -> dict[str, np.ndarray]:
    d_o = f["e"]
    d_a = d_o @ p["W2"]
    act_grad = 1.0 - f["a"] ** 2 if activation == "tanh" else f["a"] * (1.0 - f["a"])
    d_z = d_a * act_grad
    return {"W1": d_z.T @ X, "b1": d_z.sum(axis=0), "W2": d_o.T @ f["a"], "b2": d_o.sum(axis=0)}


def autograd_gradients(p: dict[str, np.ndarray], activation: str) -> dict[str, np.ndarray]:
    import torch

    t = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in p.items()}
    x, y = torch.tensor(X), torch.tensor(Y)
    z = x @ t["W1"].T + t["b1"]
    a = torch.tanh(z) if activation == "tanh" else torch.sigmoid(z)
    loss = 0.5 * ((a @ t["W2"].T + t["b2"] - y) ** 2).sum()
    loss.backward()
    return {k: v.grad.numpy().copy() for k, v in t.items()}


@single_thread()
def mlp_backprop(activation: str = "tanh", lr: float = 0.2, steps: int = 500, seed: int = 0) -> MLPBackprop:
    """Full-batch gradient descent on XOR, every step's gradients checked against autograd.

    Args:
        activation: "tanh" or "sigmoid" for the hidden layer.
        lr: learning rate (> 0). steps: number of updates (>= 1). seed: weight initialisation.
    """
    if activation not in ACTIVATIONS:
        raise GuimoError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    if not lr > 0 or not np.isfinite(lr):
        raise GuimoError(f"learning rate must be a finite number > 0, got {lr}")
    if steps < 1:
        raise GuimoError(f"steps must be >= 1, got {steps}")
    p = init_params(seed)
    initial = {k: v.tolist() for k, v in p.items()}
    losses, max_diff, first, diverged = [], 0.0, None, False
    for _ in range(steps):
        with np.errstate(all="ignore"):  # an overflow is reported as `diverged`, not as warnings
            f = forward(p, activation)
            g = backward(p, f, activation)
        if not np.isfinite(f["L"]) or not all(np.isfinite(v).all() for v in g.values()):
            diverged = True
            break
        auto = autograd_gradients(p, activation)
        max_diff = max(max_diff, *(float(np.max(np.abs(g[k] - auto[k]))) for k in PARAMS))
        if first is None:
            first = (f, g, auto)
        losses.append(float(f["L"]))
        p = {k: p[k] - lr * g[k] for k in PARAMS}
    with np.errstate(all="ignore"):
        last = forward(p, activation)
    losses.append(float(last["L"]))
    diverged = diverged or not np.isfinite(last["L"])
    f0, g0, a0 = first
    return MLPBackprop(
        activation=activation, lr=lr, seed=seed, initial=initial,
        forward={k: f0[k].tolist() for k in ("z", "a", "o", "e")},
        grads={k: v.tolist() for k, v in g0.items()}, autograd={k: v.tolist() for k, v in a0.items()},
        max_autograd_diff=max_diff, losses=losses, diverged=diverged,
        final={k: v.tolist() for k, v in p.items()}, predictions=last["o"].ravel().tolist(),
    )
