"""DDP helpers: under `torchrun` every process trains a shard; rank 0 alone writes files.

On CPU the backend is gloo, on CUDA NCCL. Outside torchrun every function is a cheap no-op, so
the same loop runs single-process without a branch at every call site.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init(device_type: str) -> Dist:
    """Join the process group torchrun describes in the environment (idempotent)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if backend == "nccl":
            if local >= torch.cuda.device_count():
                from guimo.errors import GuimoError

                raise GuimoError(f"torchrun started process {local} on this node but torch sees {torch.cuda.device_count()} GPU(s): "
                                 "one process per GPU (--nproc_per_node), or --set train.device=cpu for processes on the CPU")
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend)
    return Dist(rank=rank, world_size=world, local_rank=local)


def current() -> Dist:
    if dist.is_available() and dist.is_initialized():
        return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return Dist()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def broadcast_flag(flag: bool, device: torch.device) -> bool:
    """Rank 0's decision (stop early, interrupted) becomes every rank's decision."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    t = torch.tensor([1 if flag else 0], device=device)
    dist.broadcast(t, src=0)
    return bool(t.item())


def broadcast_value(value: float, device: torch.device) -> float:
    """Rank 0's number (e.g. the share of a time budget spent) on every rank."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    t = torch.tensor([value], device=device, dtype=torch.float64)
    dist.broadcast(t, src=0)
    return float(t.item())


def all_reduce_mean(value: float, device: torch.device) -> float:
    if not (dist.is_available() and dist.is_initialized()):
        return value
    t = torch.tensor([value], device=device, dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()


def broadcast_object(obj):
    """Rank 0's value of a small picklable object (e.g. a timestamped run path) on every rank."""
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shutdown() -> None:
    """Leave the process group (torchrun warns when a process exits without doing so)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
