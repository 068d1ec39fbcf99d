"""Exponential moving average of the generator's weights (Karras et al. 2018; the official half-life form)."""

from __future__ import annotations

import torch


def ema_beta(batch: int, ema_kimg: float, cur_nimg: int, rampup: float | None) -> float:
    """Per-step decay so the average has a half-life of `ema_kimg` thousand images (ramped up early)."""
    ema_nimg = ema_kimg * 1000
    if rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * rampup)
    return 0.5 ** (batch / max(ema_nimg, 1e-8))


@torch.no_grad()
def update_ema(G_ema: torch.nn.Module, G: torch.nn.Module, beta: float) -> None:
    """G_ema <- G + beta * (G_ema - G) for parameters; buffers (w_avg, noise) copied from G."""
    ema_p = list(G_ema.parameters())
    src_p = [p.detach() for p in G.parameters()]
    torch._foreach_lerp_(ema_p, src_p, 1.0 - beta)
    buffers = list(G_ema.buffers())
    if buffers:  # (foreach ops refuse empty lists)
        torch._foreach_copy_(buffers, list(G.buffers()))  # one op for all ~50 buffers
