"""The FT-Transformer: shapes, Opacus compatibility, and that it learns a rule a majority vote cannot."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from guimo.models.tabular import FTTransformer, TabularConfig, imbalance_loss, predict_logits


class Rows:
    """The training loop's TrainSet over encoded arrays."""

    tokens_per_example = 1

    def __init__(self, x_num, x_cat, y):
        self.x_num, self.x_cat, self.y = x_num, x_cat, y

    def __len__(self):
        return len(self.y)

    def batch(self, idx):
        return {"x_num": torch.from_numpy(self.x_num[idx]), "x_cat": torch.from_numpy(self.x_cat[idx]), "y": torch.from_numpy(self.y[idx])}


def seeded_table(n: int, seed: int):
    """A rule with an interaction and a categorical effect; ~30% positives, so the majority vote scores ~0.7."""
    rng = np.random.default_rng(seed)
    x_num = rng.normal(size=(n, 4)).astype(np.float32)
    x_cat = np.stack([rng.integers(0, 3, n), rng.integers(0, 5, n)], axis=1).astype(np.int64)
    score = x_num[:, 0] + x_num[:, 1] * x_num[:, 2] + np.where(x_cat[:, 0] == 2, 1.5, 0.0) - 1.0
    return x_num, x_cat, (score > 0).astype(np.int64)


def test_shapes_per_task():
    x_num, x_cat = torch.randn(5, 3), torch.randint(0, 2, (5, 2))
    for task, n_out in (("binary", 1), ("regression", 1), ("multiclass", 4)):
        model = FTTransformer(TabularConfig(n_num=3, cat_cardinalities=[2, 2], n_out=n_out, task=task, d_model=16, n_layer=1, n_head=2))
        assert model(x_num, x_cat).shape == (5, n_out)
    only_cat = FTTransformer(TabularConfig(n_num=0, cat_cardinalities=[4], d_model=16, n_layer=1, n_head=2))
    assert only_cat(torch.zeros(5, 0), torch.randint(0, 4, (5, 1))).shape == (5, 1)
    with pytest.raises(ValueError, match="n_out"):
        TabularConfig(n_num=2, n_out=2, task="binary")
    with pytest.raises(ValueError, match="at least one feature"):
        TabularConfig(n_num=0)


def test_opacus_accepts_the_model_and_computes_per_sample_grads():
    from opacus import GradSampleModule
    from opacus.validators import ModuleValidator

    model = FTTransformer(TabularConfig(n_num=3, cat_cardinalities=[2, 5], d_model=16, n_layer=1, n_head=2))
    assert ModuleValidator.validate(model, strict=False) == []
    gsm = GradSampleModule(model, loss_reduction="sum")  # a summed loss: per-sample gradients sum to the batch gradient
    gsm(torch.randn(6, 3), torch.randint(0, 2, (6, 2))).sum().backward()
    for name, p in gsm.named_parameters():
        assert p.grad_sample is not None and p.grad_sample.shape[0] == 6, name
        # the per-sample gradients add up to the batch gradient
        torch.testing.assert_close(p.grad_sample.sum(0), p.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("tokens", [{}, {"num_embedding": "plr"}, {"num_embedding": "plr", "linear_skip": True}])
def test_learns_beyond_the_majority_vote(tmp_path, tokens):
    from sklearn.metrics import roc_auc_score

    from guimo.train.config import TrainConfig
    from guimo.train.loop import fit

    torch.manual_seed(0)
    x_num, x_cat, y = seeded_table(1500, seed=0)
    tx_num, tx_cat, ty = seeded_table(600, seed=1)
    model = FTTransformer(TabularConfig(n_num=4, cat_cardinalities=[3, 5], d_model=32, n_layer=2, n_head=4, dropout=0.0, **tokens))
    cfg = TrainConfig(max_steps=300, batch_size=64, lr=3e-3, warmup_steps=20, eval_every=0, checkpoint_every=0, weight_decay=1e-4)
    fit(model, Rows(x_num, x_cat, y), lambda m, b: imbalance_loss(m(b["x_num"], b["x_cat"]), b["y"], task="binary", kind="none"),
        cfg, out_dir=tmp_path, seed=0)
    z = predict_logits(model, tx_num, tx_cat)[:, 0]
    accuracy = float(((z > 0) == ty).mean())
    majority = max(ty.mean(), 1 - ty.mean())
    assert accuracy >= majority + 0.15, (accuracy, majority)
    assert roc_auc_score(ty, z) > 0.93


def test_imbalance_losses():
    z, y = torch.tensor([[2.0], [-1.0], [0.5]]), torch.tensor([1, 0, 0])
    plain = imbalance_loss(z, y, task="binary", kind="none")
    weighted = imbalance_loss(z, y, task="binary", kind="weighted", pos_weight=5.0)
    focal = imbalance_loss(z, y, task="binary", kind="focal")
    manual = -(5 * np.log(1 / (1 + np.exp(-2.0))) + np.log(1 - 1 / (1 + np.exp(1.0))) + np.log(1 - 1 / (1 + np.exp(-0.5)))) / 3
    assert weighted.item() == pytest.approx(manual, rel=1e-5)
    assert focal.item() < plain.item()  # focal down-weights every row by (1 - p_t)^gamma < 1
    logits, labels = torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.0, 3.0]]), torch.tensor([0, 1])
    w = torch.tensor([1.0, 4.0, 1.0])
    assert imbalance_loss(logits, labels, task="multiclass", kind="weighted", class_weight=w) > imbalance_loss(logits, labels, task="multiclass", kind="none")


