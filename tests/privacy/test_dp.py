"""DP-SGD in the one training loop: the spent budget, learning under noise, Poisson batches, clean models after
training, refusals, and a non-private run left exactly as it was."""

from __future__ import annotations

import json

import pytest
import torch

from guimo.errors import GuimoError
from guimo.models.tabular import FTTransformer, TabularConfig, imbalance_loss
from guimo.privacy.dp import PrivacyConfig, make_private, read_spent
from guimo.train.config import TrainConfig
from guimo.train.loop import fit

N_TRAIN, N_TEST = 600, 400


class Rows:
    """A seeded table: 3 numeric columns and one categorical (4 levels); the label is a noisy linear rule."""

    tokens_per_example = 1

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x_num = torch.randn(n, 3, generator=g)
        self.x_cat = torch.randint(0, 4, (n, 1), generator=g)
        cat_effect = torch.tensor([-1.5, -0.5, 0.5, 1.5])[self.x_cat[:, 0]]
        logit = 2.0 * self.x_num[:, 0] - 1.5 * self.x_num[:, 1] + cat_effect
        self.y = (torch.rand(n, generator=g) < torch.sigmoid(2 * logit)).float()

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, indices: list[int]) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return {"x_num": self.x_num[idx], "x_cat": self.x_cat[idx], "y": self.y[idx]}


def loss_fn(model, batch):
    return imbalance_loss(model(batch["x_num"], batch["x_cat"]), batch["y"], task="binary", kind="none")


def model():
    torch.manual_seed(0)
    return FTTransformer(TabularConfig(n_num=3, cat_cardinalities=[4], d_model=16, n_layer=1, n_head=2, dropout=0.0))


def cfg(**kw) -> TrainConfig:
    base = dict(max_steps=120, batch_size=64, lr=3e-3, warmup_steps=5, eval_every=0, checkpoint_every=0, log_every=10, device="cpu",
                weight_decay=0.0)
    return TrainConfig(**{**base, **kw})


def accuracy(m, data: Rows) -> float:
    m.eval()
    with torch.no_grad():
        return ((m(data.x_num, data.x_cat)[:, 0] > 0).float() == data.y).float().mean().item()


@pytest.fixture(scope="module")
def dp_run(tmp_path_factory):
    """One DP training at epsilon 3 (PRV), shared by the tests that read its outcome."""
    out = tmp_path_factory.mktemp("dp")
    m = model().eval()  # as the pipeline hands it over: loaded from init.safetensors in eval mode
    result = fit(m, Rows(N_TRAIN, 0), loss_fn, cfg(lr=1e-2), out_dir=out, seed=0, privacy=PrivacyConfig(epsilon=3.0, max_grad_norm=1.0))
    return m, result, out


def test_privacy_spent_matches_the_requested_epsilon(dp_run):
    _, result, out = dp_run
    spent = result.privacy
    # the noise multiplier is chosen so that the planned steps spend at most epsilon, within the search's 0.01
    assert spent["steps"] == spent["planned_steps"] == 120
    assert 3.0 - 0.05 <= spent["epsilon"] <= 3.0 + 1e-6
    assert spent["delta"] == pytest.approx(1 / N_TRAIN)
    assert spent["sample_rate"] == pytest.approx(1 / 10)  # ceil(600 / 64) batches per pass
    assert spent["noise_multiplier"] > 0.5  # real noise, not a no-op
    assert json.loads((out / "privacy.json").read_text()) == spent == read_spent(out)


def test_rdp_accountant_also_meets_its_target(tmp_path):
    m = model()
    result = fit(m, Rows(N_TRAIN, 0), loss_fn, cfg(max_steps=20), out_dir=tmp_path, seed=0,
                 privacy=PrivacyConfig(epsilon=1.0, delta=1e-5, accountant="rdp"))
    assert result.privacy["accountant"] == "rdp" and result.privacy["delta"] == 1e-5
    assert 1.0 - 0.05 <= result.privacy["epsilon"] <= 1.0 + 1e-6


