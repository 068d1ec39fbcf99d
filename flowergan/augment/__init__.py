"""Adaptive discriminator augmentation (ADA): the augmentation pipeline and its p controller."""

from flowergan.augment.ada import AdaController
from flowergan.augment.pipe import PRESETS, AugmentPipe

__all__ = ["AdaController", "AugmentPipe", "PRESETS"]
