"""The one training loop. Scenarios supply a dataset, a loss and a validation function.

Read it top to bottom: set up (device, seed, optimizer, resume) -> for each step: fetch the
step's global batch, run micro-batches with autocast and accumulate, clip, step, schedule ->
log, validate (early stopping), checkpoint -> finish (restore the best weights).
Determinism: the data order depends only on (seed, epoch), every random draw in the model
uses the global torch RNG, whose state travels in each checkpoint, and the learning rate and
the stop depend on the step alone (a time budget picks the step count once, guimo.train.plan),
so the same command gives the same weights and a resumed CPU run retraces the uninterrupted one
bit for bit.
"""

from __future__ import annotations

import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol, Sequence

import torch
from torch.utils.data import DistributedSampler

from guimo.io import append_jsonl, atomic_save_safetensors, atomic_write_json, atomic_write_text
from guimo.train import checkpoint, distributed, plan
from guimo.train.config import TrainConfig
from guimo.device import autocast, choose_precision, describe, pick_device

if TYPE_CHECKING:
    from guimo.privacy.dp import PrivacyConfig


class TrainSet(Protocol):
    """In-memory examples; ``batch`` gathers a list of example indices into tensors."""

    tokens_per_example: int

    def __len__(self) -> int: ...

    def batch(self, indices: list[int]) -> dict[str, torch.Tensor]: ...

    # optional: ``lengths`` (one int per example, e.g. its token count) lets ``train.group_by_length`` batch similar lengths


def group_by_length(order: list[int], lengths: Sequence[int], batch_size: int, megabatch: int = 50) -> list[int]:
    """``order`` cut into runs of ``megabatch`` batches, each run sorted by length, longest first (HF Trainer's
    ``LengthGroupedSampler``): a batch then holds examples of similar length and pads less, while which examples share
    a run stays as random as ``order``. Deterministic: the same order gives the same result."""
    size = batch_size * megabatch
    out: list[int] = []
    for start in range(0, len(order), size):
        out += sorted(order[start : start + size], key=lambda i: -lengths[i])  # stable: ties keep the shuffled order
    return out


LossFn = Callable[[torch.nn.Module, dict[str, torch.Tensor]], torch.Tensor]
EvalFn = Callable[[torch.nn.Module], dict[str, float]]


@dataclass
class TrainResult:
    steps: int
    examples_seen: int
    tokens_seen: int
    wall_time_s: float
    best_metric: float | None
    best_step: int | None
    stopped_early: bool
    interrupted: bool
    final_loss: float | None
    history: list[dict] = field(default_factory=list)
    device: str = "cpu"  # where it trained (with the GPU's name on CUDA) and in which precision: the manifest says so
    precision: str = "fp32"
    precision_reason: str = ""  # why (guimo.device.choose_precision): auto on a CPU depends on its ISA and a recorded measurement
    max_steps: int = 0  # the step count the schedule ran to (chosen once when a time budget set it)
    max_steps_from: str = "max_steps"  # what fixed it: max_steps, max_epochs or max_time_s
    step_s: float | None = None  # with max_time_s: the mean seconds per step the choice was based on
    privacy: dict | None = None  # DP-SGD runs: the spent (epsilon, delta) and how (guimo.privacy.dp.PrivacySpent)


def get_lr(step: int, cfg: TrainConfig, *, max_steps: int | None = None) -> float:
    """Linear warmup to ``lr`` then cosine decay to ``lr * min_lr_ratio`` where training ends.

    The end is ``max_steps``: ``cfg.max_steps`` unless ``max_epochs`` ends training sooner or a
    time budget chose the count (guimo.train.plan). A function of the step alone, never of the
    clock, so two runs of the same command take the same steps.
    """
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    total = cfg.max_steps if max_steps is None else max_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - floor)


