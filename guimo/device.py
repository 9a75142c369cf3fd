"""Device and precision choices, made once and explained in the manifest.

Shared by training, the server and the CLI: it lives at the top of the package so that `guimo.serve`
never imports `guimo.train`.
"""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: the GPU when torch sees one, else the CPU. A device named outright is checked here, so a run
    that asks for a GPU it cannot have stops with one clear line instead of torch's error at the first tensor
    moved (after the data stages have already run)."""
    from guimo.errors import GuimoError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GuimoError(f"train.device = '{name}': not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch is a CPU build" if torch.version.cuda is None else "no GPU is visible (CUDA_VISIBLE_DEVICES, driver)"
            raise GuimoError(f"train.device = '{name}', but torch {torch.__version__} sees no CUDA device ({why}); use auto or cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise GuimoError(f"train.device = '{name}', but torch sees {torch.cuda.device_count()} CUDA device(s) (cuda:0 .. cuda:{torch.cuda.device_count() - 1})")
    elif device.type != "cpu":
        raise GuimoError(f"train.device = '{name}': guimo trains on cpu or cuda (auto picks); '{device.type}' is not supported")
    return device


def describe(device: torch.device) -> str:
    """'cpu', or 'cuda:0 (NVIDIA H200)': what a manifest records about where a stage ran."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(device)


# -- the CPU ------------------------------------------------------------------------------------

