"""Device and precision choices, made once and explained in the manifest."""

from __future__ import annotations

import contextlib

import torch


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


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
