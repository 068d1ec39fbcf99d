"""Load any supported network file into eval-mode modules on a device."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from flowergan.config import ModelConfig
from flowergan.networks import Discriminator, Generator
from flowergan.networks.resolve import resolve_network
from flowergan.networks.store import load_model_dir


@dataclass
class LoadedModel:
    G: Generator                  # the generator to use (G_ema when present), eval mode
    D: Discriminator | None
    config: ModelConfig
    source: Path                  # the resolved file or folder
    device: torch.device
    augment_p: float = 0.0
    meta: dict = field(default_factory=dict)  # the model folder's config.json (kimg, train, metrics, ...)


def load_networks(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a model dir, a run dir (latest checkpoint) or an official pickle (safely)."""
    kind, src = resolve_network(path)
    device = torch.device(device)
    if kind == "official":
        from flowergan.compat.official import load_official_pickle

        d = load_official_pickle(src)
        cfg, aug_p, meta = d["config"], d["augment_p"], {"augment_p": d["augment_p"], "source_pickle": src.name}
    else:
        d = load_model_dir(src)
        cfg, aug_p, meta = d["config"], float(d["meta"].get("augment_p", 0.0)), d["meta"]
    G = d["G_ema"] if d.get("G_ema") is not None else d["G"]
    if G is None:
        raise ValueError(f"{src}: holds no generator weights")
    G = G.to(device).eval().requires_grad_(False)
    D = d.get("D")
    if D is not None:
        D = D.to(device).eval().requires_grad_(False)
    return LoadedModel(G=G, D=D, config=cfg, source=src, device=device, augment_p=aug_p,
                       meta=meta)
