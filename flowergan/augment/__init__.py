"""Adaptive discriminator augmentation (ADA): the augmentation pipeline and its p controller."""

from flowergan.augment.ada import AdaController, real_sign_stats
from flowergan.augment.pipe import PRESETS, AugmentPipe

__all__ = ["AdaController", "AugmentPipe", "PRESETS", "real_sign_stats"]
