"""The optimize stage (placeholder-free minimal path: without trials or quantization it
promotes the best training checkpoint to ``model.safetensors``)."""

from __future__ import annotations

import shutil

from guimo.pipeline.context import Context


def optimize(scenario, ctx: Context) -> dict:
    opt = ctx.cfg.optimize
    best = ctx.run / "checkpoints" / "best.safetensors"
    final = ctx.run / "model.safetensors"
    if opt.trials == 0 and not opt.quantize:
        tmp = final.with_suffix(".tmp")
        shutil.copyfile(best, tmp)
        tmp.replace(final)
        return {"search": None, "quantize": None, "final": "checkpoints/best.safetensors"}
    raise NotImplementedError("Optuna search and quantization are added by the optimize module")