def test_ensemble_averages_members_that_differ_and_opacus_sees_every_one():
    from opacus import GradSampleModule
    from opacus.validators import ModuleValidator

    torch.manual_seed(0)
    cfg = TabularConfig(n_num=3, cat_cardinalities=[2, 5], d_model=16, n_layer=1, n_head=2, dropout=0.0, n_members=3)
    model = FTTransformer(cfg).eval()
    x_num, x_cat = torch.randn(6, 3), torch.randint(0, 2, (6, 2))
    members = model.member_logits(x_num, x_cat)
    assert members.shape == (3, 6, 1)
    torch.testing.assert_close(model(x_num, x_cat), members.mean(0))
    assert not torch.allclose(members[0], members[1])  # own initialisations: an ensemble, not three copies
    assert model.tokenizer(x_num, x_cat).shape == (6, 5, 3 * 16)  # every member's tokens in one layer's output
    model.train()
    assert ModuleValidator.validate(model, strict=False) == []
    gsm = GradSampleModule(model, loss_reduction="sum")
    gsm(x_num, x_cat).sum().backward()
    for name, p in gsm.named_parameters():
        assert p.grad_sample is not None and p.grad_sample.shape[0] == 6, name
    # one member keeps the parameter names runs were saved with before ensembles existed
    single = FTTransformer(TabularConfig(n_num=3, cat_cardinalities=[2, 5], d_model=16, n_layer=1, n_head=2))
    assert {k.split(".")[0] for k in single.state_dict()} == {"tokenizer", "cls", "blocks", "norm", "head"}
    with pytest.raises(ValueError, match="n_members"):
        TabularConfig(n_num=2, n_members=0)


def test_plr_tokens_learn_alternating_bands_of_one_column(tmp_path):
    """A label that alternates along one column (sin(3 x0) > 0: five bands over the data's range, no other signal):
    the periodic features must carry it into the token. Here the plr model reached test ROC-AUC 0.993 (linear tokens
    0.982 at the same settings); a broken periodic path (frequencies stuck, columns mixed up) scores ~0.5."""
    from sklearn.metrics import roc_auc_score

    from guimo.train.config import TrainConfig
    from guimo.train.loop import fit

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2100, 2)).astype(np.float32)
    y = (np.sin(3 * x[:, 0]) > 0).astype(np.int64)
    cats = np.zeros((2100, 0), dtype=np.int64)
    torch.manual_seed(0)
    model = FTTransformer(TabularConfig(n_num=2, d_model=16, n_layer=1, n_head=2, dropout=0.0, num_embedding="plr"))
    cfg = TrainConfig(max_steps=250, batch_size=64, lr=3e-3, warmup_steps=20, eval_every=0, checkpoint_every=0)
    fit(model, Rows(x[:1500], cats[:1500], y[:1500]),
        lambda m, b: imbalance_loss(m(b["x_num"], b["x_cat"]), b["y"], task="binary", kind="none"), cfg, out_dir=tmp_path, seed=0)
    assert roc_auc_score(y[1500:], predict_logits(model, x[1500:], cats[1500:])[:, 0]) > 0.97


def test_plr_and_the_linear_skip_keep_the_shape_and_the_old_names():
    cfg = dict(n_num=3, cat_cardinalities=[2, 5], d_model=16, n_layer=1, n_head=2)
    plain = FTTransformer(TabularConfig(**cfg))
    both = FTTransformer(TabularConfig(**cfg, num_embedding="plr", linear_skip=True, n_frequencies=4))
    x_num, x_cat = torch.randn(6, 3), torch.randint(0, 2, (6, 2))
    assert both(x_num, x_cat).shape == (6, 1) and both.tokenizer(x_num, x_cat).shape == (6, 5, 16)
    assert both.tokenizer.periodic.weight.shape == (3, 8, 16)  # per column: 2 x 4 periodic features -> 16 channels
    new = set(both.state_dict()) - set(plain.state_dict())
    assert new == {"tokenizer.periodic.frequencies", "tokenizer.periodic.weight", "tokenizer.periodic.bias", "skip.weight", "skip.bias"}
    # the defaults build exactly the model runs were saved with before plr and the skip existed
    assert not any("periodic" in k or "skip" in k for k in plain.state_dict())
    with pytest.raises(ValueError, match="num_embedding"):
        TabularConfig(**cfg, num_embedding="periodic")


