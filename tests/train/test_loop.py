"""The training loop in-process: schedule, gradient accumulation, early stopping, signals."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal

import pytest
import torch

from guimo.models.transformer import Transformer
from guimo.scenarios.lm import TokenBlocks, lm_loss
from guimo.train.config import TrainConfig
from guimo.train.loop import fit, get_lr
from tests.train.worker import BLOCK, corpus, model_config

TOKENS = corpus(3000)


def _data():
    return TokenBlocks(TOKENS, BLOCK)


def _model(dropout=0.0):
    torch.manual_seed(0)
    return Transformer(model_config(dropout))


def _cfg(**kw) -> TrainConfig:
    base = dict(max_steps=6, batch_size=16, lr=3e-3, warmup_steps=2, eval_every=0, checkpoint_every=0, log_every=1, device="cpu")
    return TrainConfig(**{**base, **kw})


def _log(out):
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


# -- learning-rate schedule --------------------------------------------------------------------


def test_lr_warmup_then_cosine_to_the_floor():
    cfg = TrainConfig(lr=1.0, warmup_steps=10, max_steps=110, min_lr_ratio=0.1)
    assert [get_lr(s, cfg) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert get_lr(10, cfg) == pytest.approx(1.0)
    assert get_lr(60, cfg) == pytest.approx(0.1 + 0.5 * 0.9)  # half way: cos = 0
    assert get_lr(35, cfg) == pytest.approx(0.1 + 0.5 * (1 + math.cos(math.pi / 4)) * 0.9)
    assert get_lr(110, cfg) == pytest.approx(0.1) and get_lr(500, cfg) == pytest.approx(0.1)
    decay = [get_lr(s, cfg) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(decay, decay[1:]))


def test_lr_without_warmup_starts_at_peak():
    cfg = TrainConfig(lr=2e-3, warmup_steps=0, max_steps=100, min_lr_ratio=0.0)
    assert get_lr(0, cfg) == pytest.approx(2e-3) and get_lr(100, cfg) == pytest.approx(0.0)


def test_lr_decays_to_where_training_really_ends():
    cfg = TrainConfig(lr=1.0, warmup_steps=10, max_steps=1000, min_lr_ratio=0.1)
    assert get_lr(110, cfg, max_steps=110) == pytest.approx(0.1)  # max_epochs ended training at step 110
    assert get_lr(20, cfg, time_fraction=1.0) == pytest.approx(0.1)  # the time budget is spent
    assert get_lr(20, cfg, time_fraction=0.5) == pytest.approx(0.1 + 0.5 * 0.9)  # half the time: cos = 0
    assert get_lr(505, cfg, time_fraction=0.1) == pytest.approx(get_lr(505, cfg))  # steps further along
    assert get_lr(5, cfg, time_fraction=0.9) == pytest.approx(0.6)  # warmup is by steps


def test_a_max_epochs_run_ends_its_cosine_at_the_floor(tmp_path):
    fit(_model(), _data(), lm_loss, _cfg(max_steps=1000, max_epochs=1, min_lr_ratio=0.1), out_dir=tmp_path)
    lrs = [r["lr"] for r in _log(tmp_path) if "lr" in r]
    assert len(lrs) == 11 and lrs[-1] < 0.15 * 3e-3  # 11 steps, not 1000: the last one near the 10% floor


# -- gradient accumulation ---------------------------------------------------------------------


def _weights_without_key_bias(model):
    """All parameters except the key slice of each qkv bias.

    Softmax is invariant to a per-query constant, so the key bias has an exactly zero gradient;
    in floats it holds rounding noise that Adam normalises into full-size steps, differently for
    any change in summation order. Every other weight must agree.
    """
    C = model.cfg.d_model
    out = {}
    for name, p in model.named_parameters():
        if name.endswith("attn.qkv.bias"):
            p = torch.cat([p[:C], p[2 * C :]])
        out[name] = p.detach().clone()
    return out


def test_grad_accumulation_2x8_equals_1x16(tmp_path):
    one, two = _model(), _model()
    fit(one, _data(), lm_loss, _cfg(batch_size=16, grad_accum=1), out_dir=tmp_path / "a")
    fit(two, _data(), lm_loss, _cfg(batch_size=16, grad_accum=2), out_dir=tmp_path / "b")
    a, b = _weights_without_key_bias(one), _weights_without_key_bias(two)
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=1e-6, rtol=0, msg=name)
    losses_a = [r["loss"] for r in _log(tmp_path / "a")]
    losses_b = [r["loss"] for r in _log(tmp_path / "b")]
    assert losses_a == pytest.approx(losses_b, abs=1e-6)
    assert losses_a[-1] < losses_a[0]  # it did train


def test_batch_that_does_not_split_is_refused():
    with pytest.raises(ValueError, match="multiple of grad_accum"):
        _cfg(batch_size=10, grad_accum=4)


# -- early stopping ----------------------------------------------------------------------------


def test_early_stopping_with_patience_restores_best_weights(tmp_path):
    scripted = iter([5.0, 4.0, 4.5, 4.6, 4.7, 4.8])
    snapshots = {}

    def evaluate(model):
        step = len(snapshots) * 2 + 2
        snapshots[step] = {k: v.clone() for k, v in model.state_dict().items()}
        return {"loss": next(scripted)}

    model = _model()
    cfg = _cfg(max_steps=20, eval_every=2, patience=2)
    result = fit(model, _data(), lm_loss, cfg, out_dir=tmp_path, evaluate=evaluate)
    assert (result.steps, result.stopped_early, result.best_step, result.best_metric) == (8, True, 4, 4.0)
    for k, v in model.state_dict().items():
        assert torch.equal(v, snapshots[4][k]), k
    evals = [r for r in _log(tmp_path) if "eval" in r]
    assert [(r["step"], r["best"]) for r in evals] == [(2, True), (4, True), (6, False), (8, False)]
    # re-running the same call does not train on: the stop is part of the checkpoint
    again = fit(_model(), _data(), lm_loss, cfg, out_dir=tmp_path, evaluate=evaluate)
    assert (again.steps, again.stopped_early) == (8, True) and len(snapshots) == 4


def test_higher_is_better_metric(tmp_path):
    scripted = iter([0.2, 0.1, 0.3, 0.25])
    result = fit(_model(), _data(), lm_loss, _cfg(max_steps=8, eval_every=2, patience=3), out_dir=tmp_path,
                 evaluate=lambda m: {"acc": next(scripted)}, metric="acc", higher_is_better=True)
    assert (result.best_step, result.best_metric, result.stopped_early) == (6, 0.3, False)


# -- signals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_writes_a_checkpoint_and_returns(tmp_path, sig):
    before = signal.getsignal(sig)

    def progress(step, info):
        if step == 3:
            os.kill(os.getpid(), sig)

    cfg = _cfg(max_steps=10)
    result = fit(_model(), _data(), lm_loss, cfg, out_dir=tmp_path, progress=progress)
    assert (result.steps, result.interrupted) == (3, True)
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step-*")) == ["step-0000003.json", "step-0000003.safetensors"]
    assert signal.getsignal(sig) is before  # our handler is gone again
    # the same call resumes from step 3 and finishes
    resumed = fit(_model(), _data(), lm_loss, cfg, out_dir=tmp_path)
    assert (resumed.steps, resumed.interrupted) == (10, False)
    assert [r["step"] for r in _log(tmp_path)] == list(range(1, 11))


def test_max_time_budget_checkpoints_and_stops(tmp_path):
    result = fit(_model(), _data(), lm_loss, dataclasses.replace(_cfg(max_steps=50), max_time_s=1e-9), out_dir=tmp_path)
    assert result.steps == 1 and (tmp_path / "checkpoints" / "step-0000001.json").exists()


# -- data order, epochs, precision ---------------------------------------------------------------


class _Recording:
    """Wraps a train set and records which examples each step's batch held."""

    def __init__(self, inner):
        self.inner, self.tokens_per_example, self.seen = inner, inner.tokens_per_example, []

    def __len__(self):
        return len(self.inner)

    def batch(self, indices):
        self.seen.append(list(indices))
        return self.inner.batch(indices)


