"""Feeding training: the cache choice by dataset size, and a batch loader that decodes in background workers
into pinned memory, copies to the device without blocking, one step ahead, and resumes exactly.

The loader draws each batch's indices from the sampler in the main process and remembers the sampler's state
before every batch still in flight, so `sampler_state()` is the position of the next batch the trainer will
consume: a checkpoint taken mid-prefetch resumes on exactly the images the straight run would have seen.
"""

from __future__ import annotations

import collections
import logging
import os
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

CACHE_CHOICES = ("auto", "memory", "mmap", "lazy")
RAM_FRACTION = 0.25  # auto caches in memory when the decoded dataset takes at most this share of free RAM


def available_ram() -> int | None:
    """Bytes of RAM available now (Linux /proc/meminfo MemAvailable; else total physical memory; None if unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def choose_cache(decoded_bytes: int, mode: str = "auto", ram: int | None = None) -> str | None:
    """The ImageDataset cache for a dataset of `decoded_bytes` (uint8 pixels of the images read):
    'memory' when it fits in RAM_FRACTION of the available RAM, else None (read and decode lazily from the
    zip or folder with bounded memory). An explicit mode wins ('lazy' -> None)."""
    if mode not in CACHE_CHOICES:
        raise ValueError(f"data cache {mode!r}: choose one of {', '.join(CACHE_CHOICES)}")
    if mode != "auto":
        return None if mode == "lazy" else mode
    ram = available_ram() if ram is None else ram
    if ram is None or decoded_bytes <= RAM_FRACTION * ram:
        return "memory"
    log.info("dataset needs %.1f GB decoded, more than %.0f%% of the %.1f GB RAM available: reading lazily "
             "(--data-cache memory overrides)", decoded_bytes / 2**30, RAM_FRACTION * 100, ram / 2**30)
    return None


def default_workers(cache: str | None) -> int:
    """0 for a cached dataset (a batch is one vectorised gather); else up to 4 decoding processes."""
    if cache is not None:
        return 0
    return max(1, min(4, (os.cpu_count() or 2) - 1))


class _Batches(torch.utils.data.Dataset):
    """Item k of a DataLoader over this = the dataset's batch for an index array (workers decode whole batches)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:  # unused: the batch sampler is infinite
        return 1 << 62

    def __getitem__(self, idx) -> tuple[torch.Tensor, torch.Tensor]:
        img, lab = self.dataset.get_batch(np.asarray(idx, dtype=np.int64))
        return torch.from_numpy(np.ascontiguousarray(img)), torch.from_numpy(np.asarray(lab, dtype=np.float32))


class _DrawFromSampler:
    """An endless 'batch sampler' yielding index arrays of size k, recording the sampler state before each."""

    def __init__(self, sampler, k: int):
        self.sampler, self.k = sampler, k
        self.states: collections.deque = collections.deque()  # state before each drawn, unconsumed batch

    def __iter__(self):
        while True:
            self.states.append(self.sampler.state_dict())
            yield [self.sampler.take(self.k)]  # a list of one item: the index array


class BatchLoader:
    """uint8 image batches [N, C, H, W] and float32 labels [N, label_dim] on `device`, prefetched.

    Args:
        dataset: anything with `get_batch(indices) -> (uint8 [N, C, H, W], float32 [N, L])` (ImageDataset).
        sampler: has `take(k)`, `state_dict()`; drawn only in this process, in order.
        batch: images per batch.
        device: where batches go; on CUDA copies run on a side stream from pinned memory.
        workers: background processes decoding batches (0: in this process, still prefetched one ahead).
        prefetch: batches each worker keeps ready.
    """

    def __init__(self, dataset, sampler, batch: int, device: torch.device, *, workers: int = 0, prefetch: int = 2):
        self.dataset, self.sampler, self.batch, self.device = dataset, sampler, int(batch), torch.device(device)
        self.workers = int(workers)
        self._draw = _DrawFromSampler(sampler, self.batch)
        pin = self.device.type == "cuda"
        if self.workers > 0:
            dl = torch.utils.data.DataLoader(_Batches(dataset), batch_sampler=self._draw, num_workers=self.workers,
                                             collate_fn=_first, pin_memory=pin, prefetch_factor=prefetch,
                                             persistent_workers=False,
                                             # its own generator: starting workers must not draw from the global
                                             # RNG, or a resumed run's noise and latents would differ
                                             generator=torch.Generator().manual_seed(0))
            self._it = iter(dl)
        else:
            self._it = (_maybe_pin(_Batches(dataset)[idx[0]], pin) for idx in self._draw)
        self._stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        self._next: tuple[torch.Tensor, torch.Tensor] | None = None
        self._issue()

    def _issue(self) -> None:
        """Start moving the next batch to the device (non-blocking) while the current step computes."""
        img, lab = next(self._it)
        if self._stream is not None:
            with torch.cuda.stream(self._stream):
                self._next = (img.to(self.device, non_blocking=True), lab.to(self.device, non_blocking=True))
        else:
            self._next = (img.to(self.device, non_blocking=True), lab.to(self.device, non_blocking=True))

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next batch (on the device), and start the one after."""
        img, lab = self._next
        if self._stream is not None:
            torch.cuda.current_stream(self.device).wait_stream(self._stream)
            img.record_stream(torch.cuda.current_stream(self.device))
            lab.record_stream(torch.cuda.current_stream(self.device))
        self._draw.states.popleft()  # this batch is consumed: the resume point moves past it
        self._issue()
        return img, lab

    def sampler_state(self) -> dict[str, Any]:
        """The sampler's state before the first batch not yet consumed (what a checkpoint must store)."""
        return self._draw.states[0]

    def close(self) -> None:
        self._it = None
        self._next = None


def _first(batch):
    return batch[0]


def _maybe_pin(item, pin: bool):
    return tuple(t.pin_memory() for t in item) if pin else item