def select_on_window(window: list[list], step: int, value: float, size: int) -> tuple[list[list], float, int]:
    """Early stopping on the mean of the last ``size`` validations: returns the new window (``[step, value]`` pairs,
    the last ``size``), the value the stop compares (their mean) and the step whose weights it would keep (the
    window's middle: the mean is centred there). With ``size`` 1 this is the validation itself.

    Why: a metric measured on few positives (PR-AUC over a few dozen frauds) jumps between validations, so the single
    best one may be a lucky draw. Measured on the generated payments' inner validation (docs/benchmarks/risk.md, fifth
    attempt): a window of 3 changed PR-AUC by +0.020 at one seed and -0.015 at another, so no scenario sets it."""
    window = (window + [[step, value]])[-size:]
    return window, sum(v for _, v in window) / len(window), window[len(window) // 2][0]


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not biases, norms); fused where supported.

    A module with ``lr_multipliers()`` (the transformer under muP) puts those parameters in their
    own groups, whose ``lr_mult`` scales the schedule's lr at every step.

    Fused (one kernel for all parameters) exists on CUDA and, since torch 2.4, on CPU, where
    the default per-parameter loop issues ~8 small ops per tensor: on a busy 2-core machine
    each op waits for both OpenMP threads, and the step took ~2.5x longer than fused (measured).
    """
    scaled = {id(p): m for mod in model.modules() if hasattr(mod, "lr_multipliers") for p, m in mod.lr_multipliers()}
    groups = []
    for mult in [None, *sorted(set(scaled.values()))]:  # the schedule's lr, then e.g. muP's hidden matrices at lr / m
        mine = [p for p in model.parameters() if p.requires_grad and scaled.get(id(p)) == mult]
        extra = {} if mult is None else {"lr_mult": mult}
        # the matrices decay; biases and norm gains never do, at any lr multiplier (decaying a LayerNorm's gain
        # towards 0 only shrinks the activations the next layer reads)
        groups.append({"params": [p for p in mine if p.dim() >= 2], "weight_decay": cfg.weight_decay, **extra})
        groups.append({"params": [p for p in mine if p.dim() < 2], "weight_decay": 0.0, **extra})
    groups = [g for g in groups if g["params"]]
    kwargs = dict(lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    if device.type in ("cuda", "cpu"):
        try:
            return torch.optim.AdamW(groups, **kwargs, fused=True)
        except (RuntimeError, ValueError):  # older torch: fused is CUDA-only
            pass
    return torch.optim.AdamW(groups, **kwargs, foreach=True)


def fit(
    model: torch.nn.Module,
    train_set: TrainSet,
    loss_fn: LossFn,
    cfg: TrainConfig,
    *,
    out_dir: Path,
    seed: int = 0,
    evaluate: EvalFn | None = None,
    metric: str = "loss",
    higher_is_better: bool = False,
    progress: Callable[[int, dict], None] | None = None,
    privacy: "PrivacyConfig | None" = None,
) -> TrainResult:
    """Train ``model`` in place and leave the best validated weights in it.

    Writes ``out_dir/checkpoints/step-*.{safetensors,json}``, ``out_dir/checkpoints/best.safetensors``
    and ``out_dir/train_log.jsonl``. Restarting with the same arguments resumes from the newest
    checkpoint, with the step count recorded there. ``progress(step, info)`` is called after every
    optimizer step (for a progress bar; ``info["max_steps"]`` is the current plan).

    ``privacy`` with an ``epsilon`` trains with DP-SGD (guimo.privacy.dp, which says why its accounting
    holds): the same loop, with three differences on that path only: each step's rows are a Poisson draw
    instead of the epoch order, Opacus' optimizer clips per example and adds noise (so the global
    ``grad_clip`` is not applied), and ``out_dir/privacy.json`` records the spent (epsilon, delta). Without
    it nothing here changes.
    """
    device = pick_device(cfg.device)
    dist = distributed.init(device.type)
    precision, precision_reason = choose_precision(cfg.precision, device)
    ckpt_dir, log_path = out_dir / "checkpoints", out_dir / "train_log.jsonl"
    model.to(device)
    optimizer = make_optimizer(model, cfg, device)
    ddp_model = model
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ddp_model = DDP(model, device_ids=[dist.local_rank] if device.type == "cuda" else None)
    step_model = torch.compile(ddp_model) if cfg.compile else ddp_model

    # Each optimizer step consumes one global batch; each process takes 1/world of it.
    per_rank = cfg.batch_size // dist.world_size
    if per_rank * dist.world_size != cfg.batch_size or per_rank % cfg.grad_accum:
        raise ValueError(f"batch_size {cfg.batch_size} must split evenly over {dist.world_size} processes x {cfg.grad_accum} micro-batches")
    micro = per_rank // cfg.grad_accum
    sampler = DistributedSampler(train_set, num_replicas=dist.world_size, rank=dist.rank, shuffle=True, seed=seed, drop_last=True)
    lengths = getattr(train_set, "lengths", None) if cfg.group_by_length else None
    if cfg.group_by_length and lengths is None:
        raise ValueError("train.group_by_length needs a training set that gives its examples' lengths (the text scenarios do)")
    steps_per_epoch = len(sampler) // per_rank
    if steps_per_epoch == 0:
        raise ValueError(f"{len(train_set)} training examples are fewer than one batch of {cfg.batch_size}")
    steps = plan.from_config(cfg, steps_per_epoch)

    state = {"best_metric": None, "best_step": None, "bad_evals": 0, "examples_seen": 0, "elapsed_s": 0.0, "stopped_early": False,
             "window": []}
    window_weights: dict[int, dict[str, torch.Tensor]] = {}  # select_window > 1: the weights of the window's validations
    step = 0
    torch.manual_seed(seed)
    resume = checkpoint.latest(ckpt_dir)  # raises when checkpoints exist but none can be read
    if resume is not None:
        meta = checkpoint.load(resume, model, optimizer, device)
        step = meta["step"]
        state.update({k: meta[k] for k in state if k in meta})
        for name, t in checkpoint.load_extra(resume).items():  # "window.<step>.<param>": the window travels with the checkpoint
            at, key = name.split(".", 2)[1:]
            window_weights.setdefault(int(at), {})[key] = t.to(device)
        recorded = meta.get("plan")
        if recorded and recorded["decided"] and recorded["source"] == steps.source == "max_time_s":
            steps = plan.StepPlan.from_record(recorded)  # the count chosen before the kill, never re-estimated
        if dist.is_main:
            _truncate_log(log_path, step)
    elif dist.is_main and log_path.exists():
        log_path.unlink()  # no checkpoint to resume: the steps it logged will be taken again
    distributed.barrier()
    timer = plan.StepTimer(cfg.max_time_s) if not steps.decided else None
    dp, step_optimizer = None, optimizer  # DP-SGD: Opacus' optimizer wraps the AdamW (checkpoints keep the AdamW)
    if privacy is not None and privacy.enabled:
        from guimo.privacy.dp import make_private

        # noise calibrated to the planned count (an upper bound under a time budget: fewer steps spend less)
        dp = make_private(privacy, model, optimizer, n_examples=len(train_set), batch_size=cfg.batch_size, max_steps=steps.max_steps,
                          seed=seed, world_size=dist.world_size, grad_accum=cfg.grad_accum, compiled=cfg.compile)
        step_optimizer = dp.optimizer

    stop = _StopSignal()
    try:
        t0, result_loss, stopped_early = time.perf_counter() - state["elapsed_s"], None, state["stopped_early"]
        order, order_epoch = None, -1
        while step < steps.max_steps and not stopped_early:  # a resumed early-stopped run stays stopped
            step_start = time.perf_counter()
            epoch, k = divmod(step, steps_per_epoch)
            if epoch != order_epoch:  # the epoch's order depends only on (seed, epoch)
                sampler.set_epoch(epoch)
                order, order_epoch = list(sampler), epoch
                if lengths is not None:
                    order = group_by_length(order, lengths, per_rank)
            batch_idx = order[k * per_rank : (k + 1) * per_rank] if dp is None else dp.batch_indices(step)

            lr = get_lr(step, cfg, max_steps=steps.max_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_mult", 1.0)
            model.train()
            loss_sum = 0.0
            for m in range(cfg.grad_accum):
                rows = batch_idx[m * micro : (m + 1) * micro] if dp is None else batch_idx  # a Poisson draw is one micro-batch
                batch = {n: t.to(device, non_blocking=True) for n, t in train_set.batch(rows).items()}
                sync = m == cfg.grad_accum - 1 or not dist.enabled
                ctx = ddp_model.no_sync() if not sync else _null()
                with ctx, autocast(precision, device):
                    loss = loss_fn(step_model, batch) / cfg.grad_accum
                with ctx:
                    loss.backward()
                loss_sum += loss.item() if rows else 0.0  # an empty Poisson draw (DP) has no loss; its step adds noise only
            if cfg.grad_clip > 0 and dp is None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            step_optimizer.step()
            step_optimizer.zero_grad(set_to_none=True)
            step += 1
            state["examples_seen"] += cfg.batch_size if dp is None else len(batch_idx)
            result_loss = distributed.all_reduce_mean(loss_sum, device) if dist.enabled else loss_sum
            state["elapsed_s"] = time.perf_counter() - t0
            record = {"step": step, "epoch": epoch, "loss": result_loss, "lr": lr, "elapsed_s": round(state["elapsed_s"], 3)}
            decided_now = False
            if timer is not None:
                timer.record(time.perf_counter() - step_start)
                if timer.ready:  # once: rank 0's measurement fixes every rank's count
                    count, step_s = timer.propose(step, state["elapsed_s"], steps.max_steps)
                    count = int(distributed.broadcast_value(float(count), device))
                    steps, timer, decided_now = plan.StepPlan(count, "max_time_s", True, round(step_s, 6), step), None, True
                    record["plan"] = steps.as_record()  # the choice and what it was based on, logged once
            record["max_steps"] = steps.max_steps
            last = step >= steps.max_steps
            if dist.is_main and (step % max(1, cfg.log_every) == 0 or last or decided_now):
                append_jsonl(log_path, record)
            if evaluate is not None and ((cfg.eval_every and step % cfg.eval_every == 0) or last):
                metrics = evaluate(model)
                value, kept = metrics[metric], step
                if cfg.select_window > 1:
                    state["window"], value, kept = select_on_window(state["window"], step, value, cfg.select_window)
                    window_weights[step] = {k: v.detach().clone() for k, v in checkpoint.model_state(model).items()}
                    window_steps = [a for a, _ in state["window"]]
                    window_weights = {at: w for at, w in window_weights.items() if at in window_steps}
                improved = state["best_metric"] is None or (value > state["best_metric"] if higher_is_better else value < state["best_metric"])
                if improved:
                    state.update(best_metric=value, best_step=kept, bad_evals=0)
                    if dist.is_main:
                        weights = checkpoint.model_state(model) if kept == step else window_weights[kept]
                        atomic_save_safetensors(ckpt_dir / "best.safetensors", weights)
                else:
                    state["bad_evals"] += 1
                if dist.is_main:
                    judged = {"window_mean": value, "window_steps": window_steps, "kept_step": kept} if cfg.select_window > 1 else {}
                    append_jsonl(log_path, {"step": step, "eval": metrics, "best": improved, **judged})
                stopped_early = distributed.broadcast_flag(cfg.patience > 0 and state["bad_evals"] >= cfg.patience, device)
                state["stopped_early"] = stopped_early
            if progress is not None:
                progress(step, {**record, "max_steps": steps.max_steps})

            interrupted = distributed.broadcast_flag(stop.requested, device)
            if (cfg.checkpoint_every and step % cfg.checkpoint_every == 0) or interrupted or stopped_early or last:
                if dist.is_main:
                    checkpoint.save(ckpt_dir, step, model, optimizer,
                                    {**state, "epoch": epoch, "batch_in_epoch": k + 1, "plan": steps.as_record()},
                                    extra={f"window.{at}.{name}": t for at, w in window_weights.items() for name, t in w.items()})
                distributed.barrier()
            if interrupted or stopped_early:
                break
    finally:
        stop.restore()
        if dp is not None:
            dp.close()  # the model leaves without Opacus' hooks
    spent = dp.spent(step).to_dict() if dp is not None else None
    if dist.is_main and spent is not None:
        atomic_write_json(out_dir / "privacy.json", spent)
    elif dist.is_main:
        (out_dir / "privacy.json").unlink(missing_ok=True)  # retrained without DP: an earlier DP account no longer applies

    if evaluate is not None and (ckpt_dir / "best.safetensors").exists():
        from safetensors.torch import load_file

        checkpoint.load_model_state(model, {k: v.to(device) for k, v in load_file(str(ckpt_dir / "best.safetensors")).items()})
    return TrainResult(
        steps=step,
        examples_seen=state["examples_seen"],
        tokens_seen=state["examples_seen"] * getattr(train_set, "tokens_per_example", 1),
        wall_time_s=state["elapsed_s"],
        best_metric=state["best_metric"],
        best_step=state["best_step"],
        stopped_early=stopped_early,
        interrupted=stop.requested,
        final_loss=result_loss,
        device=describe(device),
        precision=precision,
        precision_reason=precision_reason,
        max_steps=steps.max_steps,
        max_steps_from=steps.source,
        step_s=steps.step_s,
        privacy=spent,
    )


class _StopSignal:
    """SIGINT/SIGTERM ask the loop to checkpoint after the current step and return."""

    def __init__(self) -> None:
        self.requested = False
        self._old = {}
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread: signals cannot be caught here
            self._old = {}

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def restore(self) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from (they will be written again)."""
    if not path.exists():
        return
    import json

    kept = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line from the kill
        if rec.get("step", 0) <= step:
            kept.append(line)
    atomic_write_text(path, "".join(l + "\n" for l in kept))
