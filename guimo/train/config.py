"""Training hyperparameters, shared by every scenario (one loop, one config)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class TrainConfig:
    max_steps: int = field(default=1000, metadata={"help": "optimizer steps; the loop stops here at the latest"})
    max_epochs: float | None = field(default=None, metadata={"help": "stop after this many passes over the data (None: no limit)"})
    batch_size: int = field(default=32, metadata={"help": "global examples per optimizer step (all processes, all micro-batches)"})
    grad_accum: int = field(default=1, metadata={"help": "micro-batches per optimizer step; divides batch_size"})
    lr: float = field(default=1e-3, metadata={"help": "peak learning rate after warmup"})
    min_lr_ratio: float = field(default=0.1, metadata={"help": "cosine decay floor as a fraction of lr"})
    warmup_steps: int = field(default=50, metadata={"help": "linear warmup steps from 0 to lr"})
    weight_decay: float = field(default=0.1, metadata={"help": "AdamW decoupled weight decay on matrices only"})
    beta1: float = field(default=0.9, metadata={"help": "AdamW beta1"})
    beta2: float = field(default=0.98, metadata={"help": "AdamW beta2"})
    grad_clip: float = field(default=1.0, metadata={"help": "clip the global gradient norm (0 disables)"})
    eval_every: int = field(default=100, metadata={"help": "validate every N steps (0: only at the end)"})
    patience: int = field(default=0, metadata={"help": "early stop after N validations without improvement (0: off)"})
    select_window: int = field(default=1, metadata={
        "help": "early stopping and the kept weights follow the mean of the last N validations, and the weights of the "
                "window's middle validation are kept (1: each validation alone); for a noisy validation metric, such as "
                "PR-AUC over a few dozen positives"})
    group_by_length: bool = field(default=False, metadata={
        "help": "batches of examples of similar length (HF Trainer's group_by_length): each epoch's shuffled order is cut "
                "into runs of 50 batches, each run sorted by length, so a batch pads less; for training sets that say "
                "their examples' lengths (the text scenarios). On BANKING77 2.5x faster steps at the same accuracy; on a few "
                "hundred examples an epoch is one run, sorted, and the generated support and catalogue sets fell 16-17 "
                "points below their tests' accuracy thresholds in 36 steps, so it is off by default"})
    checkpoint_every: int = field(default=100, metadata={"help": "save a resumable checkpoint every N steps (0: only at the end)"})
    log_every: int = field(default=10, metadata={"help": "append a line to train_log.jsonl every N steps"})
    precision: Literal["auto", "fp32", "bf16"] = field(
        default="auto", metadata={"help": "auto: bf16 autocast on CUDA; on a CPU fp32, unless it has AMX and bf16 steps measured >= 1.5x there at equal quality (guimo.device.choose_precision; the manifest records the choice and why); bf16 forces autocast (CPU needs avx512_bf16/AMX)"}
    )
    compile: bool = field(default=False, metadata={"help": "torch.compile the model (pays ~25 s compile time)"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda, cuda:N"})
    max_time_s: float | None = field(default=None, metadata={
        "help": "wall-clock budget that picks the step count (at most max_steps): 10 steps are timed, then the count "
                "that fits is fixed and recorded in the checkpoints, so the schedule depends on steps alone (None: off)"})

    def __post_init__(self) -> None:
        if self.batch_size <= 0 or self.grad_accum <= 0 or self.batch_size % self.grad_accum:
            raise ValueError("batch_size must be a positive multiple of grad_accum")
        if self.max_steps <= 0:
            raise ValueError("max_steps must be positive")
        if self.lr <= 0:
            raise ValueError("lr must be positive")
        if self.select_window < 1:
            raise ValueError("select_window must be at least 1 (1: each validation alone)")
        if self.max_time_s is not None and self.max_time_s <= 0:
            raise ValueError("max_time_s must be positive (or None: no time budget)")
