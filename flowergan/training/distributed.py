"""Multi-process training with torch.distributed (torchrun): setup, gradient and statistic reduction.

Gradients are averaged with one flat all_reduce per phase (as DDP would, but compatible with the
double-backward regularisation phases). NCCL on CUDA, gloo on the CPU. Without torchrun: one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_from_env(device: str) -> tuple[DistInfo, torch.device]:
    """Read torchrun's RANK/WORLD_SIZE/LOCAL_RANK; init the process group; pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    info = DistInfo(rank, world, local)
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda was requested but CUDA is not available; use --device cpu")
        dev = torch.device("cuda", local if world > 1 else (dev.index or 0))
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return info, dev


# The official loop replaces non-finite gradients before each optimiser step: NaN -> 0, +-inf -> +-1e5.
SCRUB = {"nan": 0.0, "posinf": 1e5, "neginf": -1e5}


def reduce_and_scrub_grads(params: list[torch.nn.Parameter], info: DistInfo, sync_free: bool = False) -> None:
    """Average .grad of `params` over processes (one flat all_reduce), then scrub NaN/inf as the official loop.

    With `sync_free` (the accelerator path), or whenever the gradients are reduced anyway, the scrub runs once
    over one flat copy and the values go back in one foreach copy: 3 kernels instead of one per parameter (G has
    84). Without it, each gradient is scrubbed in place with no extra copies; the same numbers either way.
    """
    params = [p for p in params if p.grad is not None]
    if not params:
        return
    grads = [p.grad for p in params]
    if not (sync_free or info.enabled):
        for g in grads:
            g.nan_to_num_(**SCRUB)
        return
    buf = torch.cat([g.flatten() for g in grads])  # [sum of numel]
    if info.enabled:
        dist.all_reduce(buf)
        buf /= info.world_size
    buf.nan_to_num_(**SCRUB)
    torch._foreach_copy_(grads, [v.view_as(g) for v, g in zip(buf.split([g.numel() for g in grads]), grads)])


def all_reduce_sum_(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        dist.all_reduce(t)
    return t


def broadcast_module(module: torch.nn.Module, info: DistInfo) -> None:
    """Make every process start from rank 0's parameters and buffers."""
    if info.enabled:
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
