"""Check our networks against golden vectors produced by the official implementation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from flowergan.compat.kwargs import config_from_official
from flowergan.networks import Discriminator, Generator


def load_state(module: torch.nn.Module, arrays: dict[str, np.ndarray], prefix: str) -> None:
    """Copy `prefix`-named arrays into `module`'s parameters and buffers; every key must match."""
    sd = {k[len(prefix):]: torch.from_numpy(np.asarray(v)) for k, v in arrays.items() if k.startswith(prefix)}
    ours = module.state_dict()
    missing = sorted(set(ours) - set(sd))
    extra = sorted(set(sd) - set(ours))
    if missing or extra:
        raise KeyError(f"state dict mismatch under {prefix!r}: missing {missing[:8]}, unexpected {extra[:8]}")
    for k, v in sd.items():
        if tuple(v.shape) != tuple(ours[k].shape):
            raise ValueError(f"{prefix}{k}: shape {tuple(v.shape)} != ours {tuple(ours[k].shape)}")
    module.load_state_dict({k: v.to(ours[k].dtype) for k, v in sd.items()})


def golden_networks(npz_path: str | Path, json_path: str | Path):
    """Build (G, D, arrays, meta) from a golden npz/json pair, with the official weights loaded."""
    meta = json.loads(Path(json_path).read_text())
    arrays = dict(np.load(npz_path))
    cfg = config_from_official(meta["generator_kwargs"], meta["discriminator_kwargs"])
    G, D = Generator.from_config(cfg), Discriminator.from_config(cfg)
    load_state(G, arrays, "G/")
    load_state(D, arrays, "D/")
    return G.eval(), D.eval(), arrays, meta


@torch.no_grad()
def run_golden_outputs(G: Generator, D: Discriminator, arrays: dict[str, np.ndarray],
                       fused_modconv: bool | None = None) -> dict[str, torch.Tensor]:
    """Recompute every `out/*` entry that the golden format defines, with G and D in eval mode."""
    t = lambda k: torch.from_numpy(arrays[k])
    z, z2, c = t("in/z"), t("in/z2"), t("in/c")
    out: dict[str, torch.Tensor] = {}
    ws = G.mapping(z, c)
    out["out/ws"] = ws
    out["out/ws_psi07"] = G.mapping(z, c, truncation_psi=0.7)
    out["out/ws_psi05_cutoff4"] = G.mapping(z, c, truncation_psi=0.5, truncation_cutoff=4)
    out["out/img_const"] = G.synthesis(ws, noise_mode="const", fused_modconv=fused_modconv)
    out["out/img_const_unfused"] = G.synthesis(ws, noise_mode="const", fused_modconv=False)
    out["out/img_none"] = G.synthesis(ws, noise_mode="none", fused_modconv=fused_modconv)
    out["out/img_psi07"] = G(z, c, truncation_psi=0.7, noise_mode="const", fused_modconv=fused_modconv)
    ws_mix = ws.clone()
    ws_mix[:, 3:] = G.mapping(z2, c)[:, 3:]
    out["out/ws_mix3"] = ws_mix
    out["out/img_mix3"] = G.synthesis(ws_mix, noise_mode="const", fused_modconv=fused_modconv)
    out["out/d_logits"] = D(out["out/img_const"], c)
    out["out/d_logits_real"] = D(t("in/real"), c)
    w_avg = G.mapping.w_avg.clone()
    G.mapping(z, c, update_w_avg=True)
    out["out/w_avg_after_train_call"] = G.mapping.w_avg.clone()
    G.mapping.w_avg.copy_(w_avg)
    return out


def check_golden(npz_path: str | Path, json_path: str | Path, fused_modconv: bool | None = None,
                 channels_last: bool = False) -> dict[str, float]:
    """Max absolute error of each golden output key (build from the JSON's official kwargs, load, run).

    Compare each error with `1e-4 * max_abs` of that output (the JSON lists max_abs per output).
    """
    from flowergan.networks import set_channels_last

    G, D, arrays, _ = golden_networks(npz_path, json_path)
    for net in (G, D):
        set_channels_last(net.to(memory_format=torch.channels_last) if channels_last else net, channels_last)
    ours = run_golden_outputs(G, D, arrays, fused_modconv=fused_modconv)
    errors = {}
    for key, val in ours.items():
        if key in arrays:
            errors[key] = float((val.float() - torch.from_numpy(arrays[key]).float()).abs().max())
    return errors
