"""Other implementations' models: official StyleGAN2-ADA pickles and rosinality state dicts, read safely.

The official pickles are imported through a restricted unpickler (and checked against golden outputs);
rosinality's stylegan2-pytorch state dicts convert both ways."""

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
