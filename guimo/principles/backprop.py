"""The article's backpropagation example, computed by hand (NumPy) and by torch autograd.

The network, as the article defines it (our reading of how the two first-layer weights are used:
sample 1 goes through ``w1`` and sample 2 through ``w2``; both share the output weight ``w3``)::

    x1 = [1, 0]   y1 = [0, 1]        h1 = w1 * x1        o1 = w3 * h1        e1 = o1 - y1
    x2 = [0, 1]   y2 = [1, 0]        h2 = w2 * x2        o2 = w3 * h2        e2 = o2 - y2
    w1 = w2 = w3 = [1, 1]            (* is the element-wise product)          lr = 0.1

The loss whose gradients we compute is stated explicitly, because the article does not fix one:
``L = 1/2 * sum(e1^2) + 1/2 * sum(e2^2)``, summed over both samples (one full-batch step).
Then ``dL/do_i = e_i`` and, by the chain rule through the element-wise products,

    dL/dw3 = e1 * h1 + e2 * h2        dL/dw1 = (e1 * w3) * x1        dL/dw2 = (e2 * w3) * x2

The article's published numbers that the project knows are kept in ``ARTICLE``; each is compared
with the computed value, and ``inconsistencies`` lists where the article's numbers do not follow
from its own formulas.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

X1, X2 = np.array([1.0, 0.0]), np.array([0.0, 1.0])
Y1, Y2 = np.array([0.0, 1.0]), np.array([1.0, 0.0])
W_INIT = np.array([1.0, 1.0])
LR = 0.1
AUTOGRAD_TOLERANCE = 1e-12


@dataclass(frozen=True)
class ArticleValue:
    """A value the article prints, next to what the computation gives.

    ``published`` is None where we only know the article's claim in words (``claim``); then there
    is nothing numeric to compare and the verdict is "not numeric".
    """

    quantity: str
    published: list[float] | None
    claim: str
    correct: list[float]

    @property
    def verdict(self) -> str:
        if self.published is None:
            return "not numeric"
        return "match" if np.allclose(self.published, self.correct, rtol=0, atol=1e-12) else "MISMATCH"


@dataclass(frozen=True)
class ArticleBackprop:
    """Forward pass, gradients (hand and autograd), update, and the comparison with the article."""

    values: dict[str, list[float]]  # every intermediate, e.g. "h1", "o2", "e1", "dL/dw3", "w3'"
    loss: float
    loss_after: float  # the same loss at the updated weights: a correct step must lower it
    autograd: dict[str, list[float]]  # dL/dw1, dL/dw2, dL/dw3 from torch autograd
    max_autograd_diff: float
    article: list[ArticleValue] = field(default_factory=list)
    inconsistencies: list[str] = field(default_factory=list)


def forward(w1: np.ndarray, w2: np.ndarray, w3: np.ndarray) -> dict[str, np.ndarray]:
    """The forward pass and the loss, as float64 arrays keyed by the article's names."""
    h1, h2 = w1 * X1, w2 * X2
    o1, o2 = w3 * h1, w3 * h2
    e1, e2 = o1 - Y1, o2 - Y2
    loss = 0.5 * np.sum(e1**2) + 0.5 * np.sum(e2**2)
    return {"h1": h1, "h2": h2, "o1": o1, "o2": o2, "e1": e1, "e2": e2, "L": np.array(loss)}


