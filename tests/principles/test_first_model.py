"""The corrected first training script: data, learning, safetensors, and the stacked seed trainer."""

from __future__ import annotations

import numpy as np
import pytest

from guimo.errors import GuimoError
from guimo.principles.first_model import (
    RELIABLE, FirstModelConfig, load_model, make_dataset, search, train, train_seeds, train_stack,
)


def test_datasets_are_what_they_claim():
    X, y = make_dataset("linear", 300, seed=1)
    assert X.shape == (300, 2) and y.shape == (300, 1) and X.dtype == np.float32
    margin = X.sum(axis=1) / np.sqrt(2)
    assert np.all(np.abs(margin) >= 0.1 - 1e-6)  # separable with a margin
    assert np.array_equal(y[:, 0] == 1, margin > 0)
    X, y = make_dataset("xor", 400, seed=1)
    assert np.array_equal(y[:, 0] == 1, X[:, 0] * X[:, 1] < 0)  # the noise never crosses an axis here
    assert 0.4 < y.mean() < 0.6
    a, _ = make_dataset("xor", 50, seed=2)
    b, _ = make_dataset("xor", 50, seed=2)
    assert np.array_equal(a, b)


def test_corrected_script_learns_the_linear_set_and_saves_safetensors(tmp_path):
    import torch

    r = train("linear", seed=0, out=tmp_path)
    assert r.final_accuracy == 1.0 and r.losses[-1] < r.losses[0]
    assert len(r.losses) == len(r.accuracies) == 100
    assert r.path == tmp_path / "model.safetensors" and r.path.read_bytes()[:8] != b"PK\x03\x04"  # not a torch zip
    model = load_model(r.path, hidden=2)
    X, y = make_dataset("linear")
    with torch.no_grad():
        acc = ((model(torch.from_numpy(X)) > 0).float() == torch.from_numpy(y)).float().mean().item()
    assert acc == 1.0


def test_stacked_training_reproduces_the_plain_script_even_with_padding_and_mixed_lrs():
    short_tiny = FirstModelConfig(hidden=2, lr=0.001, epochs=15)
    short_wide = FirstModelConfig(hidden=8, lr=0.01, epochs=15)
    (tiny, _), (wide, _) = train_stack([("xor", short_tiny), ("linear", short_wide)], seeds=[7])
    for study, dataset, cfg in ((tiny, "xor", short_tiny), (wide, "linear", short_wide)):
        plain = train(dataset, seed=7, config=cfg)
        np.testing.assert_allclose(study.mean_losses, plain.losses, rtol=1e-4)
        assert study.final_accuracies == [plain.final_accuracy]


def test_reliable_configuration_fits_both_datasets_on_every_seed():
    for study, _ in train_stack([("linear", RELIABLE), ("xor", RELIABLE)], list(range(20))):
        assert study.perfect == 20, (study.dataset, study.final_accuracies)


def test_the_articles_tiny_net_rarely_fits_xor():
    study, _ = train_seeds("xor", list(range(20)), FirstModelConfig())
    assert study.perfect <= 5 and np.mean(study.final_accuracies) < 0.9


def test_search_reads_off_smaller_epoch_counts_exactly():
    grid = {"hidden": (2, 8), "lr": (0.01,), "epochs": (4, 8)}
    rows = search("xor", seeds=3, grid=grid)
    assert [(r["hidden"], r["epochs"]) for r in rows] == [(2, 4), (2, 8), (8, 4), (8, 8)]
    direct, _ = train_seeds("xor", [0, 1, 2], FirstModelConfig(hidden=8, lr=0.01, epochs=4))
    assert rows[2]["mean_accuracy"] == pytest.approx(np.mean(direct.final_accuracies), abs=1e-9)


@pytest.mark.parametrize("cfg", [{"hidden": 0}, {"epochs": 0}, {"batch_size": 0}, {"lr": 0.0}, {"lr": float("inf")}])
def test_bad_config_raises(cfg):
    with pytest.raises(GuimoError):
        train("xor", config=FirstModelConfig(**cfg))


def test_unknown_dataset_raises():
    with pytest.raises(GuimoError, match="unknown dataset"):
        make_dataset("spiral")
