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
   ``optimize.quantize_tolerance`` (relative); when it changes more, the layers with the largest
   int8 error stay float, a few more at a time, up to ``optimize.quantize_fallback`` of them;
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

TRAINED = "checkpoints/best.safetensors"


@dataclasses.dataclass
class Kept:
    """The model the stage would serve so far, and where it came from."""

    model: Any
    value: float  # its validation metric
    source: str  # "checkpoints/best.safetensors", "optimize/retrain", "optimize/trial-3", "... + int8"
    model_cfg: Any = None  # set when it differs from the trained model's architecture
    state: dict | None = None  # weights to write when they are not the model's own (dequantized int8)


def optimize(scenario, ctx: Context) -> dict:
    opt, run = ctx.cfg.optimize, ctx.run
    restore_trained_architecture(run)
    (run / "model.int8.safetensors").unlink(missing_ok=True)  # served in place of model.safetensors while it exists
    if opt.trials == 0 and not opt.quantize:
        _copy_atomic(run / TRAINED, run / "model.safetensors")
        return {"search": None, "quantize": None, "final": TRAINED}

    from guimo.errors import GuimoError
    from guimo.io import read_json
    from guimo.models.load import load_model
    from guimo.train import distributed

    if opt.trials > 0 and distributed.current().enabled:  # trials train on rank 0 alone
        raise GuimoError("the optimize search runs in one process: re-run it without torchrun, e.g. "
                         f"guimo run {scenario.name} --out {run.path} --from optimize --set optimize.trials={opt.trials}")
    inputs = scenario.train_inputs(ctx)
    metric, hib = inputs.metric, inputs.higher_is_better
    model = load_model(scenario, run, weights=run / TRAINED)
    kept = Kept(model, inputs.evaluate(model)[metric], TRAINED)
    report: dict[str, Any] = {"metric": metric, "higher_is_better": hib, "split": "val",
                              "baseline": {"value": kept.value, "weights": TRAINED}, "search": None, "quantize": None}
    if opt.trials > 0:
        report["search"], kept = _search(scenario, ctx, kept, metric, hib)
    if opt.quantize:
        report["quantize"], kept = _quantize(ctx, kept, inputs.evaluate, metric, hib)
    _write(run, kept)

    current = read_json(run / "metrics.json") if (run / "metrics.json").exists() else None
    before = current.get("model") if current else None  # the trained model's test metrics...
    if current and "optimized" in current:  # ...unless an earlier optimize made metrics.json describe its own model
        before = current["optimized"]["before"]
    report["final_value"] = _reevaluate(scenario, ctx, inputs.evaluate, metric, kept, before)
    report["final"] = {"weights": "model.safetensors", "source": kept.source}
    report["test_before"] = before
    from guimo.io import atomic_write_json

    atomic_write_json(run / "optimize.json", report)
    search, quant = report["search"], report["quantize"]
    return {
        "search": None if search is None else {"trials": len(search["trials"]), "kept": search["kept"], "best_params": search["best_params"]},
        "quantize": None if quant is None else {k: quant[k] for k in ("fp32_bytes", "int8_bytes", "relative_change", "kept")},
        "final": kept.source,
        metric: report["final_value"],
    }


def _search(scenario, ctx: Context, kept: Kept, metric: str, hib: bool) -> tuple[dict, Kept]:
    """Run the trials; the best (as a full-length model) replaces ``kept`` only if it is better."""
    from guimo.optimize import search as srch
    from guimo.models.load import load_weights, read_weights

    if (ctx.run / "optimize").exists():
        shutil.rmtree(ctx.run / "optimize")  # a new search; trials are not resumed
    result = srch.run_search(scenario, ctx, metric, hib)
    candidate = srch.best_candidate(scenario, ctx, result)
    won = candidate is not None and srch.is_better(candidate.value, kept.value, hib)
    report = {
        "space": {k: list(v) if v[0] != "choice" else ["choice", list(v[1])] for k, v in srch.search_space(ctx.cfg).items()},
        "trial_steps": ctx.cfg.optimize.trial_steps, "timeout_s": ctx.cfg.optimize.timeout_s,
        "pruner": "median" if ctx.cfg.optimize.prune else None,
        "trials": [dataclasses.asdict(t) for t in result.trials],
        "best_trial": result.best_trial, "best_params": result.best_params, "best_trial_value": result.best_value,
        "candidate": None if candidate is None else {"source": candidate.source, "value": candidate.value},
        "kept": won,
    }
    if not won:
        return report, kept
    model_cfg = scenario.model_config(Context(run=ctx.run, cfg=candidate.cfg, progress=ctx.progress, quiet=True))
    model = scenario.build_model(model_cfg)
    load_weights(model, read_weights(candidate.weights), strict=True)
    return report, Kept(model, candidate.value, candidate.source, model_cfg=model_cfg)


