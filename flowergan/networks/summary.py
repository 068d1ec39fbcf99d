"""Per-module parameter counts and output shapes of G and D (what `flowergan info` shows)."""

from __future__ import annotations

from typing import Any

import torch

from flowergan.config import ModelConfig
from flowergan.networks import count_params
from flowergan.networks.discriminator import Discriminator
from flowergan.networks.generator import Generator


def _rows(net: torch.nn.Module, names: list[str], run) -> list[dict[str, Any]]:
    shapes: dict[str, list] = {}
    hooks = []
    for name in names:
        mod = net.get_submodule(name)

        def hook(m, inp, out, name=name):
            outs = out if isinstance(out, tuple) else (out,)
            shapes[name] = [list(o.shape) for o in outs if isinstance(o, torch.Tensor)]

        hooks.append(mod.register_forward_hook(hook))
    try:
        with torch.no_grad():
            run()
    finally:
        for h in hooks:
            h.remove()
    return [{"module": n, "params": count_params(net.get_submodule(n)), "output_shapes": shapes.get(n, [])}
            for n in names]


def summarize(cfg: ModelConfig, G: Generator | None = None, D: Discriminator | None = None) -> dict[str, Any]:
    """Counts and shapes for batch 1 (a real forward pass on the CPU)."""
    G = G or Generator.from_config(cfg).eval()
    D = D or Discriminator.from_config(cfg).eval()
    z = torch.zeros([1, cfg.z_dim])
    c = torch.zeros([1, cfg.c_dim])
    g_names = ["mapping"] + [f"synthesis.b{r}" for r in G.synthesis.block_resolutions]
    g_rows = _rows(G, g_names, lambda: G(z, c, noise_mode="const"))
    img = torch.zeros([1, cfg.img_channels, cfg.resolution, cfg.resolution])
    d_names = [f"b{r}" for r in D.block_resolutions] + (["mapping"] if cfg.c_dim else []) + ["b4"]
    d_rows = _rows(D, d_names, lambda: D(img, c))
    return {
        "G_params": count_params(G), "D_params": count_params(D),
        "mapping_params": count_params(G.mapping), "synthesis_params": count_params(G.synthesis),
        "num_ws": G.num_ws, "z_dim": cfg.z_dim, "w_dim": cfg.w_dim, "c_dim": cfg.c_dim,
        "resolution": cfg.resolution, "config": cfg.to_dict(), "G_modules": g_rows, "D_modules": d_rows,
    }
