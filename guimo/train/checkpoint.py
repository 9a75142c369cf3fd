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

from guimo.errors import GuimoError
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
    extra: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write checkpoint ``step``; ``extra`` tensors (the loop's validation window) travel with it (``load_extra``)."""
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v for k, v in model_state(model).items()}
    tensors |= {f"extra.{k}": v for k, v in (extra or {}).items()}
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


class SkippedCheckpointWarning(UserWarning):
    """A checkpoint file that could not be read was passed over for an older one."""


def latest(directory: Path) -> Path | None:
    """Stem of the newest readable checkpoint, or None when there is none to resume.

    Readable means: the JSON (written last, the commit marker) parses and names its step, and its
    safetensors file has a whole header covering the whole file with the RNG state in it
    (safetensors checks that when opening, reading only the header). A newer checkpoint that is
    not readable (a kill mid-write on a filesystem without atomic rename, a truncated copy) is
    skipped with a ``SkippedCheckpointWarning`` naming the file and why. Tensors without their JSON
    were never committed and are passed over quietly. When JSON files exist but none of them is
    readable, resuming is impossible and starting again from step 0 would discard the run's
    progress and its log, so this raises a GuimoError naming every file and its problem.
    """
    import warnings

    problems: list[str] = []
    for meta in sorted(directory.glob("step-*.json"), reverse=True):
        problem = _unreadable(meta)
        if problem is None:
            for p in problems:
                warnings.warn(f"skipping an unreadable checkpoint: {p}; resuming from {meta.with_suffix('')}", SkippedCheckpointWarning,
                              stacklevel=2)
            return meta.with_suffix("")
        problems.append(problem)
    if problems:
        raise GuimoError("no checkpoint can be read, so training cannot resume (and will not start over on its own): "
                         + "; ".join(problems) + f". Move {directory} aside to train from step 0.")
    return None


def _unreadable(meta: Path) -> str | None:
    """Why the checkpoint whose JSON is ``meta`` cannot be resumed from, or None when it can."""
    from safetensors import SafetensorError, safe_open

    try:
        record = json.loads(meta.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return f"{meta}: {type(e).__name__}: {e}"
    if not isinstance(record, dict) or not isinstance(record.get("step"), int):
        return f"{meta}: no integer 'step' key"
    tensors = meta.with_suffix(".safetensors")
    try:
        with safe_open(str(tensors), framework="pt") as f:
            if "rng.torch" not in f.keys():
                return f"{tensors}: no 'rng.torch' tensor (not a training checkpoint)"
    except (OSError, SafetensorError) as e:
        return f"{tensors}: {type(e).__name__}: {e}"
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
    saved = [len(g["params"]) for g in meta["param_groups"]]
    now = [len(g["params"]) for g in optimizer.param_groups]
    if saved != now:  # e.g. a checkpoint written by a guimo whose optimizer grouped the parameters otherwise
        raise GuimoError(f"{stem.with_suffix('.json')}: the optimizer state holds parameter groups of sizes {saved}, this model's "
                         f"optimizer {now} (another guimo version or model settings wrote it), so training cannot resume from it. "
                         f"Move {stem.parent} aside to train from step 0.")
    optimizer.load_state_dict({"state": opt_state, "param_groups": meta["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    cuda_states = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states[: torch.cuda.device_count()])
    return meta


def load_extra(stem: Path) -> dict[str, torch.Tensor]:
    """The ``extra`` tensors that ``save`` wrote with checkpoint ``stem`` (empty when there were none)."""
    from safetensors import safe_open

    with safe_open(str(stem.with_suffix(".safetensors")), framework="pt") as f:
        return {k[6:]: f.get_tensor(k) for k in f.keys() if k.startswith("extra.")}
