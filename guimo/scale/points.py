"""Points of a scaling study, read from finished run directories (the only input `scale` trusts).

A point is one run: its parameter count N (total and non-embedding, from the init stage), the
tokens it trained on D (train stage), the distinct training tokens U (preprocess stage), its test
metric (metrics.json) and its measured training time. Nothing is taken from the sweep's plan, so
`guimo scale fit DIR` works on any folder of runs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from guimo.errors import GuimoError
from guimo.pipeline.rundir import RunDir, list_runs


@dataclass(frozen=True)
class Point:
    run: str  # run directory
    scenario: str
    size: str  # model preset name when known, else "d<width>x<layers>"
    n: int  # total parameters (what the fit uses; Pearce & Song 2024)
    n_non_embedding: int
    d: float  # training tokens seen by the scored model (examples for non-token scenarios; up to its best step under --evals)
    unique: float | None  # distinct training tokens (train split after data.fraction); interactions for recommend
    fraction: float | None  # data.fraction of the run's config
    seed: int
    metric: str
    value: float  # the metric on the test split
    baselines: dict[str, float]  # the same metric for each baseline
    train_seconds: float  # measured wall time of the train stage
    flops: float | None  # training FLOPs: flops_per_token x tokens (None without a transformer config)
    cases: int | None = None  # test cases (recommend) or tokens (lm) the metric averages over: its variance ~ 1/cases
    steps: int | None = None  # optimizer steps the run trained
    best_step: int | None = None  # the step of the scored weights when validation picked them (sweep --evals), else None
    device: str | None = None  # where it trained ("cpu", "cuda:0 (NVIDIA H200)"); None for runs older than that record
    classes: int | None = None  # labels a classifier's training split holds (preprocess); None for a scenario that is no classifier
    metrics: dict[str, float] | None = None  # every numeric test metric of the model (a classifier's macro-F1 beside its accuracy)
    baseline_metrics: dict[str, dict[str, float]] | None = None  # the same for each baseline

    @property
    def per_class(self) -> float | None:
        """Labelled training examples per class (a classifier's data axis): the training split over its classes."""
        return self.unique / self.classes if self.unique and self.classes else None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "per_class": self.per_class}

    def params(self, count: str = "total") -> int:
        """N under one of PARAM_COUNTS."""
        if count not in PARAM_COUNTS:
            raise GuimoError(f"unknown parameter count '{count}'; choose {' or '.join(PARAM_COUNTS)}")
        return self.n if count == "total" else self.n_non_embedding


# What N counts in a fit. Total is the default (Pearce & Song 2024: at small scale the embeddings are a
# large share of the model and leaving them out biases the compute-optimal exponents); non-embedding is
# Kaplan et al. 2020's count, under which their loss curves of different shapes collapse onto one.
PARAM_COUNTS = {"total": "total parameters", "non_embedding": "non-embedding parameters"}


def read_point(run: RunDir, metric: str = "loss") -> Point:
    """The point of one finished run; a run that has not finished evaluate is a clear error."""
    stages = run.manifest.get("stages", {})
    for stage in ("preprocess", "init", "train", "evaluate"):
        if stages.get(stage, {}).get("status") != "done":
            raise GuimoError(f"{run.path}: run has not finished its {stage} stage (status {run.manifest.get('status')}); re-run the sweep to finish it")
    metrics = run.metrics() or {}
    model = metrics.get("model", {})
    if metric not in model:
        raise GuimoError(f"{run.path / 'metrics.json'}: no model metric '{metric}' (has: {', '.join(model) or 'none'})")
    params = stages["init"].get("parameters", {})
    train = stages["train"]
    cfg = run.config
    mc = _model_config(run)
    d = float(train.get("tokens_seen") or train.get("examples_seen") or 0)
    best, steps = train.get("best_step"), train.get("steps")
    if best and steps and best < steps:  # the scored model is the best validated one (sweep --evals): D is what it had seen
        d *= best / steps
    flops = None
    if mc is not None and d:
        from guimo.models.transformer import flops_per_token

        flops = flops_per_token(mc) * d
    return Point(
        run=str(run.path),
        scenario=run.scenario,
        size=_size_name(mc, cfg),
        n=int(params.get("total", 0)),
        n_non_embedding=int(params.get("non_embedding", params.get("total", 0))),
        d=d,
        unique=_data_size(stages["preprocess"]),
        fraction=cfg.get("data", {}).get("fraction"),
        seed=int(cfg.get("seed", 0)),
        metric=metric,
        value=float(model[metric]),
        baselines={k: float(v[metric]) for k, v in metrics.get("baselines", {}).items() if isinstance(v, dict) and metric in v},
        train_seconds=float(train.get("wall_time_s") or train.get("seconds") or 0.0),
        flops=flops,
        cases=_cases(metrics),
        steps=steps,
        best_step=best,
        device=train.get("device"),
        classes=_classes(stages["preprocess"]),
        metrics=_numbers(model),
        baseline_metrics={k: _numbers(v) for k, v in metrics.get("baselines", {}).items() if isinstance(v, dict)},
    )


