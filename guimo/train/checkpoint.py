"""Resumable checkpoints as plain data: tensors in safetensors, everything else in JSON.

A checkpoint is two files, ``step-000120.safetensors`` (model, optimizer moments, RNG states)
and ``step-000120.json`` (step, data position, optimizer hyperparameters, early-stopping state).
Both are written atomically and the JSON is written last, so the JSON's presence marks a
complete checkpoint; a kill between the two leaves the previous checkpoint as the latest.
No pickle anywhere: loading never executes code (unlike RecBole's torch.save'd configs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from guimo.io import atomic_save_safetensors, atomic_write_json
from guimo.models.load import load_state as load_model_state  # one strict loader for checkpoints and served weights

KEEP = 2  # checkpoints kept on disk; older ones are deleted after a newer one is complete


def model_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """State dict without tied duplicates (safetensors refuses shared storage)."""
    state, seen = {}, set()
    for name, t in model.state_dict().items():
        key = (t.data_ptr(), t.shape) if t.numel() else (name,)
        if key in seen:
            continue
        seen.add(key)
        state[name] = t
    return state


def save(
    directory: Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v for k, v in model_state(model).items()}
    opt = optimizer.state_dict()
    for pid, pstate in opt["state"].items():
        for k, v in pstate.items():
            tensors[f"optim.{pid}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    stem = directory / f"step-{step:07d}"
    atomic_save_safetensors(stem.with_suffix(".safetensors"), tensors)
    meta = {"step": step, "param_groups": opt["param_groups"], **state}
    atomic_write_json(stem.with_suffix(".json"), meta)
    for old in sorted(directory.glob("step-*.json"))[:-KEEP]:
        old.unlink(missing_ok=True)
        old.with_suffix(".safetensors").unlink(missing_ok=True)
    return stem


def latest(directory: Path) -> Path | None:
    """Stem of the newest complete checkpoint, or None.

    Complete means: the JSON (written last) parses and its safetensors file has a whole header
    covering the whole file (safetensors checks that when opening, reading only the header), so
    a torn or missing tensor file makes us fall back to the previous checkpoint.
    """
    from safetensors import safe_open

    for meta in sorted(directory.glob("step-*.json"), reverse=True):
        tensors = meta.with_suffix(".safetensors")
        try:
            if "step" not in json.loads(meta.read_text()):
                continue
            with safe_open(str(tensors), framework="pt") as f:
                if "rng.torch" not in f.keys():
                    continue
        except Exception:  # OSError, JSONDecodeError, SafetensorError: not a complete checkpoint
            continue
        return meta.with_suffix("")
    return None


def load(stem: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, device: torch.device) -> dict[str, Any]:
    """Restore model, optimizer and RNG states in place; return the JSON state."""
    from safetensors.torch import load_file

    tensors = load_file(str(stem.with_suffix(".safetensors")))
    meta = json.loads(stem.with_suffix(".json").read_text())
    load_model_state(model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    opt_state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, pid, name = k.split(".", 2)
            opt_state.setdefault(int(pid), {})[name] = v.to(device) if v.dim() > 0 else v
    optimizer.load_state_dict({"state": opt_state, "param_groups": meta["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    cuda_states = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states[: torch.cuda.device_count()])
    return meta