def backward(w3: np.ndarray, f: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Hand-written backpropagation: the chain rule applied from the loss back to each weight."""
    do1, do2 = f["e1"], f["e2"]  # dL/do_i = e_i for L = 1/2 sum e^2
    dw3 = do1 * f["h1"] + do2 * f["h2"]  # o_i = w3 * h_i: w3 is shared, so its gradients add up
    dh1, dh2 = do1 * w3, do2 * w3
    dw1, dw2 = dh1 * X1, dh2 * X2  # h_i = w_i * x_i
    return {"dL/dh1": dh1, "dL/dh2": dh2, "dL/dw1": dw1, "dL/dw2": dw2, "dL/dw3": dw3}


def autograd_gradients(w1: np.ndarray, w2: np.ndarray, w3: np.ndarray) -> dict[str, np.ndarray]:
    """The same gradients from torch autograd in float64, as the independent check."""
    import torch

    ws = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in (w1, w2, w3)]
    x1, x2, y1, y2 = (torch.tensor(a, dtype=torch.float64) for a in (X1, X2, Y1, Y2))
    e1 = ws[2] * (ws[0] * x1) - y1
    e2 = ws[2] * (ws[1] * x2) - y2
    loss = 0.5 * (e1**2).sum() + 0.5 * (e2**2).sum()
    loss.backward()
    return {f"dL/dw{i + 1}": w.grad.numpy().copy() for i, w in enumerate(ws)}


def article_backprop(lr: float = LR) -> ArticleBackprop:
    """One full-batch backpropagation step on the article's network, checked against autograd."""
    w1, w2, w3 = W_INIT.copy(), W_INIT.copy(), W_INIT.copy()
    f = forward(w1, w2, w3)
    g = backward(w3, f)
    auto = autograd_gradients(w1, w2, w3)
    diff = max(float(np.max(np.abs(g[k] - auto[k]))) for k in auto)
    new = {"w1'": w1 - lr * g["dL/dw1"], "w2'": w2 - lr * g["dL/dw2"], "w3'": w3 - lr * g["dL/dw3"]}
    loss_after = float(forward(new["w1'"], new["w2'"], new["w3'"])["L"])
    values = {k: v.tolist() for k, v in {**f, **g, **new}.items() if k != "L"}
    # What the article's own rule gives: its delta for the output (e1 + e2, which is [0, 0]) times
    # [1, 1]^T. The project only knows the article's result of that product, [0, 0], and its printed
    # update [0.9, 0.9]; the sum e1 + e2 is one way to get [0, 0] and is shown as such.
    error_sum = f["e1"] + f["e2"]
    w3_new = new["w3'"]
    w3_by_article_rule = w3 - lr * np.array(ARTICLE_DELTA_TIMES_ONES)
    article = [
        ArticleValue("h1, h2", None, "formula h = w * x; its numbers are not quoted here", f["h1"].tolist() + f["h2"].tolist()),
        ArticleValue("e1, e2", None, "formula e = o - y; its numbers are not quoted here", f["e1"].tolist() + f["e2"].tolist()),
        ArticleValue("gradient for w3 (article: delta x [1, 1]^T)", list(ARTICLE_DELTA_TIMES_ONES),
                     "the output delta times [1, 1]^T", g["dL/dw3"].tolist()),
        ArticleValue("updated w3", list(ARTICLE_W3_UPDATED), "w3 after one step with lr 0.1", w3_new.tolist()),
    ]
    inconsistencies = [
        f"The article's delta x [1, 1]^T is {_v(ARTICLE_DELTA_TIMES_ONES)}; with lr {lr:g} its own update "
        f"w3 - lr * {_v(ARTICLE_DELTA_TIMES_ONES)} leaves w3 at {_v(w3_by_article_rule)}, yet it prints "
        f"{_v(ARTICLE_W3_UPDATED)}.",
        f"The printed w3 {_v(ARTICLE_W3_UPDATED)} is what the true gradient dL/dw3 = e1*h1 + e2*h2 = "
        f"{_v(g['dL/dw3'])} gives (w3 - {lr:g} * {_v(g['dL/dw3'])} = {_v(w3_new)}), "
        f"not what the article's own delta gives.",
        f"A zero product arises if the errors are summed before they meet the hidden values: e1 + e2 = "
        f"{_v(error_sum)}; but w3 multiplies h1 for sample 1 and h2 for sample 2, so each error must be "
        f"multiplied by its own h first ({_v(f['e1'] * f['h1'])} + {_v(f['e2'] * f['h2'])}).",
    ]
    return ArticleBackprop(
        values=values, loss=float(f["L"]), loss_after=loss_after,
        autograd={k: v.tolist() for k, v in auto.items()}, max_autograd_diff=diff,
        article=article, inconsistencies=inconsistencies,
    )


# The article's printed numbers that the project has (from issue 3's text); nothing else is quoted.
ARTICLE_DELTA_TIMES_ONES = (0.0, 0.0)
ARTICLE_W3_UPDATED = (0.9, 0.9)


def _v(a) -> str:
    """Format a vector the way the article writes it: [0.9, 0.9]."""
    return "[" + ", ".join(f"{float(x) + 0.0:.4g}" for x in np.asarray(a).ravel()) + "]"  # + 0.0: no "-0"
