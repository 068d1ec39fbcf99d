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


def all_reduce_mean_grads(params: list[torch.nn.Parameter], info: DistInfo) -> None:
    """Average .grad of `params` over processes (one flat all_reduce); also scrub NaN/inf like the official."""
    params = [p for p in params if p.grad is not None]
    if not params:
        return
    if info.enabled:
        flat = torch.cat([p.grad.flatten() for p in params])
        dist.all_reduce(flat)
        flat /= info.world_size
        for p, g in zip(params, flat.split([p.numel() for p in params])):
            p.grad.copy_(g.reshape(p.shape))


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
