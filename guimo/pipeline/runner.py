"""Run the six stages in order into one run directory; any stage can re-run alone.

collect -> preprocess -> init -> train -> evaluate -> optimize. Scenario-specific work is
delegated to the scenario object; model building, training, evaluation bookkeeping and the
optimize stage are generic and live here (or in guimo.train / guimo.optimize).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Iterable

from guimo import scenarios
from guimo.config import to_dict
from guimo.errors import GuimoError
from guimo.io import atomic_save_safetensors, atomic_write_json
from guimo.models.load import load_model, load_weights, read_weights
from guimo.pipeline.context import Context
from guimo.pipeline.progress import Progress
from guimo.pipeline.rundir import MANIFEST, STAGES, RunDir


def run_pipeline(
    scenario_name: str,
    cfg: Any,
    out: str | Path,
    *,
    from_stage: str | None = None,
    to_stage: str | None = None,
    quiet: bool = False,
    set_keys: Iterable[str] | None = None,
    plots: bool = True,
) -> RunDir:
    """Run stages into ``out``. Stages already done are skipped unless at/after ``from_stage``.

    ``set_keys``: the config keys the user set (the CLI passes them; recorded in the manifest); a
    scenario may choose the others from the data in preprocess (``scenario.settled_config``).

    ``plots=False`` writes report.md without its PNG plots: a scale sweep's points are read through the sweep's own
    report, and their three figures were ~40% of a micro-sweep point's time (``--from evaluate`` draws them later).

    Re-running the same command after a kill resumes: finished stages are skipped and the
    train stage continues from its last checkpoint.
    """
    from guimo.train import distributed

    scenario = scenarios.get(scenario_name)
    if from_stage is not None and from_stage not in STAGES:
        raise GuimoError(f"unknown stage '{from_stage}'; stages are: {', '.join(STAGES)}")
    dist, device = join_process_group(cfg)
    first = STAGES.index(from_stage) if from_stage else 0
    last = STAGES.index(to_stage) if to_stage else len(STAGES) - 1
    # Check what can be checked before a run folder exists, so that a typo leaves nothing behind.
    made = not Path(out).exists()  # this call makes the folder (and may remove it again, below)
    fresh = not (Path(out) / MANIFEST).exists()
    if dist.is_main:
        if fresh and not made and (not Path(out).is_dir() or any(Path(out).iterdir())):
            raise GuimoError(f"{out} exists and is not a run directory; choose another --out")
        existing = None if fresh else RunDir.open(out)
        if from_stage:  # everything before from_stage must exist already
            for earlier in STAGES[:first]:
                if existing is None or not existing.stage_done(earlier):
                    raise GuimoError(f"cannot start from '{from_stage}': stage '{earlier}' has not finished in {out}")
        check_inputs(cfg, existing, from_stage)
    run = RunDir.create(out, scenario_name, to_dict(cfg), from_stage=from_stage, to_stage=to_stage) if dist.is_main else None
    distributed.barrier()
    if run is None:
        run = RunDir.open(out)
    if from_stage:
        if from_stage in ("train", "init") and dist.is_main:  # a fresh training, not a resume
            _clear_checkpoints(run)
            _forget_optimized(run)
        elif from_stage == "evaluate" and last >= STAGES.index("optimize") and dist.is_main:
            _forget_optimized(run)  # evaluate scores the trained model, as in a fresh run; optimize redoes its choice after it
        distributed.barrier()
    keys = None if set_keys is None else frozenset(set_keys)
    if keys is not None and dist.is_main:
        run.manifest["set_keys"] = sorted(keys)
        run.save()
    with Progress(quiet=quiet or not dist.is_main) as progress:
        ctx = Context(run=run, cfg=cfg, progress=progress, quiet=quiet, set_keys=keys, plots=plots)
        for i, stage in enumerate(STAGES[: last + 1]):
            if i < first or (from_stage is None and run.stage_done(stage)):
                continue
            if stage not in ("collect", "preprocess") and hasattr(scenario, "settled_config"):
                ctx.cfg = scenario.settled_config(run, cfg)  # with the settings chosen from the data
            # Only training runs on every DDP rank; rank 0 does the other stages alone while the
            # others wait for its verdict (so a failure there ends every rank, not just rank 0).
            everyone = stage == "train"
            if not everyone and not dist.is_main:
                if distributed.broadcast_flag(False, device):
                    raise GuimoError(f"stage '{stage}' failed on rank 0; see its message and {run.path / 'manifest.json'}")
                continue
            run.manifest = RunDir.open(run.path).manifest if not dist.is_main else run.manifest
            if dist.is_main:
                run.stage_started(stage)
            t0 = time.perf_counter()
            try:
                info = STAGE_FUNCTIONS[stage](scenario, ctx)
            except BaseException as e:
                if dist.is_main:
                    msg = "interrupted" if isinstance(e, KeyboardInterrupt) else f"{type(e).__name__}: {e}"
                    run.stage_failed(stage, time.perf_counter() - t0, msg)
                    if fresh and stage == STAGES[0]:  # nothing to resume: the source could not be read
                        _discard(run, made)
                    if not everyone:
                        distributed.broadcast_flag(True, device)
                raise
            status = "interrupted" if info.get("interrupted") else "done"  # the same on every rank
            if dist.is_main:
                if stage == "collect" and "fingerprint" in info:
                    run.manifest["data"] = {k: v for k, v in info.items() if k in ("fingerprint", "source", "bytes", "files")}
                run.stage_finished(stage, time.perf_counter() - t0, info, status=status)
            if not everyone:
                distributed.broadcast_flag(False, device)
            if status == "interrupted":
                raise KeyboardInterrupt(f"training interrupted; re-run the same command to resume from {run.path}")
    return run


def configured_device(cfg: Any):
    """The torch device of a run's ``train.device`` (auto when the scenario's config has none), checked."""
    from guimo.device import pick_device

    return pick_device(getattr(getattr(cfg, "train", None), "device", "auto"))


def join_process_group(cfg: Any):
    """Under torchrun, join the process group on the configured device; a no-op otherwise.

    Returns ``(Dist, torch.device)``. Called by the CLI before it picks a default run path
    (which rank 0 then broadcasts) and by ``run_pipeline``; joining twice is harmless.
    """
    from guimo.train import distributed

    device = configured_device(cfg)
    dist = distributed.init(device.type)
    if device.type == "cuda" and dist.enabled:
        import torch

        device = torch.device("cuda", dist.local_rank)
    return dist, device


def check_inputs(cfg: Any, run: RunDir | None, from_stage: str | None) -> None:
    """The local files the config names exist, for the stages that will read them (a new run's
    collect and init; an existing run's stages from ``from_stage`` on, or those not finished).

    Checked before the run folder is made: ``guimo run --data TYPO`` leaves no half-made run behind.
    URLs are fetched by collect itself (with a checksum and a cache).
    """
    from guimo.data.fetch import is_url

    def will_run(stage: str) -> bool:
        if run is None:
            return True
        return STAGES.index(stage) >= STAGES.index(from_stage) if from_stage else not run.stage_done(stage)

    named = [("collect", "data.path"), ("collect", "data.categories"), ("init", "init.checkpoint"), ("init", "init.pretrained")]
    missing = []
    for stage, key in named:
        section, field = key.split(".")
        value = getattr(getattr(cfg, section, None), field, None)
        if isinstance(value, str) and value and not is_url(value) and will_run(stage) and not Path(value).exists():
            missing.append(f"{value}: no such file or directory ({key})")
    if missing:
        raise GuimoError("; ".join(missing) + "; nothing was run or written")


def _discard(run: RunDir, made: bool) -> None:
    """Remove what a failed first collect wrote: the folder when this run made it, else its files."""
    import shutil

    if made:
        shutil.rmtree(run.path, ignore_errors=True)
        return
    (run.path / MANIFEST).unlink(missing_ok=True)
    shutil.rmtree(run.path / "data", ignore_errors=True)


def _forget_optimized(run: RunDir) -> None:
    """Retraining makes the optimize stage's output stale: drop its weights and put back the
    architecture that was trained (a width-search winner's model_config.json would not fit the
    init weights, and its model.safetensors would otherwise be evaluated and served as new)."""
    from guimo.optimize.stage import restore_trained_architecture

    restore_trained_architecture(run, forget=True)
    for name in ("model.safetensors", "model.int8.safetensors"):
        (run.path / name).unlink(missing_ok=True)


def _clear_checkpoints(run: RunDir) -> None:
    ckpt = run.path / "checkpoints"
    if ckpt.exists():
        for p in ckpt.glob("step-*"):
            p.unlink()


# -- generic stages ----------------------------------------------------------------------------


def collect(scenario, ctx: Context) -> dict:
    with ctx.progress.task("collect"):
        return scenario.collect(ctx)


def preprocess(scenario, ctx: Context) -> dict:
    with ctx.progress.task("preprocess"):
        return scenario.preprocess(ctx)


def init(scenario, ctx: Context) -> dict:
    """Build the model from its config: seeded random init, a checkpoint, or pretrained weights."""
    import torch

    from guimo.models.transformer import TransformerConfig, count_parameters

    cfg = ctx.cfg
    with ctx.progress.task("init"):
        torch.manual_seed(cfg.seed)
        model_cfg = scenario.model_config(ctx)
        source = "random"
        if cfg.init.pretrained:
            from guimo.models.pretrained import load_pretrained

            model_cfg, state = load_pretrained(cfg.init.pretrained, model_cfg)
            model = scenario.build_model(model_cfg)
            load_weights(model, state, strict=False)
            source = f"pretrained:{cfg.init.pretrained}"
        else:
            model = scenario.build_model(model_cfg)
        if cfg.init.checkpoint:
            load_weights(model, read_weights(cfg.init.checkpoint), strict=True)
            source = f"checkpoint:{cfg.init.checkpoint}"
        atomic_write_json(ctx.run / "model_config.json", to_dict(model_cfg))
        # a scenario may fit part of the model on the loaded weights before training (e.g. a head on a frozen encoder)
        warm = scenario.warm_start(ctx, model) if hasattr(scenario, "warm_start") else None
        from guimo.train.checkpoint import model_state

        atomic_save_safetensors(ctx.run / "checkpoints" / "init.safetensors", model_state(model))
        counts = count_parameters(model_cfg) if isinstance(model_cfg, TransformerConfig) else module_parameter_counts(model)
        return {"init": source, "parameters": counts, **({"warm_start": warm} if warm else {})}


def module_parameter_counts(model) -> dict[str, int]:
    """Total and non-embedding counts of any module (tied weights once; every nn.Embedding is embedding).

    For models that wrap the Transformer in their own module (e.g. SASRec, whose item table is
    an embedding), where the config alone does not say which weights are lookups.
    """
    import torch.nn as nn

    params = {id(p): p for p in model.parameters()}
    embedding = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    total = sum(p.numel() for p in params.values())
    return {"total": total, "non_embedding": total - sum(params[i].numel() for i in embedding if i in params)}


def train(scenario, ctx: Context) -> dict:
    import torch

    from guimo.train import distributed
    from guimo.train.loop import fit

    privacy = getattr(ctx.cfg, "privacy", None)  # the tabular scenarios' DP-SGD section (guimo.privacy.dp)
    if privacy is not None and privacy.enabled and getattr(getattr(ctx.cfg, "optimize", None), "trials", 0):
        raise GuimoError("privacy.epsilon with optimize.trials > 0: the search's trials train without DP-SGD, and a winning "
                         "trial would replace the private weights (each private trial would also spend the budget again); "
                         "set optimize.trials=0")
    model = load_model(scenario, ctx.run, weights=ctx.run / "checkpoints" / "init.safetensors")
    inputs = scenario.train_inputs(ctx)
    tcfg = ctx.cfg.train
    with ctx.progress.task("train", total=tcfg.max_steps) as bar:

        def on_step(step: int, info: dict) -> None:
            bar.update(completed=step, total=info["max_steps"], info=f"loss {info['loss']:.4f}")

        result = fit(
            model,
            inputs.train_set,
            inputs.loss_fn,
            tcfg,
            out_dir=ctx.run.path,
            seed=ctx.cfg.seed,
            evaluate=inputs.evaluate,
            metric=inputs.metric,
            higher_is_better=inputs.higher_is_better,
            progress=on_step,
            privacy=privacy,
        )
    info = dataclasses.asdict(result)
    info.pop("history")
    info["metric"] = inputs.metric
    info["world_size"] = distributed.current().world_size  # processes that shared each batch
    # intra-op threads: they set the speed, and on CPU the split of some reductions (so the last float bits)
    info["torch_threads"] = torch.get_num_threads()
    return info


def evaluate(scenario, ctx: Context) -> dict:
    """Score the model and the baselines into metrics.json, then write report.md and plots/."""
    from guimo.report import write_report

    with ctx.progress.task("evaluate"):
        metrics = score(scenario, ctx)
        report = write_report(ctx.run, stage="evaluate", plots=ctx.plots)
    return {"headline": {scenario.headline: metrics["model"].get(scenario.headline)}, "report": report.name}


def score(scenario, ctx: Context) -> dict:
    """Score the weights `load_model` picks by default into metrics.json, which names them."""
    # on the device it trained on: the scenarios' evaluations move their batches to the model's device
    device = configured_device(ctx.cfg)
    model = load_model(scenario, ctx.run, device=str(device))
    metrics = scenario.evaluate(ctx, model)
    metrics.setdefault("headline", scenario.headline)
    metrics.setdefault("higher_is_better", scenario.higher_is_better)
    metrics["weights"] = evaluated_weights(ctx.run, device.type)
    from guimo.privacy.dp import read_spent

    spent = read_spent(ctx.run.path)  # a DP-SGD training's (epsilon, delta), shown beside the metrics it bought
    if spent is not None:
        metrics["privacy"] = spent
    atomic_write_json(ctx.run / "metrics.json", metrics)
    return metrics


def evaluated_weights(run: RunDir, device_type: str) -> str:
    """The weights file `load_model` picks by default, relative to the run (what metrics.json describes)."""
    if device_type == "cpu" and (run / "model.int8.safetensors").exists():
        return "model.int8.safetensors"
    return run.weights_path().relative_to(run.path).as_posix()


def optimize(scenario, ctx: Context) -> dict:
    """Keep the best model; the report is rewritten so that it names the final weights (and, when
    the stage replaced them, their new metrics)."""
    from guimo.optimize.stage import TRAINED
    from guimo.optimize.stage import optimize as run_optimize
    from guimo.report import write_report

    with ctx.progress.task("optimize"):
        info = run_optimize(scenario, ctx)
        metrics = ctx.run.metrics()
        if metrics is not None:
            if metrics.get("optimized") and info.get("final") == TRAINED:
                score(scenario, ctx)  # the numbers were an earlier optimize's winner; this one kept the trained weights
            write_report(ctx.run, stage="optimize", plots=ctx.plots)
        return info


STAGE_FUNCTIONS = {"collect": collect, "preprocess": preprocess, "init": init, "train": train, "evaluate": evaluate, "optimize": optimize}

