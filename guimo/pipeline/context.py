"""What every stage function receives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from guimo.pipeline.progress import Progress
from guimo.pipeline.rundir import RunDir


@dataclass
class Context:
    run: RunDir
    cfg: Any  # the scenario's config dataclass, fully resolved
    progress: Progress
    quiet: bool = False
