"""`flowergan bench --what fid`: images/s of FID's feature extraction (NVlabs resize, Inception pool3)."""

from __future__ import annotations

from typing import Any

import torch

from flowergan.benchmarking import tools as benchtools
from flowergan.metrics.detectors import describe, resolve_inception


def run_bench(batch: int = 16, device: str = "cpu", num: int | None = None, resolution: int = 256,
              repeats: int = 3, warmup: int = 1, detector: Any = None, allow_download: bool | None = None,
              seed: int = 0) -> list[dict]:
    """Time feature extraction (uint8 -> resize to 299 -> (x-128)/128 -> Inception pool3) of random images.

    `batch`: images per detector call; `num`: images per timed run (default `batch`), fed in batches of
    `batch`; `resolution`: side of the square input images; `repeats` timed runs after `warmup` untimed
    ones, the median is reported; `detector`: TorchScript path or callable (None: the usual search, see
    docs/metrics.md). Returns one `benchtools.record("fid", ...)` whose `img_per_s` is num / median seconds.
    """
    det = resolve_inception(detector, device, allow_download, progress=False)
    num = batch if num is None else num
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, [num, 3, resolution, resolution], generator=gen, dtype=torch.uint8)
    images = images.to(device)

    def run() -> None:
        for chunk in images.split(batch):
            det(chunk)

    benchtools.reset_peak_mem(device)
    seconds, times = benchtools.time_median(run, device, warmup=warmup, repeats=repeats)
    config = {"batch": batch, "num": num, "resolution": resolution, "repeats": repeats, "warmup": warmup}
    return [benchtools.record("fid", images=num, seconds=seconds, device=device, config=config,
                              detector=describe(det), times=[round(t, 4) for t in times])]
