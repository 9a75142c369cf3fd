"""The training loop in-process: schedule, reproducibility, time budgets, gradient accumulation,
early stopping, signals."""

from __future__ import annotations

import json
import math
import os
import signal

import pytest
import torch

from guimo.models.transformer import Transformer
from guimo.scenarios.lm import TokenBlocks, lm_loss
from guimo.train import plan
from guimo.train.config import TrainConfig
from guimo.train.loop import fit, get_lr
from tests.numerics import adam_tolerance, assert_all_close, assert_all_equal, assert_close
from tests.train.worker import BLOCK, corpus, lm_loss_any_dtype, model_config

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


def _steps(out):
    """The step records of a train log (not its validations or plan records)."""
    return [r for r in _log(out) if "loss" in r]


def _weights(model):
    return {n: t.detach().clone() for n, t in model.state_dict().items()}


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
    assert get_lr(110, cfg, max_steps=110) == pytest.approx(0.1)  # max_epochs (or a time budget) ended training at step 110
    assert get_lr(60, cfg, max_steps=110) == pytest.approx(0.1 + 0.5 * 0.9)  # half way there: cos = 0
    assert get_lr(5, cfg, max_steps=110) == pytest.approx(0.6)  # warmup is by steps


# -- reproducibility and time budgets ------------------------------------------------------------


class _Slow:
    """A train set whose every batch takes ``delay`` seconds more (a slow machine, in a test)."""

    def __init__(self, inner, delay: float) -> None:
        self.inner, self.delay, self.tokens_per_example = inner, delay, inner.tokens_per_example

    def __len__(self):
        return len(self.inner)

    def batch(self, indices):
        import time

        time.sleep(self.delay)
        return self.inner.batch(indices)


@pytest.mark.numerics
def test_the_same_training_twice_gives_bit_identical_weights(tmp_path):
    """Same seed, data and machine: every weight bit for bit, with dropout on (the RNG matters) and a
    time budget (~80 steps of 0.05 s) that the 14-step cap binds even on a machine 5x slower. The old
    loop decayed the lr by max(step progress, elapsed / max_time_s): right after warmup the steps'
    progress is 0, so the clock's jitter reached the lr and the weights."""
    cfg = _cfg(max_steps=14, max_time_s=4.0)
    first, second = _model(dropout=0.1), _model(dropout=0.1)
    a = fit(first, _Slow(_data(), 0.05), lm_loss, cfg, out_dir=tmp_path / "a")
    b = fit(second, _Slow(_data(), 0.05), lm_loss, cfg, out_dir=tmp_path / "b")
    assert (a.steps, a.max_steps, b.max_steps, a.max_steps_from) == (14, 14, 14, "max_time_s")
    assert_all_equal(_weights(second), _weights(first))
    assert [(r["loss"], r["lr"]) for r in _steps(tmp_path / "b")] == [(r["loss"], r["lr"]) for r in _steps(tmp_path / "a")]
    assert [r["lr"] for r in _steps(tmp_path / "a")] == [get_lr(s, cfg, max_steps=14) for s in range(14)]  # steps alone


def test_a_time_budget_picks_the_step_count_once_records_it_and_a_resume_keeps_it(tmp_path):
    """max_time_s times the first steps, fixes the count, writes it into the log and every checkpoint;
    interrupted and resumed on a machine 10x faster, the run still ends at that count (no re-estimate)
    with the schedule that count gives."""
    cfg = _cfg(max_steps=400, warmup_steps=5, max_time_s=3.0, checkpoint_every=5)
    stop_at = decided_at = plan.CALIBRATION_STEPS + 1  # interrupted right after the choice, whatever it was

    def interrupt(step, info):
        if step == stop_at:
            os.kill(os.getpid(), signal.SIGINT)

    first = fit(_model(), _Slow(_data(), 0.05), lm_loss, cfg, out_dir=tmp_path, progress=interrupt)
    assert first.interrupted and first.steps == stop_at
    decided = [r for r in _log(tmp_path) if "plan" in r and r["plan"]["decided"]]
    assert len(decided) == 1 and decided[0]["step"] == decided_at
    chosen = decided[0]["plan"]
    # >= 0.05 s per step into the ~2.4 s left of 3 s: about 60 steps here (fewer on a busy machine),
    # far below the 400 cap that re-estimating without the delay would reach
    assert chosen["source"] == "max_time_s" and chosen["decided_at"] == decided_at and stop_at <= chosen["max_steps"] < 100, chosen
    assert chosen["step_s"] >= 0.05
    assert first.max_steps == chosen["max_steps"] and first.max_steps_from == "max_time_s"
    for meta in (tmp_path / "checkpoints").glob("step-*.json"):
        record = json.loads(meta.read_text())["plan"]
        assert record["max_steps"] == (chosen["max_steps"] if record["decided"] else 400), meta

    resumed = fit(_model(), _Slow(_data(), 0.0), lm_loss, cfg, out_dir=tmp_path)  # re-estimating here would pick ~400
    n = chosen["max_steps"]
    assert (resumed.steps, resumed.max_steps, resumed.max_steps_from) == (n, n, "max_time_s")
    assert [r["step"] for r in _steps(tmp_path)] == list(range(1, n + 1))
    # the schedule: the cap's until the count was chosen, then the chosen count's, down to its end
    expected = [get_lr(s, cfg, max_steps=400 if s < decided_at else n) for s in range(n)]
    assert [r["lr"] for r in _steps(tmp_path)] == pytest.approx(expected, rel=1e-12)
    assert [r["max_steps"] for r in _steps(tmp_path)] == [400] * (decided_at - 1) + [n] * (n - decided_at + 1)


