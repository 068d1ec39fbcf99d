"""StyleGAN2 networks: mapping, synthesis, generator and discriminator (official architecture)."""

from flowergan.networks.discriminator import Discriminator
from flowergan.networks.generator import Generator
from flowergan.networks.layers import MappingNetwork

__all__ = ["Generator", "Discriminator", "MappingNetwork", "build_networks", "count_params",
           "set_channels_last"]


def build_networks(cfg, seed: int | None = None):
    """Build (G, D) for a ModelConfig with the official initialisation (seeded if `seed` is given)."""
    import torch

    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return Generator.from_config(cfg), Discriminator.from_config(cfg)
    return Generator.from_config(cfg), Discriminator.from_config(cfg)


def count_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def set_channels_last(module, enabled: bool = True):
    """Run every block's activations in channels-last (NHWC) memory format: faster convolutions on
    CPUs (oneDNN) and tensor cores. Numerically the same computation; returns `module`."""
    for m in module.modules():
        if hasattr(m, "activations_channels_last"):
            m.activations_channels_last = enabled
    return module
