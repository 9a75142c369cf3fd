"""The article's network: gradients computed by hand in the test, autograd agreement, the article check."""

from __future__ import annotations

import numpy as np
import pytest

from guimo.errors import GuimoError
from guimo.principles.backprop import article_backprop
from guimo.principles.mlp import autograd_gradients, backward, forward, init_params, mlp_backprop


def test_article_network_forward_pass_and_loss():
    v = article_backprop().values
    # h1 = [1,1]*[1,0], o1 = [1,1]*h1, e1 = o1 - [0,1]; sample 2 mirrored.
    assert v["h1"] == [1, 0] and v["h2"] == [0, 1]
    assert v["o1"] == [1, 0] and v["o2"] == [0, 1]
    assert v["e1"] == [1, -1] and v["e2"] == [-1, 1]
    assert article_backprop().loss == 2.0  # 1/2 * (1 + 1) + 1/2 * (1 + 1)


def test_article_network_gradients_and_update_match_the_hand_computation():
    r = article_backprop()
    v = r.values
    # dL/dw3 = e1*h1 + e2*h2 = [1,0] + [0,1]; dL/dw1 = e1*w3*x1 = [1,0]; dL/dw2 = e2*w3*x2 = [0,1].
    assert v["dL/dw3"] == [1.0, 1.0]
    assert v["dL/dw1"] == [1.0, 0.0] and v["dL/dw2"] == [0.0, 1.0]
    assert v["w3'"] == pytest.approx([0.9, 0.9], abs=1e-15)
    assert v["w1'"] == pytest.approx([0.9, 1.0], abs=1e-15) and v["w2'"] == pytest.approx([1.0, 0.9], abs=1e-15)
    # After the step: o1 = [0.81, 0], e1 = [0.81, -1]; by symmetry L = 0.81^2 + 1 = 1.6561.
    assert r.loss_after == pytest.approx(1.6561, abs=1e-12) and r.loss_after < r.loss


def test_hand_written_backprop_agrees_with_autograd_to_1e_12():
    r = article_backprop()
    assert r.max_autograd_diff <= 1e-12
    for k in ("dL/dw1", "dL/dw2", "dL/dw3"):
        np.testing.assert_allclose(r.values[k], r.autograd[k], rtol=0, atol=1e-12)


def test_article_values_are_marked_and_inconsistencies_named():
    r = article_backprop()
    verdicts = {a.quantity: a.verdict for a in r.article}
    assert verdicts["gradient for w3 (article: delta x [1, 1]^T)"] == "MISMATCH"  # [0, 0] vs [1, 1]
    assert verdicts["updated w3"] == "match"  # [0.9, 0.9] is right, just not by its own formula
    assert all(a.published is not None or a.verdict == "not numeric" for a in r.article)
    assert len(r.inconsistencies) >= 2 and all("\n" not in line for line in r.inconsistencies)
    assert "leaves w3 at [1, 1], yet it prints [0.9, 0.9]" in r.inconsistencies[0]


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_mlp_hand_backprop_matches_autograd_and_finite_differences(activation):
    p = init_params(3)
    g = backward(p, forward(p, activation), activation)
    auto = autograd_gradients(p, activation)
    for k in g:
        np.testing.assert_allclose(g[k], auto[k], rtol=0, atol=1e-12)
    # An independent check that needs no framework: central differences on one weight.
    eps = 1e-6
    plus = {k: v.copy() for k, v in p.items()}
    minus = {k: v.copy() for k, v in p.items()}
    plus["W1"][1, 0] += eps
    minus["W1"][1, 0] -= eps
    numeric = (forward(plus, activation)["L"] - forward(minus, activation)["L"]) / (2 * eps)
    assert g["W1"][1, 0] == pytest.approx(float(numeric), abs=1e-7)


def test_mlp_training_fits_xor_with_every_step_checked():
    r = mlp_backprop("tanh", lr=0.2, steps=500, seed=0)
    assert r.max_autograd_diff <= 1e-12 and not r.diverged
    assert r.losses[-1] < 1e-6 < r.losses[0]
    assert np.allclose(r.predictions, [0, 1, 1, 0], atol=1e-3)


def test_mlp_too_large_learning_rate_is_reported_as_diverged():
    r = mlp_backprop("tanh", lr=5.0, steps=500, seed=0)
    assert r.diverged


@pytest.mark.parametrize("kwargs", [{"activation": "relu"}, {"lr": 0.0}, {"steps": 0}])
def test_mlp_bad_values_raise(kwargs):
    with pytest.raises(GuimoError):
        mlp_backprop(**kwargs)
