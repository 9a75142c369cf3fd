"""Training one point of a sweep, and where points train: here, in a local process pool, or as Ray tasks.

A point is a normal run directory: its config is the sweep's base config with its size, data fraction, seed, batch
and lr (``point_config``); its steps are sized after preprocessing from its own token count (``_run_point``). The
executors all offer ``submit(fn, *args) -> concurrent.futures.Future``, so ``run_sweep`` schedules the same way
whichever trains the points.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from guimo.config import to_dict
from guimo.errors import GuimoError
from guimo.scale.spec import SweepSpec, base_config, context_overrides, point_batch, point_epochs, point_lr, size_overrides

def train_point(spec: dict[str, Any], point: dict[str, Any], run_dir: str, template: str | None, threads: int | None) -> tuple[dict[str, Any], str | None]:
    """Train one point (in this process or a worker process): (the point's new fields, an error or None)."""
    spec_obj = SweepSpec(**spec)
    started = time.perf_counter()
    updates: dict[str, Any] = {}
    try:
        with _threads(threads):
            _run_point(spec_obj, {**point}, Path(run_dir), template, updates)
    except GuimoError as e:
        return updates, str(e)
    updates["seconds"] = round(time.perf_counter() - started, 2)
    return updates, None


@contextmanager
def executor(workers: int, ray: str | None = None, threads_per_point: int = 1) -> Iterator[Any]:
    """Where points train: as Ray tasks when ``ray`` names a cluster, else a process pool for workers > 1, else here,
    one after the other. Each yields an object with ``submit(fn, *args) -> Future`` and ``capacity`` (points at once)."""
    if ray is not None:
        with _RayExecutor.connect(ray, workers, threads_per_point) as pool:
            yield pool
        return
    if workers == 1:
        yield _InlineExecutor()
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: a forked child inherits torch's OpenMP state and can hang
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        pool.capacity = workers
        yield pool


class _InlineExecutor:
    capacity = 1

    def submit(self, fn, *args):
        from concurrent.futures import Future

        f: Future = Future()
        f.set_result(fn(*args))
        return f


class _RayExecutor:
    """Points as Ray tasks, each asking for as many CPUs as it has torch threads. A point writes its run directory
    itself, so the sweep folder must be on storage every node shares (the path is sent as it is: give an absolute
    --out on a shared mount). ``capacity`` is the cluster's CPUs over a point's, or ``workers`` if larger, so that
    every free core trains a point."""

    def __init__(self, ray_module: Any, capacity: int, threads_per_point: int):
        self._ray = ray_module
        self.capacity = capacity
        self._task = ray_module.remote(num_cpus=threads_per_point, max_retries=0)(train_point)

    @classmethod
    @contextmanager
    def connect(cls, address: str, workers: int, threads_per_point: int) -> Iterator["_RayExecutor"]:
        try:
            import ray
        except ImportError:
            raise GuimoError("--ray needs Ray: pip install 'guimo[ray]'") from None
        started_here = not ray.is_initialized()
        if started_here:
            # 'local': a cluster of this machine (ray.init's own default when no cluster is running); anything else is
            # an address ray.init understands ('auto', ray://host:10001, host:6379)
            try:
                local = {"include_dashboard": False} if address == "local" else {}  # no dashboard for a cluster made for one sweep
                ray.init(address=None if address == "local" else address, log_to_driver=False, **local)
            except (ConnectionError, ValueError, RuntimeError) as e:
                raise GuimoError(f"--ray {address}: cannot reach a Ray cluster ({e})") from None
        cpus = int(ray.cluster_resources().get("CPU", 1))
        try:
            yield cls(ray, max(workers, cpus // max(1, threads_per_point)), max(1, threads_per_point))
        finally:
            if started_here:
                ray.shutdown()

    def submit(self, fn, *args):
        if fn is not train_point:
            raise GuimoError("the Ray executor trains sweep points only")
        return self._task.remote(*args).future()


def point_threads(spec: SweepSpec) -> int | None:
    """Torch threads of one point: the sweep's threads when points train one at a time here, else its share of them
    (max(1, threads // workers)); a Ray task always gets its share, as a point of ``--workers`` would, so that both
    train the same point with the same kernels."""
    if spec.workers == 1 and spec.ray is None:
        return spec.threads
    return max(1, (spec.threads or 1) // spec.workers)


def point_config(spec: SweepSpec, point: dict[str, Any]) -> tuple[Any, str]:
    """The point's config before training is sized, and the key of its data (points with equal keys share data)."""
    base = size_overrides(point["size"], spec.scenario) + context_overrides(spec) + [
        f"data.fraction={point['fraction']}",
        f"seed={point['seed']}",
        f"train.batch_size={spec.batch_size}",
        f"train.lr={point_lr(spec, point):.6g}",
    ] + [f"{k}={v:g}" for k, v in point.get("set", {}).items()]  # a value probe's value (the user's --set cannot name its key)
    cfg = base_config(spec, base + spec.overrides)
    return cfg, json.dumps([to_dict(cfg)["data"], spec.context, point["seed"]], sort_keys=True)


def _reuse_data(template: Path, run_dir: Path, scenario: str, cfg: Any) -> None:
    """Start ``run_dir`` with the collect and preprocess outputs of ``template`` (same data config)."""
    import shutil

    from guimo.pipeline.rundir import RunDir

    src = RunDir.open(template)
    if not (src.stage_done("collect") and src.stage_done("preprocess")):
        return
    run = RunDir.create(run_dir, scenario, to_dict(cfg))
    shutil.copytree(template / "data", run_dir / "data", dirs_exist_ok=True)
    run.manifest["data"] = src.manifest.get("data", {})
    for stage in ("collect", "preprocess"):
        run.manifest["stages"][stage] = {**src.manifest["stages"][stage], "reused_from": str(template)}
    run.save()


def _run_point(spec: SweepSpec, point: dict[str, Any], run_dir: Path, template: str | None, updates: dict[str, Any]) -> None:
    """Preprocess (or copy ``template``'s prepared data), size the training from the run's own token count, then run the rest."""
    from guimo import scenarios
    from guimo.config import apply_overrides
    from guimo.pipeline.rundir import RunDir
    from guimo.pipeline.runner import run_pipeline

    scenario = scenarios.get(spec.scenario)
    cfg, _ = point_config(spec, point)
    if template is not None and not (run_dir / "manifest.json").exists():
        _reuse_data(Path(template), run_dir, spec.scenario, cfg)
    run_pipeline(spec.scenario, cfg, run_dir, to_stage="preprocess", quiet=True)
    info = RunDir.open(run_dir).manifest["stages"]["preprocess"]
    # an epoch: the training tokens in rows of `context` (lm), or the training examples (recommend's windows, a classifier's texts)
    examples = info.get("train_examples", info.get("train_rows"))
    unique, per_row = (info["train_tokens"], spec.context) if "train_tokens" in info and spec.context else (examples, 1)
    if unique is None:
        raise GuimoError(f"{run_dir}: the {spec.scenario} scenario reports neither train_tokens nor train_examples (or train_rows); "
                         "cannot size training by epochs")
    epochs = point_epochs(spec, point["fraction"])
    batch = point_batch(spec, epochs * unique, per_row)
    steps = max(1, round(epochs * unique / (batch * per_row)))
    lr = point_lr(spec, point) * (batch / spec.batch_size) ** spec.lr_batch_exponent
    sized = [f"train.max_steps={steps}", f"train.warmup_steps={max(1, min(50, steps // 10))}",
             f"train.batch_size={batch}", f"train.lr={lr:.6g}",
             f"train.eval_every={max(1, steps // spec.evals) if spec.evals else 0}", f"train.checkpoint_every={max(50, steps // 4)}",
             "train.max_time_s=none"]  # a point stopped by a time cap would not have its planned D
    cfg = apply_overrides(cfg, sized + spec.overrides, scenario.presets)  # the user's --set wins
    updates.update(steps=steps, unique_tokens=unique, batch_size=batch, lr=float(f"{lr:.6g}"))
    run_pipeline(spec.scenario, cfg, run_dir, quiet=True, plots=False)  # the sweep's report draws the curves


@contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """Tiny models train fastest on one thread when other processes share the cores; restored after."""
    if n is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)

