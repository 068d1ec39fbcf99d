"""Compatibility with the official StyleGAN2-ADA implementation (safe pickle import, golden checks) and with
rosinality's stylegan2-pytorch state dicts (both directions; checkpoints read safely)."""

from flowergan.compat.golden import check_golden
from flowergan.compat.kwargs import config_from_official
from flowergan.compat.official import RefusedPickleError, load_official_pickle, read_official_pickle
from flowergan.compat.rosinality import (
    RosinalityArgs,
    from_rosinality,
    read_rosinality,
    rosinality_args,
    to_rosinality,
)
from flowergan.compat.torchsave import read_torch_save

__all__ = ["check_golden", "config_from_official", "load_official_pickle", "read_official_pickle",
           "RefusedPickleError", "RosinalityArgs", "from_rosinality", "read_rosinality", "read_torch_save",
           "rosinality_args", "to_rosinality"]