def test_each_epoch_visits_every_example_once_in_a_seeded_order(tmp_path):
    data = _Recording(_data())  # 187 blocks -> 11 full batches of 16 per epoch
    result = fit(_model(), data, lm_loss, _cfg(max_steps=100, max_epochs=2), out_dir=tmp_path / "a")
    assert result.steps == 22 and result.examples_seen == 22 * 16
    epoch1, epoch2 = sum(data.seen[:11], []), sum(data.seen[11:], [])
    assert len(set(epoch1)) == len(epoch1) == 176 and len(set(epoch2)) == 176
    assert epoch1 != epoch2  # reshuffled
    again = _Recording(_data())
    fit(_model(), again, lm_loss, _cfg(max_steps=100, max_epochs=2), out_dir=tmp_path / "b")
    assert again.seen == data.seen  # same seed, same order


def test_auto_precision_is_fp32_on_cpu():
    from guimo.device import resolve_precision

    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"


def test_bf16_autocast_trains_with_fp32_master_weights(tmp_path):
    from guimo.device import cpu_supports_bf16

    if not cpu_supports_bf16():
        pytest.skip("this CPU has no native bf16 matmul (avx512_bf16/AMX)")
    model = _model()
    fit(model, _data(), lm_loss, _cfg(max_steps=12, precision="bf16", lr=1e-2), out_dir=tmp_path)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    losses = [r["loss"] for r in _log(tmp_path)]
    assert losses[-1] < losses[0] - 0.3, losses