def _quantize(ctx: Context, kept: Kept, evaluate, metric: str, hib: bool) -> tuple[dict, Kept]:
    """int8 dynamic quantization of the kept model; kept in turn if the metric stays within tolerance.

    When quantizing every Linear layer misses the tolerance, the layers with the largest int8 error
    (guimo.optimize.quantize.int8_errors, measured on the validation inputs) stay in float, 1, 2, 4, ...
    of them up to ``optimize.quantize_fallback``, each count validated; the first within tolerance is kept.
    """
    from guimo.optimize import quantize as q8

    opt, run = ctx.cfg.optimize, ctx.run
    model = kept.model.to("cpu").eval()

    def change_of(value: float) -> float:
        return (value - kept.value) / abs(kept.value) if kept.value else 0.0

    def within(value: float) -> bool:
        return (-change_of(value) if hib else change_of(value)) <= opt.quantize_tolerance

    qmodel, names = q8.quantize(model, embeddings=opt.quantize_embeddings)
    int8_value = evaluate(qmodel)[metric]
    attempts = [{"float_layers": [], "value": int8_value, "relative_change": change_of(int8_value)}]
    errors: dict[str, float] = {}
    order: list[str] = []  # the quantized Linear layers, largest int8 error first
    if not within(int8_value) and opt.quantize_fallback > 0:
        errors = q8.int8_errors(model, qmodel, names, evaluate)
        order = sorted(errors, key=errors.__getitem__, reverse=True)
        for k in fallback_counts(opt.quantize_fallback, len(order)):
            qmodel, names = q8.quantize(model, embeddings=opt.quantize_embeddings, keep_float=order[:k])
            int8_value = evaluate(qmodel)[metric]
            attempts.append({"float_layers": order[:k], "value": int8_value, "relative_change": change_of(int8_value)})
            if within(int8_value):
                break
    accepted = within(int8_value)
    int8_path = run / "model.int8.safetensors"
    int8_bytes = q8.save_int8(int8_path, qmodel, model, names)
    if not accepted:
        int8_path.unlink()
    report = {
        "scheme": "int8 dynamic, per-channel symmetric weights, Linear layers (tied ones stay float)"
                  + ("; untied embedding tables as 8-bit rows" if opt.quantize_embeddings else ""),
        "modules": names, "float_layers": attempts[-1]["float_layers"],
        "fp32_bytes": q8.float_bytes(model), "int8_bytes": int8_bytes,
        "value_before": kept.value, "value_int8": int8_value, "relative_change": change_of(int8_value),
        "tolerance": opt.quantize_tolerance, "kept": accepted,
        "artifact": "model.int8.safetensors" if accepted else None,
        "attempts": attempts, "int8_errors": {n: errors[n] for n in order},
    }
    if not accepted:
        return report, kept
    deq = q8.dequantized_state(qmodel, model, names)
    float_note = f" ({len(report['float_layers'])} Linear layers float)" if report["float_layers"] else ""
    return report, dataclasses.replace(kept, value=int8_value, source=f"{kept.source} + int8{float_note}", state=deq)


def fallback_counts(cap: int, n: int) -> list[int]:
    """How many of the worst layers to keep in float, in the order tried: 1, 2, 4, ... up to ``cap``
    (which is tried last when it is not a power of two), and always fewer than all ``n``."""
    top = min(cap, n - 1)
    counts = [1 << i for i in range(max(top, 0).bit_length())]
    return counts + ([top] if counts and counts[-1] != top else [])


def _write(run, kept: Kept) -> None:
    """model.safetensors, and model_config.json when the architecture changed (the trained one is
    saved once in optimize/trained_model_config.json so a re-run of this stage can restore it)."""
    from guimo.config import to_dict
    from guimo.io import atomic_save_safetensors, atomic_write_json, read_json
    from guimo.train.checkpoint import model_state

    if kept.model_cfg is not None:
        trained = run / "optimize" / "trained_model_config.json"
        if not trained.exists():
            atomic_write_json(trained, read_json(run / "model_config.json"))
        atomic_write_json(run / "model_config.json", to_dict(kept.model_cfg))
    atomic_save_safetensors(run / "model.safetensors", kept.state if kept.state is not None else model_state(kept.model))


def _reevaluate(scenario, ctx: Context, evaluate, metric: str, kept: Kept, before: dict | None) -> float:
    """Validation value of what is now served; metrics.json rewritten unless nothing changed (the trained model kept:
    the pipeline re-scores it when an earlier optimize had rewritten the file). ``before``: the trained model's test metrics."""
    if kept.source == TRAINED:
        return kept.value
    from guimo.io import atomic_write_json
    from guimo.models.load import load_model

    model = load_model(scenario, ctx.run)  # exactly what the server and `guimo generate` will load
    value = evaluate(model)[metric]
    metrics = scenario.evaluate(ctx, model)
    metrics.setdefault("headline", scenario.headline)
    metrics.setdefault("higher_is_better", scenario.higher_is_better)
    metrics["optimized"] = {"source": kept.source, "before": before}
    atomic_write_json(ctx.run / "metrics.json", metrics)
    return value


def restore_trained_architecture(run, forget: bool = False) -> None:
    """Put back the trained model's architecture after an earlier search winner replaced it.

    A re-run of this stage starts from the trained model, not the winner; a re-run of training
    (``forget``) also drops the saved copy, since what init writes next is the trained architecture.
    """
    saved = run / "optimize" / "trained_model_config.json"
    if saved.exists():
        _copy_atomic(saved, run / "model_config.json")
        if forget:
            saved.unlink()


def _copy_atomic(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    tmp.replace(dst)
