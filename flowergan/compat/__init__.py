"""Compatibility with the official StyleGAN2-ADA implementation: safe pickle import, golden checks."""

from flowergan.compat.golden import check_golden
from flowergan.compat.kwargs import config_from_official
from flowergan.compat.official import RefusedPickleError, load_official_pickle, read_official_pickle

__all__ = ["check_golden", "config_from_official", "load_official_pickle", "read_official_pickle",
           "RefusedPickleError"]
