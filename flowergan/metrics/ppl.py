"""Perceptual path length (Karras et al. 2019, StyleGAN; official StyleGAN2-ADA variant): the LPIPS distance
between images at latent interpolation positions t and t + epsilon, divided by epsilon^2, trimmed mean.

The z-space variant needs only `G(z, c)`; the w-space variant uses `G.mapping(z, c)` and `G.synthesis(ws)`.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .distances import ppl_from_lengths

log = logging.getLogger(__name__)

__all__ = ["path_lengths", "perceptual_path_length", "slerp"]


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between the directions of `a` and `b` `[N, D]` at `t` `[N, 1]` (unit-norm result)."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    d = (a * b).sum(dim=-1, keepdim=True)
    p = t * torch.acos(d)
    c = b - d * a
    c = c / c.norm(dim=-1, keepdim=True)
    d = a * torch.cos(p) + c * torch.sin(p)
    return d / d.norm(dim=-1, keepdim=True)


def _accepts(fn: Callable, name: str) -> bool:
    """Whether `fn` (for a torch module: its `forward`) takes a keyword argument `name`."""
    if isinstance(fn, torch.nn.Module):
        fn = fn.forward
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


class _ConstNoise:
    """Randomise a module's `*.noise_const` buffers for one batch (as the official sampler), then restore them."""

    def __init__(self, G: Any, gen: torch.Generator):
        self.bufs = []
        if isinstance(G, torch.nn.Module):
            self.bufs = [b for n, b in G.named_buffers() if n.endswith("noise_const")]
        self.gen = gen

    def __enter__(self):
        self.saved = [b.detach().clone() for b in self.bufs]
        for b in self.bufs:
            b.copy_(torch.randn(b.shape, generator=self.gen).to(b.device, b.dtype))

    def __exit__(self, *exc):
        for b, s in zip(self.bufs, self.saved):
            b.copy_(s)


def _postprocess(img: torch.Tensor, crop: bool) -> torch.Tensor:
    if crop:
        if img.shape[2] != img.shape[3]:
            raise ValueError(f"PPL crop needs square images, got {tuple(img.shape[2:])}")
        c = img.shape[2] // 8
        img = img[:, :, c * 3: c * 7, c * 2: c * 6]
    factor = img.shape[2] // 256
    if factor > 1:  # box-downsample to 256 like the official code
        img = img.reshape([-1, img.shape[1], img.shape[2] // factor, factor, img.shape[3] // factor, factor])
        img = img.mean([3, 5])
    img = (img + 1) * (255 / 2)
    if img.shape[1] == 1:
        img = img.repeat([1, 3, 1, 1])
    return img


def path_lengths(G: Any, lpips: Callable, num_samples: int, *, epsilon: float = 1e-4, space: str = "z",
                 sampling: str = "full", crop: bool = False, batch_size: int = 8, device: torch.device | str = "cpu",
                 labels: np.ndarray | None = None, seed: int = 0, progress: bool = True) -> np.ndarray:
    """Per-sample path lengths `[num_samples]`: |lpips(img(t)) - lpips(img(t + eps))|^2 / eps^2.

    `space="z"`: slerp between z0, z1 and call `G(z, c)` (with `noise_mode="const"` when G accepts it);
    `space="w"`: lerp between `G.mapping(z, c)` outputs and call `G.synthesis(ws, noise_mode="const")`.
    `sampling="full"`: t ~ U(0, 1); `"end"`: t = 0. `lpips`: callable float `[N, 3, H, W]` in [0, 255] ->
    `[N, D]`. `labels`: `[L, c_dim]` for a conditional G. G must already live on `device`.
    """
    if space not in ("z", "w") or sampling not in ("full", "end"):
        raise ValueError(f"PPL space must be 'z' or 'w' and sampling 'full' or 'end', got {space!r}, {sampling!r}")
    if space == "w" and not (hasattr(G, "mapping") and hasattr(G, "synthesis")):
        raise ValueError("PPL in w space needs G.mapping and G.synthesis; use the z-space variant (ppl_zfull)")
    z_dim, c_dim = int(G.z_dim), int(getattr(G, "c_dim", 0))
    if c_dim > 0 and labels is None:
        raise ValueError(f"the generator is conditional (c_dim={c_dim}) but no labels were given")
    gen = torch.Generator().manual_seed(seed)
    target = G.synthesis if space == "w" else G
    kw: dict[str, Any] = {"noise_mode": "const"} if _accepts(target, "noise_mode") else {}
    if not kw:
        log.warning("G does not take noise_mode: PPL assumes G is deterministic for a given input")
    if _accepts(target, "force_fp32"):
        kw["force_fp32"] = True  # as the official sampler: epsilon = 1e-4 differences need fp32
    from tqdm.auto import tqdm

    dist = []
    with tqdm(total=num_samples, desc="ppl", unit="img", disable=not progress, leave=False) as bar, torch.no_grad():
        for start in range(0, num_samples, batch_size):
            b = min(batch_size, num_samples - start)
            t = torch.rand([b], generator=gen) * (1 if sampling == "full" else 0)
            z0, z1 = torch.randn([b * 2, z_dim], generator=gen).chunk(2)
            t, z0, z1 = t.to(device), z0.to(device), z1.to(device)
            if c_dim > 0:
                c = torch.from_numpy(labels[np.arange(start, start + b) % len(labels)]).to(device)
            else:
                c = torch.zeros([b, 0], device=device)
            with _ConstNoise(G, gen):
                if space == "w":
                    w0, w1 = G.mapping(torch.cat([z0, z1]), torch.cat([c, c])).chunk(2)
                    tt = t.reshape([-1] + [1] * (w0.ndim - 1))
                    wt0, wt1 = w0.lerp(w1, tt), w0.lerp(w1, tt + epsilon)
                    img = G.synthesis(torch.cat([wt0, wt1]), **kw)
                else:
                    zt0 = slerp(z0, z1, t.unsqueeze(1))
                    zt1 = slerp(z0, z1, t.unsqueeze(1) + epsilon)
                    img = G(torch.cat([zt0, zt1]), torch.cat([c, c]), **kw)
            img = _postprocess(img.to(torch.float32), crop)
            e0, e1 = lpips(img).to(torch.float32).chunk(2)
            dist.append(((e0 - e1).square().sum(1) / epsilon ** 2).cpu())
            bar.update(b)
    return torch.cat(dist).numpy().astype(np.float64)


def perceptual_path_length(G: Any, lpips: Callable, num_samples: int, **kwargs: Any) -> float:
    """PPL: `path_lengths(...)` reduced by the official trimmed mean (1st-99th percentile)."""
    return ppl_from_lengths(path_lengths(G, lpips, num_samples, **kwargs))