@pytest.mark.parametrize("tokens", [{}, {"num_embedding": "plr", "linear_skip": True}])
def test_an_ensembles_attributions_are_complete(tokens):
    """Integrated Gradients through the shared tokenizer's output covers every member (guimo.explain.integrated), and
    the linear skip, which reads the tokens rather than the raw columns."""
    from guimo.explain.integrated import integrated_gradients

    torch.manual_seed(1)
    model = FTTransformer(TabularConfig(n_num=3, cat_cardinalities=[4], d_model=16, n_layer=1, n_head=2, dropout=0.0, n_members=3, **tokens))
    with torch.no_grad():  # a head that outputs more than noise, so there is a difference to explain
        for member in model.members:
            member.head.weight.mul_(50)
    x_num, x_cat = torch.randn(20, 3) * 2, torch.randint(1, 4, (20, 1))
    a = integrated_gradients(model, x_num, x_cat, (torch.zeros(3), torch.zeros(1, dtype=torch.long)), n_steps=64)
    diff = a.output - a.baseline_output
    assert a.values.shape == (20, 4) and np.abs(diff).max() > 0.01
    assert np.allclose(a.values.sum(axis=1), diff, atol=0.02 * np.abs(diff).max())


@pytest.mark.parametrize("members, n_out", [(1, 1), (3, 1), (3, 4)])
def test_a_linear_warm_start_computes_the_fitted_linear_model(members, n_out):
    """Untrained, the warm-started model is the linear model (every member), over numeric and one-hot columns; a
    column with more categories than the token width cannot be matched exactly, which the docstring says."""
    from guimo.evaluate.baselines_tab import design_matrix
    from guimo.models.tabular import linear_warm_start

    rng = np.random.default_rng(0)
    cards = [3, 7, 2]
    cfg = TabularConfig(n_num=4, cat_cardinalities=cards, n_out=n_out, task="binary" if n_out == 1 else "multiclass", d_model=16,
                        n_head=4, n_members=members, linear_skip=True)
    torch.manual_seed(0)
    model = FTTransformer(cfg).eval()
    coef, intercept = rng.normal(size=(n_out, 4 + sum(cards))), rng.normal(size=n_out)
    linear_warm_start(model, coef, intercept)
    x_num = rng.normal(size=(50, 4)).astype(np.float32)
    x_cat = np.stack([rng.integers(0, k, 50) for k in cards], 1)
    expected = design_matrix(x_num, x_cat, cards) @ coef.T + intercept
    with torch.no_grad():
        got = model.member_logits(torch.from_numpy(x_num), torch.from_numpy(x_cat)).numpy()  # (M, B, n_out)
    # float32 readouts of ~30 token channels per column: eps(float32) x the coefficients' size, with room
    assert np.abs(got - expected[None]).max() < 1e-4 * np.abs(expected).max()
    # the head is zero, so the blocks start contributing nothing; training moves it
    assert not any(s.head.weight.detach().any() for s in model.stacks())
    with pytest.raises(ValueError, match="linear_skip=True"):
        linear_warm_start(FTTransformer(TabularConfig(n_num=4, cat_cardinalities=cards, d_model=16, n_head=4)), coef[:1], intercept[:1])
    with pytest.raises(ValueError, match="do not fit"):
        linear_warm_start(model, coef[:, :5], intercept)


def test_lr_mult_puts_every_parameter_in_its_own_lr_group():
    from guimo.train.config import TrainConfig
    from guimo.train.loop import make_optimizer

    model = FTTransformer(TabularConfig(n_num=2, cat_cardinalities=[3], d_model=16, n_head=4, linear_skip=True, lr_mult=0.4))
    groups = make_optimizer(model, TrainConfig(lr=1e-3), torch.device("cpu")).param_groups
    scaled = [g for g in groups if g.get("lr_mult") == 0.4]
    assert sum(len(g["params"]) for g in scaled) == len(list(model.parameters())) == sum(len(g["params"]) for g in groups)
    # at any lr multiplier the matrices decay and the biases and norm gains do not
    decays = {id(p): g["weight_decay"] for g in scaled for p in g["params"]}
    assert all(decays[id(p)] == (TrainConfig().weight_decay if p.dim() >= 2 else 0.0) for p in model.parameters())