def test_a_dp_run_still_learns(dp_run):
    m, _, _ = dp_run
    test = Rows(N_TEST, 1)
    majority = max(test.y.mean().item(), 1 - test.y.mean().item())
    assert accuracy(m, test) > majority + 0.15


def test_the_model_leaves_dp_training_without_opacus_hooks(dp_run):
    m, _, _ = dp_run
    for name, module in m.named_modules():
        assert not module._forward_hooks and not module._backward_hooks and not module._forward_pre_hooks, name
    assert not any(hasattr(p, "grad_sample") and p.grad_sample is not None for p in m.parameters())
    fresh = model()
    assert set(m.state_dict()) == set(fresh.state_dict())  # the same weights file as a plain run


def test_noise_matters_a_larger_epsilon_needs_less_of_it():
    sigmas = []
    for eps in (1.0, 8.0):
        m = model()
        opt = torch.optim.AdamW(m.parameters())
        dp = make_private(PrivacyConfig(epsilon=eps), m, opt, n_examples=1000, batch_size=50, max_steps=200, seed=0)
        sigmas.append(dp.noise_multiplier)
        dp.close()
    assert sigmas[0] > sigmas[1] > 0


def test_poisson_batches_are_seeded_per_step_with_the_expected_size():
    m = model()
    dp = make_private(PrivacyConfig(epsilon=3.0), m, torch.optim.AdamW(m.parameters()), n_examples=2000, batch_size=100, max_steps=50, seed=7)
    sizes = [len(dp.batch_indices(s)) for s in range(200)]
    assert sum(sizes) / len(sizes) == pytest.approx(100, rel=0.05)  # q = 1/20 of 2000 rows
    assert len(set(sizes)) > 10  # sizes vary: each row is drawn on its own, not a fixed-size batch
    assert dp.batch_indices(3) == dp.batch_indices(3) != dp.batch_indices(4)  # a resumed run draws the same rows
    dp.close()


def test_an_empty_poisson_draw_is_a_noise_only_step(tmp_path):
    """A tiny expected batch makes empty draws likely; the step still counts and the log stays valid JSON."""
    result = fit(model(), Rows(40, 0), loss_fn, cfg(max_steps=30, batch_size=1, log_every=1), out_dir=tmp_path, seed=0,
                 privacy=PrivacyConfig(epsilon=8.0))
    assert result.privacy["steps"] == 30
    losses = [json.loads(line)["loss"] for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert 0.0 in losses and all(loss == loss for loss in losses)  # at least one empty draw here; no NaN


def test_a_run_without_epsilon_is_unchanged(tmp_path):
    """privacy=PrivacyConfig() (epsilon None) is the plain loop: the same weights bit for bit, no privacy.json."""
    a, b = model(), model()
    fit(a, Rows(N_TRAIN, 0), loss_fn, cfg(max_steps=15), out_dir=tmp_path / "a", seed=0)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "privacy.json").write_text("{}")  # left by an earlier DP training in the same run
    result = fit(b, Rows(N_TRAIN, 0), loss_fn, cfg(max_steps=15), out_dir=tmp_path / "b", seed=0, privacy=PrivacyConfig())
    assert result.privacy is None and not (tmp_path / "b" / "privacy.json").exists()
    for (name, ta), tb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(ta, tb), name


def test_dp_refuses_what_it_cannot_do(tmp_path):
    with pytest.raises(GuimoError, match="grad_accum=1"):
        fit(model(), Rows(N_TRAIN, 0), loss_fn, cfg(grad_accum=2), out_dir=tmp_path, seed=0, privacy=PrivacyConfig(epsilon=3.0))
    with pytest.raises(GuimoError, match="BatchNorm"):
        bn = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
        make_private(PrivacyConfig(epsilon=3.0), bn, torch.optim.AdamW(bn.parameters()), n_examples=100, batch_size=10, max_steps=10, seed=0)
    with pytest.raises(GuimoError, match="too few"):
        m = model()
        make_private(PrivacyConfig(epsilon=3.0), m, torch.optim.AdamW(m.parameters()), n_examples=1, batch_size=1, max_steps=10, seed=0)


