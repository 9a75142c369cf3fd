"""The classifier head's linear-probe fit (``fit_head``, LP-FT's first stage): sklearn's objective, deterministic."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from guimo.errors import GuimoError
from guimo.models.text_classifier import fit_head


def blobs(seed: int = 0, n: int = 300, dim: int = 8, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 2.0, size=(k, dim))
    y = rng.integers(0, k, size=n)
    return (centres[y] + rng.normal(0, 1.0, size=(n, dim))).astype(np.float32), y


def test_fit_head_minimises_sklearns_logistic_regression_objective_and_is_deterministic():
    sklearn = pytest.importorskip("sklearn.linear_model")
    x, y = blobs()
    head, again = nn.Linear(8, 4), nn.Linear(8, 4)
    acc = fit_head(head, x, y, c=10.0)
    fit_head(again, x, y, c=10.0)
    assert torch.equal(head.weight, again.weight) and torch.equal(head.bias, again.bias)
    ref = sklearn.LogisticRegression(C=10.0, max_iter=5000, tol=1e-10).fit(x, y)

    def objective(w, b) -> float:  # sklearn's, divided by N: mean cross-entropy + ||W||^2 / (2 C N)
        w, b = torch.as_tensor(w, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
        ce = nn.functional.cross_entropy(torch.as_tensor(x, dtype=torch.float64) @ w.T + b, torch.as_tensor(y))
        return float(ce + (w * w).sum() / (2 * 10.0 * len(x)))

    ours, theirs = objective(head.weight.detach(), head.bias.detach()), objective(ref.coef_, ref.intercept_)
    assert ours <= theirs + 1e-6, (ours, theirs)  # at least as low as sklearn's optimum (float32 storage of the head)
    np.testing.assert_allclose(head.weight.detach().numpy(), ref.coef_, atol=1e-2)  # hence the same weights, to the solvers' tolerance
    assert acc == pytest.approx(ref.score(x, y))


def test_fit_head_refuses_labels_outside_the_heads_classes():
    x, y = blobs(k=4)
    with pytest.raises(GuimoError, match=r"labels must be in \[0, 3\)"):
        fit_head(nn.Linear(8, 3), x, y)


def test_layer_lr_decay_gives_each_block_its_lr_and_the_optimizer_uses_it():
    """ELECTRA's layer-wise decay: the top block at encoder_lr_mult, each lower one at decay x the one above, the
    embeddings below block 0, the head at the schedule's lr; 1.0 keeps the single encoder multiplier."""
    from guimo.models.text_classifier import TextClassifier, TextClassifierConfig
    from guimo.train.config import TrainConfig
    from guimo.train.loop import make_optimizer

    model = TextClassifier(TextClassifierConfig(vocab_size=50, max_len=8, n_layer=3, n_head=2, d_model=8, encoder_lr_mult=0.2,
                                                layer_lr_decay=0.5))
    mult = {id(p): m for p, m in model.lr_multipliers()}
    for name, p in model.named_parameters():
        want = {"blocks.2": 0.2, "blocks.1": 0.1, "blocks.0": 0.05}.get(name[:8], None if name.startswith("classifier") else 0.025)
        assert mult.get(id(p)) == pytest.approx(want) if want is not None else id(p) not in mult, name
    groups = make_optimizer(model, TrainConfig(lr=1e-3), torch.device("cpu")).param_groups
    assert sorted({g.get("lr_mult", 1.0) for g in groups}) == pytest.approx([0.025, 0.05, 0.1, 0.2, 1.0])
    flat = TextClassifier(TextClassifierConfig(vocab_size=50, max_len=8, n_layer=3, n_head=2, d_model=8, encoder_lr_mult=0.2))
    assert {m for _, m in flat.lr_multipliers()} == {0.2}
    with pytest.raises(ValueError, match="layer_lr_decay"):
        TextClassifierConfig(layer_lr_decay=0.0)
