"""Device and precision choices, made once and explained in the manifest.

Shared by training, the server and the CLI: it lives at the top of the package so that `guimo.serve`
never imports `guimo.train`.
"""

from __future__ import annotations

import contextlib

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


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 matmul (avx512_bf16 or AMX), where autocast pays off."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' means bf16 on CUDA (when supported) and fp32 on CPU, where fp32 keeps runs bit-reproducible."""
    if precision == "auto":
        return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    return precision


def autocast(precision: str, device: torch.device):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
