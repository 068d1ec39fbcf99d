"""Shared measuring helpers for `flowergan bench`: median timing, peak memory, the JSON record."""

from __future__ import annotations

import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch


def sync(device: torch.device | str) -> None:
    """Wait for queued device work so wall-clock times mean something."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_median(fn: Callable[[], Any], device: torch.device | str = "cpu", warmup: int = 1,
                repeats: int = 3) -> tuple[float, list[float]]:
    """Run `fn` `warmup` times untimed, then `repeats` times; return (median seconds, all times)."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def random_images(batch: int, channels: int, resolution: int, device: torch.device | str,
                  seed: int = 0) -> torch.Tensor:
    """Seeded uniform images in [-1, 1], [batch, channels, resolution, resolution], drawn on the CPU (the same
    pixels on every device)."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    return (torch.rand([batch, channels, resolution, resolution], generator=g) * 2 - 1).to(device)


def reset_peak_mem(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats()


def peak_mem_mb(device: torch.device | str) -> float:
    """Peak memory: `torch.cuda.max_memory_allocated` on GPU, the process's peak RSS on CPU."""
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (2**20 if sys.platform == "darwin" else 2**10)


def record(what: str, *, images: int, seconds: float, device: torch.device | str, config: Any,
           **extra: Any) -> dict[str, Any]:
    """The JSON record every `bench --what X` prints (one line)."""
    dev = torch.device(device)
    name = (torch.cuda.get_device_name(dev) if dev.type == "cuda"
            else platform.processor() or platform.machine())
    out = {
        "what": what,
        "img_per_s": images / seconds if seconds > 0 else float("inf"),
        "sec_per_batch": seconds,
        "peak_mem_mb": round(peak_mem_mb(dev), 1),
        "device": f"{dev.type}: {name}",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "config": config,
    }
    out.update(extra)
    return out
