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
    # The dotted config keys the user set (--set, --config, --data); None: a config built in code,
    # every value taken as set. A scenario may choose the others from the data (recommend does).
    set_keys: frozenset[str] | None = None
    # draw report.md's PNG plots (a sweep's points skip them: see run_pipeline)
    plots: bool = True