def test_a_spent_budget_still_trains_the_timed_steps(tmp_path):
    """A budget spent before the count is chosen ends the run where it is, validated and checkpointed."""
    calls = []
    result = fit(_model(), _data(), lm_loss, _cfg(max_steps=50, max_time_s=1e-9), out_dir=tmp_path,
                 evaluate=lambda m: calls.append(1) or {"loss": 1.0})
    n = plan.CALIBRATION_STEPS + 1
    assert (result.steps, result.max_steps, result.best_step) == (n, n, n) and len(calls) == 1
    assert (tmp_path / "checkpoints" / f"step-{n:07d}.json").exists()


def test_a_budget_that_cannot_bind_is_not_timed(tmp_path):
    result = fit(_model(), _data(), lm_loss, _cfg(max_steps=plan.CALIBRATION_STEPS + 1, max_time_s=1e-9), out_dir=tmp_path)
    assert (result.steps, result.max_steps_from, result.step_s) == (plan.CALIBRATION_STEPS + 1, "max_steps", None)


def test_a_max_epochs_run_ends_its_cosine_at_the_floor(tmp_path):
    fit(_model(), _data(), lm_loss, _cfg(max_steps=1000, max_epochs=1, min_lr_ratio=0.1), out_dir=tmp_path)
    lrs = [r["lr"] for r in _log(tmp_path) if "lr" in r]
    assert len(lrs) == 11 and lrs[-1] < 0.15 * 3e-3  # 11 steps, not 1000: the last one near the 10% floor


# -- gradient accumulation ---------------------------------------------------------------------


@pytest.mark.numerics
def test_grad_accumulation_2x8_equals_1x16(tmp_path):
    """Two micro-batches of 8 make the step one batch of 16 makes, checked in float64.

    In float32 the identity cannot be checked tightly on trained weights: Adam divides each
    gradient by its own size, so an element whose gradient cancels to near zero turns the rounding
    of a different summation order into lr-sized steps (3.3e-5 apart on an AVX-512 Xeon, where
    this test once compared float32 weights at atol=1e-6). In float64 the same bound
    (tests.numerics.adam_tolerance) is ~1e-8 and the weights agree to ~1e-13; the logged losses,
    which no optimizer normalises, agree to a float64 tolerance over the batch's tokens.
    """
    cfg = dict(batch_size=16, max_steps=6)
    one, two = _model().double(), _model().double()
    fit(one, _data(), lm_loss_any_dtype, _cfg(**cfg, grad_accum=1), out_dir=tmp_path / "a")
    fit(two, _data(), lm_loss_any_dtype, _cfg(**cfg, grad_accum=2), out_dir=tmp_path / "b")
    a_log, b_log = _steps(tmp_path / "a"), _steps(tmp_path / "b")
    tokens = 16 * BLOCK
    lr_sum = sum(r["lr"] for r in a_log)
    assert_all_close(_weights(two), _weights(one), atol=adam_tolerance(torch.float64, tokens, lr_sum))
    assert_close(torch.tensor([r["loss"] for r in b_log]), torch.tensor([r["loss"] for r in a_log]),
                 dtype=torch.float64, reduction=tokens, name="logged losses")
    assert a_log[-1]["loss"] < a_log[0]["loss"]  # it did train


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


def test_a_validation_window_keeps_the_middle_of_the_best_mean_not_a_lucky_spike(tmp_path):
    scripted = iter([0.2, 0.9, 0.2, 0.6, 0.6, 0.6])  # validations at steps 2, 4, ..., 12; step 4 is a spike
    snapshots = {}

    def evaluate(model):
        snapshots[len(snapshots) * 2 + 2] = {k: v.clone() for k, v in model.state_dict().items()}
        return {"pr_auc": next(scripted)}

    model = _model()
    result = fit(model, _data(), lm_loss, _cfg(max_steps=12, eval_every=2, select_window=3), out_dir=tmp_path, evaluate=evaluate,
                 metric="pr_auc", higher_is_better=True)
    # window means: .2 (kept 2), .55 (4), .43, .57 (6), .47, .6 (10): the last window wins, its middle is step 10
    assert result.best_step == 10 and result.best_metric == pytest.approx(0.6)
    for k, v in model.state_dict().items():
        assert torch.equal(v, snapshots[10][k]), k
    evals = [r for r in _log(tmp_path) if "eval" in r]
    assert [(r["kept_step"], r["best"]) for r in evals] == [(2, True), (4, True), (4, False), (6, True), (8, False), (10, True)]
    assert evals[-1]["window_steps"] == [8, 10, 12] and evals[1]["window_mean"] == pytest.approx(0.55)


