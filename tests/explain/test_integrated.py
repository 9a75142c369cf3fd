"""Integrated Gradients on the tabular transformer: completeness, convergence with n_steps, the features that
matter ranked first, and a model still carrying Opacus' hooks explained through a clean copy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from guimo.explain.integrated import clean_copy, integrated_gradients
from guimo.models.tabular import FTTransformer, TabularConfig, imbalance_loss
from guimo.train.config import TrainConfig
from guimo.train.loop import fit
from tests.privacy.test_dp import Rows, loss_fn

BASELINE = (torch.zeros(3), torch.zeros(1, dtype=torch.long))  # scaled medians, the unknown bucket


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny FT-Transformer fitted to Rows: x0 (+2), x1 (-1.5) and the category matter, x2 does not."""
    torch.manual_seed(0)
    m = FTTransformer(TabularConfig(n_num=3, cat_cardinalities=[5], d_model=16, n_layer=1, n_head=2, dropout=0.0))
    cfg = TrainConfig(max_steps=150, batch_size=64, lr=1e-2, warmup_steps=5, eval_every=0, checkpoint_every=0, device="cpu")
    data = Rows(800, 0)
    data.x_cat = data.x_cat + 1  # ids 1-4: id 0 stays the unseen "unknown" bucket, the baseline
    fit(m, data, loss_fn, cfg, out_dir=tmp_path_factory.mktemp("ig"), seed=0)
    return m


def test_attributions_sum_to_the_output_difference(trained):
    test = Rows(40, 1)
    a = integrated_gradients(trained, test.x_num, test.x_cat + 1, BASELINE, n_steps=64)
    diff = a.output - a.baseline_output
    assert a.values.shape == (40, 4) and np.abs(diff).mean() > 1.0  # a trained model: real differences to explain
    assert np.allclose(a.values.sum(axis=1), diff, atol=0.02 * np.abs(diff).max())
    assert a.completeness_error.max() < 0.02 * np.abs(diff).max()
    with torch.no_grad():  # the explained output is the model's own logit for the row
        assert np.allclose(a.output, trained(test.x_num, test.x_cat + 1)[:, 0].numpy(), atol=1e-5)


def test_more_steps_shrink_the_completeness_error(trained):
    test = Rows(40, 2)
    coarse = integrated_gradients(trained, test.x_num, test.x_cat + 1, BASELINE, n_steps=2)
    fine = integrated_gradients(trained, test.x_num, test.x_cat + 1, BASELINE, n_steps=64)
    assert fine.completeness_error.mean() < coarse.completeness_error.mean() / 2


def test_the_features_that_drive_the_label_lead(trained):
    test = Rows(200, 3)
    a = integrated_gradients(trained, test.x_num, test.x_cat + 1, BASELINE)
    mean_abs = np.abs(a.values).mean(axis=0)  # x0, x1, x2, category
    assert mean_abs[2] < 0.3 * min(mean_abs[0], mean_abs[1], mean_abs[3])  # x2 has no effect on the label
    # signs: a larger x0 pushes the positive logit up, a larger x1 pushes it down
    x = test.x_num.numpy()
    assert np.corrcoef(x[:, 0], a.values[:, 0])[0, 1] > 0.8 and np.corrcoef(x[:, 1], a.values[:, 1])[0, 1] < -0.8


def test_multiclass_explains_each_rows_predicted_class():
    torch.manual_seed(0)
    m = FTTransformer(TabularConfig(n_num=2, cat_cardinalities=[3], n_out=3, task="multiclass", d_model=8, n_layer=1, n_head=2))
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.5)  # outputs that differ between rows, so rows predict different classes
    x, c = torch.randn(30, 2), torch.randint(0, 3, (30, 1))
    a = integrated_gradients(m, x, c, (torch.zeros(2), torch.zeros(1, dtype=torch.long)))
    with torch.no_grad():
        predicted = clean_copy(m)(x, c).argmax(1).numpy()
    assert len(set(predicted)) > 1 and (a.target == predicted).all()
    other = (predicted + 1) % 3
    b = integrated_gradients(m, x, c, (torch.zeros(2), torch.zeros(1, dtype=torch.long)), target=torch.as_tensor(other))
    assert (b.target == other).all() and not np.allclose(a.values, b.values)
    assert np.allclose(b.values.sum(1), b.output - b.baseline_output, atol=1e-2)


def test_a_model_with_opacus_hooks_is_explained_through_a_clean_copy(trained):
    """FACTS.md: Captum fails on a module that still carries Opacus' hooks; the explanation copies it first."""
    from opacus import GradSampleModule

    hooked = GradSampleModule(clean_copy(trained))
    try:
        test = Rows(5, 4)
        a = integrated_gradients(hooked, test.x_num, test.x_cat + 1, BASELINE)
        b = integrated_gradients(trained, test.x_num, test.x_cat + 1, BASELINE)
        assert np.allclose(a.values, b.values, atol=1e-6)
    finally:
        hooked._close()
    copy = clean_copy(trained)
    assert copy is not trained and all(p is not q for p, q in zip(copy.parameters(), trained.parameters()))
    assert not copy.training