def collect_points(root: str | Path, metric: str = "loss", *, expected: list[str] | None = None, allow_missing: bool = False,
                   exclude: list[str] | None = None) -> tuple[list[Point], list[str]]:
    """Points of every finished run under ``root``, and notes on runs left out.

    ``expected`` lists run directories a sweep planned (sweep.json); one that is missing or
    unfinished is an error unless ``allow_missing`` (then it is noted and left out). ``exclude``:
    runs that are not points of the study (a sweep's lr probe).
    """
    root = Path(root)
    if not root.is_dir():
        raise GuimoError(f"{root}: no such directory")
    notes: list[str] = []
    skip = {str(Path(p).resolve()) for p in exclude or []}
    runs = [r for r in list_runs(root) if str(r.path.resolve()) not in skip]
    planned = {str(Path(p).resolve()) for p in expected or []}
    found = {str(r.path.resolve()) for r in runs}
    for path in expected or []:
        if str(Path(path).resolve()) not in found:
            msg = f"{path}: run listed in sweep.json is missing"
            if not allow_missing:
                raise GuimoError(msg + " (re-run the sweep to finish it, or pass --allow-missing)")
            notes.append(msg)
    points = []
    for run in sorted(runs, key=lambda r: str(r.path)):
        try:
            points.append(read_point(run, metric))
        except GuimoError as e:
            if str(run.path.resolve()) in planned and not allow_missing:
                raise GuimoError(f"{e} (or pass --allow-missing)") from None
            notes.append(str(e))
    if not points:
        raise GuimoError(f"{root}: no finished runs to fit" + (f" ({notes[0]})" if notes else ""))
    return points, notes


def _cases(metrics: dict[str, Any]) -> int | None:
    """How many test cases the headline metric averages over, when the scenario says."""
    for v in (metrics.get("model", {}).get("cases"), metrics.get("protocol", {}).get("cases"), metrics.get("eval_tokens")):
        if isinstance(v, (int, float)) and v > 0:
            return int(v)
    return None


def _classes(info: dict[str, Any]) -> int | None:
    """How many classes a classifier's preprocess stage found (``labels`` or ``classes``: a count or the label list), else None."""
    for key in ("classes", "n_classes", "num_classes", "labels"):
        v = info.get(key)
        if isinstance(v, bool):
            continue
        if isinstance(v, int) and v > 0:
            return v
        if isinstance(v, (list, dict)) and v:
            return len(v)
    return None


def _numbers(table: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in table.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _data_size(info: dict[str, Any]) -> float | None:
    """Distinct training tokens (lm), or interactions / examples / labelled rows for other scenarios."""
    for key in ("train_tokens", "train_interactions", "train_examples", "train_rows"):  # train_rows: a classifier's labelled texts
        if isinstance(info.get(key), (int, float)):
            return float(info[key])
    return None


def _model_config(run: RunDir):
    p = run.path / "model_config.json"
    if not p.is_file():
        return None
    from guimo.config import from_dict
    from guimo.io import read_json
    from guimo.models.transformer import TransformerConfig

    try:
        return from_dict(TransformerConfig, read_json(p))
    except GuimoError:
        return None  # a scenario with its own model config: no FLOP count


def _size_name(mc, cfg: dict) -> str:
    from guimo.models.transformer import PRESETS

    if mc is None:  # another scenario's model config: name it by its width and depth when it has them
        mcfg = cfg.get("model", {})
        width = mcfg.get("d_model")
        depth = mcfg.get("n_blocks", mcfg.get("n_layer"))
        return f"d{width}x{depth}" if width and depth else "model"
    for name, preset in PRESETS.items():
        if all(getattr(mc, k) == v for k, v in preset.items() if k != "max_len"):
            return name
    return f"d{mc.d_model}x{mc.n_layer}"


def mean_by_cell(points: list[Point]) -> dict[tuple[int, float], float]:
    """Mean metric per (N, D) cell: seeds averaged (for plots and tables)."""
    cells: dict[tuple[int, float], list[float]] = {}
    for p in points:
        cells.setdefault((p.n, p.d), []).append(p.value)
    return {k: sum(v) / len(v) for k, v in cells.items()}


def finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)
