"""Settings chosen from the user's data (`guimo.scenarios.recommend_defaults`), and a plain `--data` run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from guimo.config import apply_overrides, explicit_keys
from guimo.scenarios import get
from guimo.scenarios.recommend_defaults import DataStats, choose_defaults, windows

SCENARIO = get("recommend")


def stats(items: int, users: int = 5000, mean_len: float = 9.0, embedded: bool = False, seed: int = 0) -> DataStats:
    lengths = np.random.default_rng(seed).geometric(1 / mean_len, size=users) + 2  # >= 3 like min_seq_len
    return DataStats(items=items, seq_lengths=lengths, train_lengths=lengths - 2, val_cases=users, embedded=embedded)


def choose(s: DataStats, *overrides: str, set_keys=None):
    cfg = apply_overrides(SCENARIO.config_cls(), ["data.path=x.txt", *overrides], SCENARIO.presets)
    keys = explicit_keys(cfg, {}, list(overrides), SCENARIO.presets) if set_keys is None else set_keys
    return choose_defaults(s, cfg, keys)


def test_the_loss_follows_the_catalogue_size_around_the_threshold():
    threshold = SCENARIO.config_cls().auto.full_softmax_max_items
    below, why_below = choose(stats(threshold))
    above, why_above = choose(stats(threshold + 1))
    assert below.model.loss == "ce" and "model.loss" in why_below
    assert above.model.loss == "sampled" and above.model.in_batch_negatives is True
    moved, _ = choose(stats(5000), "auto.full_softmax_max_items=1000")  # the threshold is a config field
    assert moved.model.loss == "sampled"


def test_explicit_settings_are_never_overridden_and_rules_read_them():
    s = stats(60_000)
    cfg, why = choose(s, "model.loss=ce", "train.lr=0.01", "train.batch_size=128", "model.max_len=20", "model.dropout=0.1")
    assert (cfg.model.loss, cfg.train.lr, cfg.train.batch_size, cfg.model.max_len, cfg.model.dropout) == ("ce", 0.01, 128, 20, 0.1)
    assert not {"model.loss", "train.lr", "train.batch_size", "model.max_len", "model.dropout"} & set(why)
    assert cfg.model.input_scale is False  # the sampled-softmax block follows the user's full softmax
    spe = windows(s.train_lengths, 20)[0] // 128  # the budget is counted in the user's batch and context
    assert cfg.train.max_steps == int(cfg.train.max_epochs * spe) and cfg.train.eval_every % spe == 0
    # a value equal to the default still counts as set when the user named it
    same, why_same = choose(s, "train.lr=0.01")
    assert same.train.lr == 0.01 and "train.lr" not in why_same
    # a step budget the user set is not cut by an epoch cap; an epoch budget sets the steps
    steps, why_steps = choose(s, "train.max_steps=5000")
    assert steps.train.max_steps == 5000 and steps.train.max_epochs is None and "train.max_epochs" not in why_steps
    epochs, _ = choose(s, "train.max_epochs=3")
    spe = windows(s.train_lengths, epochs.model.max_len)[0] // epochs.train.batch_size
    assert epochs.train.max_epochs == 3 and epochs.train.max_steps == 3 * spe


def test_budget_is_an_epoch_cap_with_early_stopping_and_every_choice_says_why():
    s = stats(60_000, users=40_000, mean_len=8.0)
    cfg, why = choose(s)
    n_windows, n_targets = windows(s.train_lengths, cfg.model.max_len)
    spe = n_windows // cfg.train.batch_size
    lo, hi = cfg.auto.epoch_bounds
    assert lo <= cfg.train.max_epochs <= hi and cfg.train.max_steps == cfg.train.max_epochs * spe >= min(cfg.auto.min_steps, hi * spe)
    assert cfg.train.patience > 0 and cfg.train.eval_every == spe  # validate each epoch, stop on validation
    assert cfg.model.max_len == 50  # 90% of these users are far below 50
    assert 0.5 < cfg.train.batch_size * n_targets / n_windows / cfg.auto.batch_positions < 2
    assert all(isinstance(w, str) and w for w in why.values())
    long, _ = choose(stats(2000, users=900, mean_len=150.0))
    assert long.model.max_len == 200 and long.model.loss == "ce" and long.train.eval_every >= long.auto.eval_min_steps


def test_the_marketplace_keeps_its_recipe_and_auto_can_be_switched_off():
    cfg = SCENARIO.config_cls()
    chosen, why = choose_defaults(stats(3000, embedded=True), cfg, set())
    assert set(why) == {"model.loss"} and chosen == cfg  # only the loss rule, which agrees with the recipe
    off = apply_overrides(cfg, ["auto.enabled=false"])
    assert choose_defaults(stats(60_000), off, {"auto.enabled"}) == (off, {})


def test_explicit_keys_come_from_the_file_the_overrides_and_presets():
    cfg = SCENARIO.config_cls()
    keys = explicit_keys(cfg, {"train": {"lr": 0.1}, "model": "small"}, ["eval.val_cases=None", "data.k_core=2"], SCENARIO.presets)
    assert {"train.lr", "eval.val_cases", "data.k_core", "model.d_model", "model.max_len"} <= keys
    assert "train.batch_size" not in keys


def _write_log(path, users: int = 150, items: int = 40, length: int = 12, seed: int = 0) -> None:
    """A 'user item' file with no sequential signal: validation peaks early, so early stopping must act."""
    rng = np.random.default_rng(seed)
    path.write_text("".join(f"{u} {rng.integers(1, items + 1)}\n" for u in range(1, users + 1) for _ in range(length)))


def test_a_plain_data_run_reports_its_choices_and_stops_early(tmp_path, capsys):
    from guimo.cli import main

    data = tmp_path / "log.txt"
    _write_log(data)
    out = tmp_path / "run"
    rc = main(["run", "recommend", "--data", str(data), "--out", str(out), "--to", "train",
               "--set", "model.d_model=16", "--set", "auto.min_steps=400", "--set", "auto.patience=2"])
    assert rc == 0
    printed = capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    auto = manifest["stages"]["preprocess"]["auto_settings"]
    assert {"model.loss", "train.max_epochs", "train.max_steps", "train.patience", "train.batch_size"} <= set(auto)
    assert "model.d_model" not in auto and "model.d_model" in manifest["set_keys"]
    for key in ("train.max_epochs", "train.batch_size", "model.loss"):
        assert f"chose {key}=" in printed, printed
    assert manifest["config"]["train"]["max_steps"] == SCENARIO.config_cls().train.max_steps  # the user's config stays as given
    train = manifest["stages"]["train"]
    assert train["stopped_early"] is True and train["steps"] < auto["train.max_steps"]["value"], train
    model_cfg = json.loads((out / "model_config.json").read_text())
    assert model_cfg["dropout"] == auto["model.dropout"]["value"] and model_cfg["d_model"] == 16