def test_select_on_window_of_one_is_the_validation_itself():
    from guimo.train.loop import select_on_window

    assert select_on_window([[2, 0.5]], 4, 0.7, 1) == ([[4, 0.7]], 0.7, 4)
    window, mean, kept = select_on_window([[2, 0.1], [4, 0.2], [6, 0.3]], 8, 0.4, 3)
    assert window == [[4, 0.2], [6, 0.3], [8, 0.4]] and mean == pytest.approx(0.3) and kept == 6
    with pytest.raises(ValueError, match="select_window"):
        TrainConfig(select_window=0)


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
    assert {r["max_steps"] for r in _log(tmp_path)} == {10}  # every step line says where the schedule ends


# -- unreadable checkpoints ----------------------------------------------------------------------


def test_a_torn_newest_checkpoint_falls_back_to_the_previous_one_with_a_warning(tmp_path):
    from guimo.train.checkpoint import SkippedCheckpointWarning

    cfg = _cfg(max_steps=10, checkpoint_every=4)
    straight = _model()
    fit(straight, _data(), lm_loss, cfg, out_dir=tmp_path / "straight")
    stop = lambda step, info: step == 8 and os.kill(os.getpid(), signal.SIGINT)  # noqa: E731
    fit(_model(), _data(), lm_loss, cfg, out_dir=tmp_path / "torn", progress=stop)  # checkpoints at steps 4 and 8
    newest = tmp_path / "torn" / "checkpoints" / "step-0000008.safetensors"
    newest.write_bytes(newest.read_bytes()[:-1000])  # what a kill can leave without an atomic rename
    resumed = _model()
    with pytest.warns(SkippedCheckpointWarning, match=r"step-0000008.safetensors.*resuming from .*step-0000004"):
        result = fit(resumed, _data(), lm_loss, cfg, out_dir=tmp_path / "torn")
    assert result.steps == 10
    assert [r["step"] for r in _steps(tmp_path / "torn")] == list(range(1, 11))
    assert_all_equal(_weights(resumed), _weights(straight))


def test_no_readable_checkpoint_is_an_error_that_keeps_the_log(tmp_path):
    from guimo.errors import GuimoError

    fit(_model(), _data(), lm_loss, _cfg(max_steps=8, checkpoint_every=4), out_dir=tmp_path)
    log_before = (tmp_path / "train_log.jsonl").read_text()
    for meta in (tmp_path / "checkpoints").glob("step-*.json"):
        meta.write_text('{"step": ')
    with pytest.raises(GuimoError, match=r"no checkpoint can be read.*step-0000008.json.*step-0000004.json"):
        fit(_model(), _data(), lm_loss, _cfg(max_steps=12, checkpoint_every=4), out_dir=tmp_path)
    assert (tmp_path / "train_log.jsonl").read_text() == log_before  # not deleted, not truncated


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


class _WithLengths(_Recording):
    """A recorded train set that gives made-up lengths (the blocks themselves are all BLOCK tokens long)."""

    def __init__(self, inner):
        super().__init__(inner)
        self.lengths = [(i * 37) % 101 + 1 for i in range(len(inner))]


def test_group_by_length_batches_similar_lengths_from_the_same_shuffled_runs():
    from guimo.train.loop import group_by_length

    lengths = [(i * 37) % 101 + 1 for i in range(1000)]
    order = torch.randperm(1000, generator=torch.Generator().manual_seed(0)).tolist()
    grouped = group_by_length(order, lengths, batch_size=8, megabatch=10)
    assert sorted(grouped) == sorted(order) and grouped == group_by_length(order, lengths, batch_size=8, megabatch=10)
    for start in range(0, 1000, 80):  # each run of 10 batches holds the same examples, longest first
        run = grouped[start : start + 80]
        assert set(run) == set(order[start : start + 80]) and [lengths[i] for i in run] == sorted((lengths[i] for i in run), reverse=True)

    def padded(o):  # what batches of 8 pad to: each batch's longest row, times its rows
        return sum(8 * max(lengths[i] for i in o[k : k + 8]) for k in range(0, len(o), 8))

    assert padded(grouped) < 0.7 * padded(order)  # measured: 0.61 (lengths spread evenly over 1-101)


def test_group_by_length_trains_in_a_seeded_order_and_needs_lengths(tmp_path):
    data = _WithLengths(_data())
    fit(_model(), data, lm_loss, _cfg(max_steps=22, group_by_length=True), out_dir=tmp_path / "a")
    first = [data.lengths[i] for i in data.seen[0]]
    assert first == sorted(first, reverse=True) and len(set(sum(data.seen[:11], []))) == 176  # still every example once an epoch
    again = _WithLengths(_data())
    fit(_model(), again, lm_loss, _cfg(max_steps=22, group_by_length=True), out_dir=tmp_path / "b")
    assert again.seen == data.seen
    with pytest.raises(ValueError, match="group_by_length needs a training set that gives its examples' lengths"):
        fit(_model(), _data(), lm_loss, _cfg(group_by_length=True), out_dir=tmp_path / "c")


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
