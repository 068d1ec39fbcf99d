"""Write a generator as a rosinality stylegan2-pytorch checkpoint ({'g_ema': state dict, 'latent_avg': w_avg},
plain tensors, loadable with torch.load(weights_only=True)) plus FILE.json naming the Generator arguments;
check it by loading it back the safe way and comparing images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from flowergan.compat.rosinality import read_rosinality, rosinality_notes, to_rosinality
from flowergan.infra import atomic_write, atomic_write_text


def describe_rosinality(G: nn.Module) -> dict[str, Any]:
    """The checkpoint's interface: constructor arguments, keys, how to load it (raises ConfigError if the
    architecture is one rosinality's Generator cannot express)."""
    _, latent_avg, args = to_rosinality(G)
    return {
        "format": "rosinality",
        "generator_args": args.to_dict(),
        "python": f"g = {args.call()}; ckpt = torch.load(path, weights_only=True); "
                  f"g.load_state_dict(ckpt['g_ema'])",
        "keys": {"g_ema": "Generator state_dict", "latent_avg": [int(latent_avg.shape[0])]},
        "truncation": "g([z], truncation=psi, truncation_latent=ckpt['latent_avg'])",
        "noise": "noises.noise_i buffers hold our const noise (randomize_noise=False uses them)",
        "notes": rosinality_notes(G.config),
    }


def write_rosinality(G: nn.Module, out: str | Path) -> dict[str, Any]:
    """Write `out` (torch.save of plain tensors) and `out`.json; return the interface dict."""
    sd, latent_avg, _ = to_rosinality(G)
    info = describe_rosinality(G)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda tmp: torch.save({"g_ema": sd, "latent_avg": latent_avg}, tmp))
    atomic_write_text(out.with_name(out.name + ".json"), json.dumps(info, indent=2) + "\n")
    return info


def verify_rosinality(G: nn.Module, path: str | Path, n: int = 2, seed: int = 1) -> float:
    """Max |image| difference between G and the file read back (torch.load(weights_only=True) must accept it,
    then our safe reader converts it back) on seeded z, truncation 0.7 and the stored noise."""
    torch.load(path, weights_only=True, map_location="cpu")  # the contract with pSp, e4e, GANSpace loaders
    back = read_rosinality(path)["G_ema"]
    G = G.to("cpu").float().eval()
    z = torch.from_numpy(np.random.RandomState(seed).randn(n, G.z_dim).astype(np.float32))
    with torch.no_grad():
        a = G(z, None, truncation_psi=0.7, noise_mode="const")
        b = back(z, None, truncation_psi=0.7, noise_mode="const")
    return float((a - b).abs().max())
