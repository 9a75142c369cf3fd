"""How many optimizer steps a run takes, decided once and then fixed.

The learning-rate schedule and the stop depend on the step count alone, never on the clock, so
the same command, seed and machine give the same weights, and a run killed and resumed gives
the weights of one that was not. The count comes from the config (``train.max_steps``, capped by
``train.max_epochs``) or, when ``train.max_time_s`` is set, from a time budget: the loop times
``CALIBRATION_STEPS`` steps after the first one (which pays for allocation and compilation),
turns the budget that is left into a step count once, and records the choice in the train log
and in every checkpoint. A resumed run reads the recorded count back and never re-estimates.
Under DDP rank 0 measures and decides, and every rank follows its number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from guimo.train.config import TrainConfig

# Steps timed before a time budget picks the count: ten steps average out the jitter of a shared
# machine, and the decision still lands inside the presets' warmup (30 steps), where the
# learning rate does not depend on the count yet.
CALIBRATION_STEPS = 10

Source = Literal["max_steps", "max_epochs", "max_time_s"]


@dataclass
class StepPlan:
    """The step the run ends at and where that number came from (recorded in the manifest)."""

    max_steps: int  # the schedule's horizon and the last step
    source: Source  # the setting that fixed it
    decided: bool = True  # False while a time budget is still timing its first steps
    step_s: float | None = None  # mean seconds per step the time budget measured
    decided_at: int | None = None  # the step after which the time budget chose

    def as_record(self) -> dict:
        """The JSON form kept in checkpoints and the train log."""
        return {"max_steps": self.max_steps, "source": self.source, "decided": self.decided,
                "step_s": self.step_s, "decided_at": self.decided_at}

    @classmethod
    def from_record(cls, record: dict) -> StepPlan:
        return cls(int(record["max_steps"]), record["source"], bool(record["decided"]), record.get("step_s"), record.get("decided_at"))


def from_config(cfg: TrainConfig, steps_per_epoch: int) -> StepPlan:
    """The plan the config alone gives; with a time budget it is pending (the cap until decided)."""
    cap, source = cfg.max_steps, "max_steps"
    if cfg.max_epochs is not None:
        by_epochs = max(1, int(cfg.max_epochs * steps_per_epoch))
        if by_epochs < cap:
            cap, source = by_epochs, "max_epochs"
    if cfg.max_time_s is None or cap <= CALIBRATION_STEPS + 1:  # a budget could not stop it sooner
        return StepPlan(cap, source)
    return StepPlan(cap, "max_time_s", decided=False)


class StepTimer:
    """Times the steps of a pending time budget and, once enough are timed, proposes the count.

    The first step this process runs is not timed (allocator warm-up, lazy initialisation,
    ``torch.compile``); the next ``CALIBRATION_STEPS`` are. Validation and checkpoint writes are
    outside the timed part: the budget buys training steps, and the count it picks is the number
    of steps whose mean time fits into what is left of the budget.
    """

    def __init__(self, budget_s: float, calibration_steps: int = CALIBRATION_STEPS) -> None:
        if budget_s <= 0:
            raise ValueError("train.max_time_s must be positive")
        self.budget_s = budget_s
        self.calibration_steps = calibration_steps
        self.skipped_first = False
        self.timed: list[float] = []

    def record(self, seconds: float) -> None:
        """Add one step's duration (the first one this process runs is ignored)."""
        if not self.skipped_first:
            self.skipped_first = True
            return
        self.timed.append(seconds)

    @property
    def ready(self) -> bool:
        return len(self.timed) >= self.calibration_steps

    def propose(self, step: int, elapsed_s: float, cap: int) -> tuple[int, float]:
        """(count, seconds per step): ``step`` steps are done, ``elapsed_s`` of the budget spent.

        At least ``step`` (the steps already taken) and at most ``cap`` (``train.max_steps``, or
        ``train.max_epochs``' count).
        """
        step_s = sum(self.timed) / len(self.timed)
        left = max(0.0, self.budget_s - elapsed_s)
        return min(cap, max(step, step + math.floor(left / step_s))), step_s