# The ISA flags (Linux /proc/cpuinfo names) that decide how fast bf16 is on a CPU: avx512_bf16 converts and
# dot-products bf16 in AVX-512 registers; AMX (amx_tile + amx_bf16) multiplies bf16 tiles in a matrix unit.
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def cpu_info(cpuinfo: str | None = None) -> dict[str, Any]:
    """The CPU a figure or a run was measured on: ``{"model", "cores", "flags", "capability"}``.

    ``flags`` is the subset of :data:`CPU_FLAGS` the CPU has; ``capability`` is the kernel set torch dispatches
    to (``torch.backends.cpu.get_cpu_capability()``: DEFAULT, AVX2, AVX512; ``ATEN_CPU_CAPABILITY`` lowers it).
    Recorded because a speed (and, in bf16, a result) depends on it: on an Intel Xeon with AMX a 2048^3 matmul ran
    7x faster in bf16 than in fp32, far beyond what the AMD EPYC here gains. ``cpuinfo`` is /proc/cpuinfo's text (read when None;
    given by tests); off Linux the model is ``platform.processor()`` and the flags are unknown (empty).
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("model name", "flags") and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    present = set(fields.get("flags", "").split())
    return {
        "model": fields.get("model name") or platform.processor() or platform.machine() or "unknown",
        "cores": os.cpu_count(),
        "flags": [f for f in CPU_FLAGS if f in present],
        "capability": torch.backends.cpu.get_cpu_capability(),
    }


def cpu_supports_bf16(cpu: dict[str, Any] | None = None) -> bool:
    """True when the CPU has native bf16 matmul (avx512_bf16 or AMX), where autocast can pay off."""
    flags = (cpu or cpu_info())["flags"]
    return "avx512_bf16" in flags or "amx_bf16" in flags


# -- precision ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bf16Evidence:
    """What bf16 measured against fp32 on one CPU ISA: the rule of :func:`choose_precision` reads it."""

    step_speedup: float | None  # the smallest bf16/fp32 training-step speed ratio measured (LM, recommender); None: unmeasured
    equal_quality: bool | None  # validation quality at equal steps within the bench's tolerance; None: unmeasured
    source: str  # where the figures are (a docs page, an issue)


# bf16 autocast picks itself on a CPU only where a training step measured >= this much faster at equal quality.
MIN_BF16_SPEEDUP = 1.5

# The recorded measurements, by the ISA that makes bf16 fast. Only AMX can turn bf16 on by itself (issue #22:
# "bf16 on CPUs with AMX, where it is >= 1.5x faster at equal validation quality"). On AMX only a matmul has
# been measured (2048^3 on one thread of an Intel Xeon: 1,051 GFLOP/s in bf16 against 146 in fp32, 7.2x);
# a training step also runs softmax, layer norm, dropout and the optimizer in fp32, so its speed-up is smaller
# and unknown until bench/device_bf16.py runs on an AMX machine and its figures are entered here. Until then
# auto stays fp32 on AMX too, and says why. avx512_bf16 without AMX is recorded for the docs only.
CPU_BF16_EVIDENCE: dict[str, Bf16Evidence] = {
    "amx_bf16": Bf16Evidence(
        step_speedup=None, equal_quality=None,
        source="issue #22: 2048^3 matmul 7.2x on an Intel Xeon with AMX; training steps unmeasured (docs/benchmarks/device.md)"),
    # 4 interleaved rounds, 1 thread, load average 5-9: LM step (model=tiny) 0.82x, i.e. slower in bf16; marketplace
    # recommender step 0.95x; Beauty step 1.10x; catalogue scoring 1.66x. Quality equal at 150/60 steps, but an earlier
    # 2-round run had the LM's val loss +1.1% at step 300 (bench/results/history/device_bf16_2rounds.json): not equal.
    "avx512_bf16": Bf16Evidence(
        step_speedup=0.82, equal_quality=False,
        source="bench/device_bf16.py on a 2-core AMD EPYC, 2026-12-06 (docs/benchmarks/device.md)"),
}


def choose_precision(precision: str, device: torch.device, cpu: dict[str, Any] | None = None,
                     evidence: dict[str, Bf16Evidence] | None = None) -> tuple[str, str]:
    """The precision a run trains in, and why, for the manifest: ``("fp32" | "bf16", reason)``.

    ``auto`` is bf16 on a CUDA GPU that supports it. On a CPU it is bf16 only where the CPU has AMX (amx_bf16)
    *and* the recorded evidence for AMX (:data:`CPU_BF16_EVIDENCE`) says a training step ran >= 1.5x faster at
    equal validation quality; otherwise fp32. fp32 also keeps a run bit-reproducible across machines: bf16
    results depend on which kernels the CPU dispatches to (AMX, avx512_bf16, AVX2 emulation), so the same seed
    gives different weights on different CPUs. ``cpu`` and ``evidence`` default to this machine's
    :func:`cpu_info` and the recorded table (tests inject them).
    """
    if precision not in ("auto", "fp32", "bf16"):
        from guimo.errors import GuimoError

        raise GuimoError(f"train.precision = '{precision}': use auto, fp32 or bf16")
    if precision != "auto":
        return precision, f"train.precision = {precision}, set by the config"
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bf16", "auto: a CUDA GPU with bf16 (fp32 master weights, bf16 matmuls)"
        return "fp32", "auto: this CUDA GPU has no bf16"
    cpu = cpu_info() if cpu is None else cpu
    evidence = CPU_BF16_EVIDENCE if evidence is None else evidence
    if "amx_bf16" not in cpu["flags"]:
        has = "avx512_bf16 but no AMX" if "avx512_bf16" in cpu["flags"] else "no AMX"
        return "fp32", f"auto: CPU {cpu['model']} has {has}; bf16 is picked only with AMX"
    amx = evidence.get("amx_bf16")
    if amx is None or amx.step_speedup is None or amx.equal_quality is None:
        return "fp32", f"auto: CPU {cpu['model']} has AMX, but no bf16 training step is measured on AMX yet ({amx.source if amx else 'no record'})"
    if amx.step_speedup < MIN_BF16_SPEEDUP or not amx.equal_quality:
        return "fp32", (f"auto: CPU {cpu['model']} has AMX, but bf16 measured {amx.step_speedup:.2f}x"
                        f"{'' if amx.equal_quality else ' and lost validation quality'} (needs >= {MIN_BF16_SPEEDUP}x at equal quality; {amx.source})")
    return "bf16", (f"auto: CPU {cpu['model']} has AMX and bf16 measured {amx.step_speedup:.2f}x at equal quality ({amx.source}); "
                    "bf16 weights are not bit-identical across CPUs")


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision alone (see :func:`choose_precision` for the rule and its reason)."""
    return choose_precision(precision, device)[0]


def autocast(precision: str, device: torch.device):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
