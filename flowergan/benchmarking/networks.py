"""Benchmarks of the networks alone: generator inference and discriminator forward+backward."""

from __future__ import annotations

from typing import Any

import torch

from flowergan.benchmarking import tools as benchtools
from flowergan.config import ModelConfig
from flowergan.networks import build_networks


def _inputs(cfg: ModelConfig, batch: int, device: torch.device, seed: int = 0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    z = torch.randn([batch, cfg.z_dim], generator=g).to(device)
    c = torch.zeros([batch, cfg.c_dim], device=device)
    if cfg.c_dim:
        c[torch.arange(batch), torch.arange(batch) % cfg.c_dim] = 1
    return z, c


def bench_generator(cfg: ModelConfig, batch: int = 8, device: str = "cpu", repeats: int = 3, warmup: int = 1,
                    compile: bool = False, fused_modconv: bool | None = None) -> dict[str, Any]:
    """Images/s of G(z, c) in eval mode, no grad, random noise."""
    dev = torch.device(device)
    benchtools.reset_peak_mem(dev)
    G, _ = build_networks(cfg, seed=0)
    G = G.to(dev).eval().requires_grad_(False)
    z, c = _inputs(cfg, batch, dev)
    fn = torch.compile(G) if compile else G

    def step():
        with torch.inference_mode():
            fn(z, c, noise_mode="random", fused_modconv=fused_modconv)

    sec, times = benchtools.time_median(step, dev, warmup=warmup, repeats=repeats)
    return benchtools.record("generator", images=batch, seconds=sec, device=dev, config=cfg.to_dict(),
                             batch=batch, times=times, compile=compile, fused_modconv=fused_modconv)


def bench_discriminator(cfg: ModelConfig, batch: int = 8, device: str = "cpu", repeats: int = 3,
                        warmup: int = 1) -> dict[str, Any]:
    """Images/s of D forward + backward (to the parameters and the input), as in a D training step."""
    dev = torch.device(device)
    benchtools.reset_peak_mem(dev)
    _, D = build_networks(cfg, seed=0)
    D = D.to(dev).train()
    _, c = _inputs(cfg, batch, dev)
    img = benchtools.random_images(batch, cfg.img_channels, cfg.resolution, dev, seed=1)

    def step():
        D.zero_grad(set_to_none=True)
        x = img.detach().requires_grad_(True)
        D(x, c).sum().backward()

    sec, times = benchtools.time_median(step, dev, warmup=warmup, repeats=repeats)
    return benchtools.record("discriminator", images=batch, seconds=sec, device=dev, config=cfg.to_dict(),
                             batch=batch, times=times)
