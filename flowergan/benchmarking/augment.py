"""Benchmark of ADA's augmentation pipe alone: images/s of its forward (as on the reals of D's main step) and
forward+backward to the images (as on the fakes of G's main step)."""

from __future__ import annotations

from typing import Any

import torch

from flowergan.augment.pipe import AugmentPipe
from flowergan.benchmarking import tools as benchtools
from flowergan.config import ModelConfig


def bench_augment(cfg: ModelConfig, batch: int = 8, device: str = "cpu", repeats: int = 3, warmup: int = 1,
                  aug_p: float = 0.2, preset: str = "bgc") -> list[dict[str, Any]]:
    """Two records: 'augment' (forward, no grad) and 'augment_backward' (forward + backward to the input)."""
    dev = torch.device(device)
    benchtools.reset_peak_mem(dev)
    pipe = AugmentPipe.from_preset(preset, p=aug_p).to(dev)
    img = benchtools.random_images(batch, cfg.img_channels, cfg.resolution, dev, seed=0)

    def forward():
        with torch.no_grad():
            pipe(img)

    def backward():
        x = img.detach().requires_grad_(True)
        pipe(x).sum().backward()

    out = []
    for what, fn in (("augment", forward), ("augment_backward", backward)):
        torch.manual_seed(0)  # the same random transforms in every run
        sec, times = benchtools.time_median(fn, dev, warmup=warmup, repeats=repeats)
        out.append(benchtools.record(what, images=batch, seconds=sec, device=dev, config=cfg.to_dict(),
                                     batch=batch, times=times, aug_p=aug_p, aug_preset=preset))
    return out
