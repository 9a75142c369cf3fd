"""The int8 Linear kernel guimo runs: 8-bit activations over 7-bit weights, the same integers on every x86 CPU.

torch's dynamically quantized Linear rounds each call's input to **7** bits (``reduce_range=True``, hard-coded),
because FBGEMM's AVX2 kernel (``vpmaddubsw``) adds two u8 x s8 products in int16 and would saturate:
255 x 127 x 2 = 64,770 > 32,767. CPUs with VNNI accumulate in int32 and need no such margin, but a model validated
on one must give the same answers on the other. ONNX Runtime's answer (its ``reduce_range`` option) is to take the
bit from the weights instead: weights in -64..63 make 255 x 64 x 2 = 32,640, which fits, so the input keeps all 8
bits and the integer products are exact on AVX2 and VNNI alike. A weight is rounded per output channel, to its own
row's range, while an input is rounded per call, to the whole batch's range, which one outlier channel can set: the
bit is worth more on the input. Measured on BANKING77's fine-tuned MiniLM (docs/benchmarks/text.md): test
predictions that differ from fp32 2.5% (7-bit inputs) and 1.3% (8-bit inputs, 8-bit weights, VNNI only).

``model.int8.safetensors`` records the input width (metadata ``activation_bits``); files written before this
module (no key) ran 7-bit inputs over 8-bit weights and are loaded that way.
"""

from __future__ import annotations

import warnings
from typing import Iterable

import torch
import torch.nn as nn
from torch.ao.nn.quantized import dynamic as nnqd

ACTIVATION_BITS = 8  # what save_int8 writes; 7 is the stock torch module (older files)
WEIGHT_QMIN, WEIGHT_QMAX = -64, 63  # 7-bit weights: 255 x 64 x 2 = 32,640 <= int16's 32,767


class Int8Linear(nnqd.Linear):
    """torch's dynamic int8 Linear with the input rounded to 8 bits (``reduce_range=False``); its weights must lie in
    ``WEIGHT_QMIN..WEIGHT_QMAX`` (``linear_qconfig`` observes them so) for AVX2's int16 sums to stay exact."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.quantized.linear_dynamic(x, self._packed_params._packed_params, reduce_range=False).to(x.dtype)

    def _get_name(self) -> str:
        return "Int8Linear"


def linear_qconfig(activation_bits: int):
    """The qconfig of a quantized Linear: per-channel symmetric weights, 7-bit with 8-bit inputs, 8-bit with 7-bit."""
    from torch.ao.quantization import QConfig, default_dynamic_quant_observer, per_channel_dynamic_qconfig
    from torch.ao.quantization.observer import PerChannelMinMaxObserver

    if activation_bits == 7:
        return per_channel_dynamic_qconfig
    weight = PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric,
                                                quant_min=WEIGHT_QMIN, quant_max=WEIGHT_QMAX)
    return QConfig(activation=default_dynamic_quant_observer, weight=weight)


def module_mapping(activation_bits: int) -> dict[type, type]:
    """``quantize_dynamic``'s float -> quantized module map, with Linear -> :class:`Int8Linear` for 8-bit inputs."""
    from torch.ao.quantization.quantization_mappings import get_default_dynamic_quant_module_mappings

    mapping = dict(get_default_dynamic_quant_module_mappings())
    if activation_bits == 8:
        mapping[nn.Linear] = Int8Linear
    elif activation_bits != 7:
        raise ValueError(f"activation_bits = {activation_bits}: 7 or 8")
    return mapping


def quantize_modules(model: nn.Module, linears: Iterable[str], tables: Iterable[str] = (),
                     activation_bits: int = ACTIVATION_BITS) -> nn.Module:
    """A copy of ``model`` (CPU, eval mode) with the named Linear layers int8 (:class:`Int8Linear` for 8-bit inputs)
    and the named embedding tables as 8-bit rows (torch's weight-only ``quint8`` embedding, a scale and an offset
    per row); everything else stays float. The one place guimo calls ``quantize_dynamic``."""
    from torch.ao.quantization import float_qparams_weight_only_qconfig, quantize_dynamic

    spec = {**{n: linear_qconfig(activation_bits) for n in linears}, **{n: float_qparams_weight_only_qconfig for n in tables}}
    with warnings.catch_warnings():  # torch.ao prints a migration notice on every call
        warnings.simplefilter("ignore")
        return quantize_dynamic(model.to("cpu").eval(), spec, dtype=torch.qint8, mapping=module_mapping(activation_bits), inplace=False)


def is_quantized(model: nn.Module) -> bool:
    """Whether any module of ``model`` runs int8 kernels."""
    return any(isinstance(m, nnqd.Linear) or type(m).__module__.startswith("torch.ao.nn.quantized") for m in model.modules())
