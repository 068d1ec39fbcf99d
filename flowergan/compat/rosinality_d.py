"""rosinality's stylegan2-pytorch `Discriminator` state dict -> our (official-layout) residual discriminator,
so a model imported from a rosinality training checkpoint fine-tunes with its own D.

Both are the StyleGAN2 residual D with the same arithmetic (checked in tests/ecosystem/test_eco_rosinality.py):
  convs.0 (1x1 ConvLayer: 0.weight, 1.bias)                  <-> b{R}.fromrgb
  convs.{j} ResBlock: conv1 (0.weight, 1.bias)               <-> b{r}.conv0, r = R / 2^(j-1)
                      conv2 (0.kernel blur, 1.weight, 2.bias) <-> b{r}.conv1 (the 2x down conv: blur, stride 2)
                      skip  (0.kernel blur, 1.weight)         <-> b{r}.skip
  final_conv (0.weight, 1.bias)                              <-> b4.conv (after the minibatch stddev, group 4)
  final_linear.0, final_linear.1                             <-> b4.fc, b4.out
Their (out + skip) / sqrt(2) is our sqrt(0.5) gain on both paths; the blur buffers hold the normalised
[1, 3, 3, 1] filter and are checked, not copied.
"""

from __future__ import annotations

from typing import Any

import torch

from flowergan.config import ConfigError, ModelConfig
from flowergan.networks.discriminator import Discriminator
from flowergan.ops import setup_filter


def d_key_pairs(cfg: ModelConfig) -> list[tuple[str, str]]:
    """(our D key, rosinality D key) for every tensor the two share (same shapes on both sides)."""
    R = cfg.resolution
    pairs = [(f"b{R}.fromrgb.weight", "convs.0.0.weight"), (f"b{R}.fromrgb.bias", "convs.0.1.bias")]
    for j, k in enumerate(range(cfg.log2_res, 2, -1), start=1):
        b, c = f"b{2 ** k}", f"convs.{j}"
        pairs += [(f"{b}.conv0.weight", f"{c}.conv1.0.weight"), (f"{b}.conv0.bias", f"{c}.conv1.1.bias"),
                  (f"{b}.conv1.weight", f"{c}.conv2.1.weight"), (f"{b}.conv1.bias", f"{c}.conv2.2.bias"),
                  (f"{b}.skip.weight", f"{c}.skip.1.weight")]
    pairs += [("b4.conv.weight", "final_conv.0.weight"), ("b4.conv.bias", "final_conv.1.bias"),
              ("b4.fc.weight", "final_linear.0.weight"), ("b4.fc.bias", "final_linear.0.bias"),
              ("b4.out.weight", "final_linear.1.weight"), ("b4.out.bias", "final_linear.1.bias")]
    return pairs


def d_blur_keys(cfg: ModelConfig) -> list[str]:
    return [f"convs.{j}.{name}.0.kernel" for j in range(1, cfg.log2_res - 1) for name in ("conv2", "skip")]


def discriminator_from_rosinality(sd: dict[str, Any], cfg: ModelConfig, where: str) -> Discriminator:
    """Our Discriminator (config `cfg`: resnet, minibatch stddev group 4, 1 channel) from rosinality's `d`
    state dict; ConfigError naming the first tensor that is missing, extra or of another shape."""
    if cfg.d_architecture != "resnet" or cfg.mbstd_channels != 1 or cfg.c_dim:
        raise ConfigError(f"{where}: rosinality's Discriminator maps only to an unconditional resnet D with one "
                          f"minibatch-stddev channel")
    D = Discriminator.from_config(cfg).eval().requires_grad_(False)
    ours = D.state_dict()
    new = {}
    for o, r in d_key_pairs(cfg):
        t = sd.get(r)
        if not isinstance(t, torch.Tensor) or t.shape != ours[o].shape:
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else "missing"
            raise ConfigError(f"{where}: {r} is {got}, expected {tuple(ours[o].shape)}")
        new[o] = t.detach().to(torch.float32)
    blur = setup_filter([1, 3, 3, 1])  # [4, 4], sums to 1
    for r in d_blur_keys(cfg):
        t = sd.get(r)
        if not isinstance(t, torch.Tensor) or t.shape != blur.shape or not torch.allclose(t.float(), blur, atol=1e-6):
            raise ConfigError(f"{where}: {r} is not the [1, 3, 3, 1] blur filter")
    unknown = sorted(set(sd) - {r for _, r in d_key_pairs(cfg)} - set(d_blur_keys(cfg)))
    if unknown:
        raise ConfigError(f"{where}: unexpected tensor(s) {unknown[:4]}; not a stock rosinality Discriminator")
    bad = [k for k, t in new.items() if not bool(torch.isfinite(t).all())]
    if bad:
        raise ConfigError(f"{where}: tensor(s) {bad[:3]} hold NaN or infinity")
    D.load_state_dict({**ours, **new}, strict=True)
    return D
