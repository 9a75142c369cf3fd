"""Post-training int8 dynamic quantization of Linear layers, for CPU inference.

``torch.ao.quantization.quantize_dynamic`` stores each Linear weight as int8 with one scale per
output channel (symmetric, zero point 0) and quantizes activations on the fly: 8-bit inputs over
7-bit weights (guimo.models.int8 says why). A Linear whose
weight is shared with another module (an LM head tied to the token embedding) stays in float:
the embedding is a lookup table and the two must stay one tensor.

Two artifacts come out of a kept quantization:

- ``model.int8.safetensors``, the int8 format (metadata ``format=guimo-int8-dynamic-v1``): for every
  quantized Linear ``NAME``, ``NAME.weight`` (int8, out x in), ``NAME.weight_scale`` (float32, out)
  and ``NAME.bias`` (float32) when it has one; every other tensor as in the float state dict;
  metadata ``activation_bits``, how wide the inputs are rounded (8; absent in older files: 7).
  ``load_int8(model, path)`` rebuilds the quantized module from it exactly.
- ``model.safetensors``, the dequantized weights (int8 x scale) in the float layout, for readers
  that need float weights (CUDA, fine-tuning from the run). On CPU, ``load_model`` (and so the
  server, ``guimo generate``, ``guimo recommend``) runs the int8 file with int8 kernels.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn

from guimo.models.load import INT8_FORMAT as FORMAT
from guimo.models.load import load_int8  # noqa: F401 - reading int8 lives with the other loaders, which serving imports
from guimo.train.checkpoint import model_state


def quantizable(model: nn.Module) -> list[str]:
    """Names of the Linear modules to quantize: all but those whose weight is shared (tied). A tied weight
    is one Parameter object under two names, which also holds on the meta device (where every tensor has
    the same null data pointer), so ``int8_file_bytes`` can size a model without allocating it."""
    uses: dict[int, int] = {}
    for _, p in model.named_parameters(remove_duplicate=False):
        uses[id(p)] = uses.get(id(p), 0) + 1
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and uses[id(m.weight)] == 1]


def int8_file_bytes(model: nn.Module) -> int:
    """Bytes of the tensors ``save_int8`` would write for ``model``, from shapes alone (meta tensors do):
    1 byte per quantized weight plus a float32 scale per output channel and the float32 bias; every
    other tensor (embeddings, norms, a tied head) stays float32. What a device must hold: the int8
    format keeps 1.1-3.3 bytes per parameter on the lm presets, not 1, because embeddings stay float."""
    names = set(quantizable(model))
    total = 0
    for name, module in model.named_modules():
        if name in names:
            out_features = module.weight.shape[0]
            total += module.weight.numel() + 4 * out_features + (4 * out_features if module.bias is not None else 0)
    seen: set[int] = set()
    for pname, t in [*model.named_parameters(), *model.named_buffers()]:
        owner = pname.rsplit(".", 1)[0] if "." in pname else ""
        if owner in names or id(t) in seen:
            continue
        seen.add(id(t))
        total += t.numel() * 4
    return total


def quantizable_embeddings(model: nn.Module) -> list[str]:
    """Names of the nn.Embedding modules whose table is not shared with a head (a tied table stays float)."""
    uses: dict[int, int] = {}
    for _, p in model.named_parameters(remove_duplicate=False):
        uses[id(p)] = uses.get(id(p), 0) + 1
    return [n for n, m in model.named_modules() if isinstance(m, nn.Embedding) and uses[id(m.weight)] == 1]


def quantize(model: nn.Module, embeddings: bool = False, keep_float: Sequence[str] = ()) -> tuple[nn.Module, list[str]]:
    """An int8 dynamically quantized copy of ``model`` (on CPU, eval mode) and the quantized names.

    ``embeddings``: also store untied embedding tables as 8-bit rows (per-row float scale and offset,
    torch's weight-only ``quint8`` embedding): a word-piece table is most of a small encoder's bytes
    (MiniLM: 47 of 90 MB). Their names come last in the list and the file's ``embeddings`` metadata.
    ``keep_float``: Linear layers to leave in float (see :func:`int8_errors`)."""
    from guimo.models.int8 import quantize_modules

    model = model.to("cpu").eval()
    linear, kept = quantizable(model), set(keep_float)
    if kept - set(linear):
        raise ValueError(f"keep_float names no quantizable Linear layer: {sorted(kept - set(linear))}")
    names = [n for n in linear if n not in kept]
    tables = quantizable_embeddings(model) if embeddings else []
    return quantize_modules(model, names, tables), names + tables


def int8_errors(model: nn.Module, qmodel: nn.Module, names: Sequence[str], feed: Callable[[nn.Module], Any]) -> dict[str, float]:
    """Each quantized Linear's own int8 error: ``|int8(x) - float(x)|^2 / |float(x)|^2`` summed over every
    input ``feed(model)`` passes through the float model (``feed`` is the scenario's validation function).

    Dynamic quantization rounds each call's input to 8 bits over its whole range, so a layer whose
    inputs carry a few large outlier channels loses more precision than the rest (in fine-tuned MiniLM the
    MLPs' first layers, which read LayerNorm outputs: Bondarenko et al. 2021). Those layers are the ones worth keeping in float: the
    optimize stage keeps the worst in float, in this order, until the validation metric is within
    tolerance. Each layer is measured on the float model's own activations, with the int8 kernels the
    quantized model will run (``qmodel``'s module of the same name), so the errors do not compound."""
    modules, qmodules = dict(model.named_modules()), dict(qmodel.named_modules())
    linear = [n for n in names if isinstance(modules[n], nn.Linear)]
    err = {n: 0.0 for n in linear}
    ref = {n: 0.0 for n in linear}

    def hook(name: str):
        def record(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
            with torch.no_grad():
                q = qmodules[name](args[0].float().contiguous())
                err[name] += float((q - out.float()).pow(2).sum())
                ref[name] += float(out.float().pow(2).sum())
        return record

    handles = [modules[n].register_forward_hook(hook(n)) for n in linear]
    try:
        feed(model)
    finally:
        for h in handles:
            h.remove()
    return {n: err[n] / ref[n] if ref[n] > 0 else 0.0 for n in linear}


def _is_table(module: nn.Module) -> bool:
    from torch.ao.nn.quantized import Embedding as QEmbedding

    return isinstance(module, QEmbedding)


def int8_tensors(qmodel: nn.Module, float_model: nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    """The int8 format's tensors (see the module docstring)."""
    out = {k: v for k, v in model_state(float_model).items() if not any(k.startswith(n + ".") for n in names)}
    modules = dict(qmodel.named_modules())
    for n in names:
        if _is_table(modules[n]):  # 8-bit rows: uint8 values, a float scale and offset per row
            w = modules[n].weight()
            out[f"{n}.weight"] = w.int_repr()
            out[f"{n}.weight_scale"] = w.q_per_channel_scales().float()
            out[f"{n}.weight_zero_point"] = w.q_per_channel_zero_points().float()
            continue
        w, b = modules[n]._weight_bias()
        if w.qscheme() not in (torch.per_channel_symmetric, torch.per_channel_affine) or bool(w.q_per_channel_zero_points().any()):
            raise ValueError(f"{n}: expected symmetric per-channel int8 weights")
        out[f"{n}.weight"] = w.int_repr()
        out[f"{n}.weight_scale"] = w.q_per_channel_scales().float()
        if b is not None:
            out[f"{n}.bias"] = b.detach().float()
    return out


def dequantized_state(qmodel: nn.Module, float_model: nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    """Float state dict whose quantized Linear weights are int8 x scale (what model.safetensors holds)."""
    state = dict(model_state(float_model))
    modules = dict(qmodel.named_modules())
    for n in names:
        w = modules[n].weight() if _is_table(modules[n]) else modules[n]._weight_bias()[0]
        state[f"{n}.weight"] = w.dequantize().float()
    return state


def save_int8(path: str | Path, qmodel: nn.Module, float_model: nn.Module, names: list[str]) -> int:
    """Write the int8 format atomically; return its size in bytes."""
    from guimo.io import atomic_save_safetensors

    modules = dict(qmodel.named_modules())
    from guimo.models.int8 import ACTIVATION_BITS

    meta = {"format": FORMAT, "quantized": json.dumps(names), "embeddings": json.dumps([n for n in names if _is_table(modules[n])]),
            "activation_bits": str(ACTIVATION_BITS)}
    p = atomic_save_safetensors(path, int8_tensors(qmodel, float_model, names), metadata=meta)
    return p.stat().st_size


def float_bytes(model: nn.Module) -> int:
    """Size of the float model as a safetensors file (what model.safetensors weighs)."""
    from safetensors.torch import save

    return len(save({k: v.detach().contiguous().cpu() for k, v in model_state(model).items()}))
