"""The optimize stage: keep the best model as ``model.safetensors`` and say why in ``optimize.json``.

Off by default: with ``optimize.trials=0`` and ``optimize.quantize=false`` the best training
checkpoint is promoted as is. Otherwise, in order:

1. the baseline is the trained model (``checkpoints/best.safetensors``) scored with the scenario's
   validation function (the same one the trials use);
2. search (``optimize.trials=N``): Optuna trials (guimo.optimize.search); the best trial,
   retrained with the full train config when trials were shorter, is kept only if its validation
   metric beats the baseline's;
3. quantize (``optimize.quantize=true``): int8 dynamic quantization of the kept model's Linear
   layers (guimo.optimize.quantize), kept when the validation metric changes by at most
   ``optimize.quantize_tolerance`` (relative);
4. the kept model is written (``model.safetensors``, and ``model_config.json`` when the search
   changed the architecture) and re-evaluated, so ``metrics.json`` describes what is served; the
   metrics before optimization stay in ``optimize.json``.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

from guimo.pipeline.context import Context


def optimize(scenario, ctx: Context) -> dict:
    opt = ctx.cfg.optimize
    run = ctx.run
    best = run / "checkpoints" / "best.safetensors"
    final = run / "model.safetensors"
    _restore_trained_architecture(run)
    if opt.trials == 0 and not opt.quantize:
        _copy_atomic(best, final)
        return {"search": None, "quantize": None, "final": "checkpoints/best.safetensors"}

    from guimo.config import to_dict
    from guimo.errors import GuimoError
    from guimo.io import atomic_save_safetensors, atomic_write_json, read_json
    from guimo.train import distributed

    if opt.trials > 0 and distributed.current().enabled:  # trials train on rank 0 alone
        raise GuimoError("the optimize search runs in one process: re-run it without torchrun, e.g. "
                         f"guimo run {scenario.name} --out {run.path} --from optimize --set optimize.trials={opt.trials}")
    from guimo.optimize import quantize as q8
    from guimo.optimize import search as srch
    from guimo.pipeline.runner import load_model
    from guimo.train.checkpoint import model_state

    inputs = scenario.train_inputs(ctx)
    metric, hib = inputs.metric, inputs.higher_is_better
    model = load_model(scenario, run, weights=best)
    baseline = inputs.evaluate(model)[metric]
    report: dict[str, Any] = {"metric": metric, "higher_is_better": hib, "split": "val",
                              "baseline": {"value": baseline, "weights": "checkpoints/best.safetensors"},
                              "search": None, "quantize": None}
    kept_value, source, model_cfg = baseline, "checkpoints/best.safetensors", None

    if opt.trials > 0:
        if (run / "optimize").exists():
            shutil.rmtree(run / "optimize")  # a new search; trials are not resumed
        result = srch.run_search(scenario, ctx, metric, hib)
        candidate = srch.best_candidate(scenario, ctx, result)
        won = candidate is not None and srch.is_better(candidate.value, baseline, hib)
        report["search"] = {
            "space": {k: list(v) if v[0] != "choice" else ["choice", list(v[1])] for k, v in srch.search_space(ctx.cfg).items()},
            "trial_steps": opt.trial_steps, "timeout_s": opt.timeout_s, "pruner": "median" if opt.prune else None,
            "trials": [dataclasses.asdict(t) for t in result.trials],
            "best_trial": result.best_trial, "best_params": result.best_params, "best_trial_value": result.best_value,
            "candidate": None if candidate is None else {"source": candidate.source, "value": candidate.value},
            "kept": won,
        }
        if won:
            sub = Context(run=run, cfg=candidate.cfg, progress=ctx.progress, quiet=True)
            model_cfg = scenario.model_config(sub)
            model = scenario.build_model(model_cfg)
            from guimo.pipeline.runner import _load_weights, _read_weights

            _load_weights(model, _read_weights(candidate.weights), strict=True)
            kept_value, source = candidate.value, candidate.source

    if model_cfg is not None:  # the architecture may differ (width search): model_config.json follows
        trained = run / "optimize" / "trained_model_config.json"
        if not trained.exists():
            atomic_write_json(trained, read_json(run / "model_config.json"))
        atomic_write_json(run / "model_config.json", to_dict(model_cfg))

    state = model_state(model)
    if opt.quantize:
        model = model.to("cpu").eval()
        qmodel, names = q8.quantize(model)
        int8_value = inputs.evaluate(qmodel)[metric]
        deq = q8.dequantized_state(qmodel, model, names)
        change = (int8_value - kept_value) / abs(kept_value) if kept_value else 0.0
        worse_by = -change if hib else change
        accepted = worse_by <= opt.quantize_tolerance
        int8_path = run / "model.int8.safetensors"
        int8_bytes = q8.save_int8(int8_path, qmodel, model, names)
        if not accepted:
            int8_path.unlink()
        report["quantize"] = {
            "scheme": "int8 dynamic, per-channel symmetric weights, Linear layers (tied ones stay float)",
            "modules": names, "fp32_bytes": q8.float_bytes(model), "int8_bytes": int8_bytes,
            "value_before": kept_value, "value_int8": int8_value, "relative_change": change,
            "tolerance": opt.quantize_tolerance, "kept": accepted,
            "artifact": "model.int8.safetensors" if accepted else None,
        }
        if accepted:
            state, source = deq, f"{source} + int8"
    atomic_save_safetensors(final, state)

    # Re-evaluate what is now served, unless it is the model the evaluate stage already scored.
    before = read_json(run / "metrics.json") if (run / "metrics.json").exists() else None
    if source != "checkpoints/best.safetensors":
        model = load_model(scenario, run)
        report["final_value"] = inputs.evaluate(model)[metric]
        metrics = scenario.evaluate(ctx, model)
        metrics.setdefault("headline", scenario.headline)
        metrics.setdefault("higher_is_better", scenario.higher_is_better)
        metrics["optimized"] = {"source": source, "before": before.get("model") if before else None}
        atomic_write_json(run / "metrics.json", metrics)
    else:
        report["final_value"] = kept_value
    report["final"] = {"weights": "model.safetensors", "source": source}
    report["test_before"] = before.get("model") if before else None
    atomic_write_json(run / "optimize.json", report)
    return {
        "search": None if report["search"] is None else {"trials": len(report["search"]["trials"]), "kept": report["search"]["kept"],
                                                          "best_params": report["search"]["best_params"]},
        "quantize": None if report["quantize"] is None else {k: report["quantize"][k] for k in ("fp32_bytes", "int8_bytes", "relative_change", "kept")},
        "final": source,
        metric: report["final_value"],
    }


def _restore_trained_architecture(run) -> None:
    """A re-run of this stage starts from the trained model's architecture, not an earlier winner's."""
    saved = run / "optimize" / "trained_model_config.json"
    if saved.exists():
        _copy_atomic(saved, run / "model_config.json")


def _copy_atomic(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    tmp.replace(dst)