@pytest.mark.parametrize("bad", [dict(epsilon=0.0), dict(epsilon=3.0, delta=1.0), dict(epsilon=3.0, max_grad_norm=0.0), dict(epsilon=3.0, accountant="gdp")])
def test_bad_privacy_settings_are_refused(bad):
    with pytest.raises(ValueError, match="privacy"):
        PrivacyConfig(**bad)


def test_a_health_run_reports_the_privacy_spent_and_refuses_a_search(tmp_path):
    """`guimo run health --set privacy.epsilon=3`: metrics.json and the report carry the spent budget; a hyperparameter
    search (whose trials train without DP) is refused rather than allowed to replace the private weights."""
    from guimo.config import apply_overrides
    from guimo.pipeline.runner import run_pipeline
    from guimo.scenarios import get

    sc = get("health")
    base = ["model=tiny", "train.max_steps=20", "train.eval_every=10", "train.checkpoint_every=0", "privacy.epsilon=3"]
    run = run_pipeline("health", apply_overrides(sc.config_cls(), base, sc.presets), tmp_path / "run", quiet=True)
    spent = json.loads((run.path / "metrics.json").read_text())["privacy"]
    assert spent["steps"] == 20 and 2.95 <= spent["epsilon"] <= 3.0 and spent["train_rows"] == 398
    # model.num_embedding=auto trains the linear tokenizer under DP-SGD (plr has no per-sample gradient rule)
    assert json.loads((run.path / "model_config.json").read_text())["num_embedding"] == "linear"
    report = (run.path / "report.md").read_text()
    assert "## Differential privacy" in report and f"({spent['epsilon']:.4f}," in report and "Not covered" in report
    searching = apply_overrides(sc.config_cls(), [*base, "optimize.trials=2"], sc.presets)
    with pytest.raises(GuimoError, match="optimize.trials"):
        run_pipeline("health", searching, tmp_path / "run", quiet=True, from_stage="train")


def test_plr_tokens_are_refused_under_dp_and_auto_falls_back_to_linear():
    from guimo.scenarios.tabular import numeric_embedding

    assert numeric_embedding("auto", 20_000, private=True) == "linear" and numeric_embedding("auto", 20_000) == "plr"
    assert numeric_embedding("auto", 800) == "linear"  # small tables keep the linear tokenizer (measured: no gain there)
    assert numeric_embedding("linear", 20_000) == "linear" and numeric_embedding("plr", 800) == "plr"
    with pytest.raises(GuimoError, match="num_embedding=plr cannot train under DP-SGD"):
        numeric_embedding("plr", 800, private=True)


def test_platt_scaling_recovers_an_offset_logit():
    """A DP model's logits shifted off the class prior (clipping's majority pull) and squeezed: a temperature alone
    keeps every row on one side of 0.5; the fitted shift puts the boundary back where the labels are."""
    import numpy as np

    from guimo.privacy.dp import fit_shift_and_temperature

    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.37).astype(float)
    z = -2.3 + 0.05 * (2 * y - 1) + 0.02 * rng.normal(size=400)  # separable, but every logit far below 0
    assert ((z > 0) == y).mean() == pytest.approx(1 - y.mean())  # as served with a temperature only: all negative
    shift, temperature = fit_shift_and_temperature(z, y)
    assert shift == pytest.approx(-2.3, abs=0.02) and 0 < temperature < 0.05
    assert (((z - shift) / temperature > 0) == y).mean() > 0.95
    assert fit_shift_and_temperature(z, np.zeros(400)) == (0.0, 1.0)  # one class: nothing to fit
