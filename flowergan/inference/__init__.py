"""Use a trained generator: load, generate, mix, interpolate, project (the API of the CLI and web page)."""

from flowergan.inference.api import DEFAULT_NOISE_MODE, NOISE_MODES, MixResult, Pipeline, load
from flowergan.inference.images import load_target, make_grid, png_bytes, psnr, save_png, to_uint8
from flowergan.inference.latents import parse_seeds, parse_styles, seeds_to_z, slerp, style_ranges
from flowergan.inference.projector import ProjectionResult
from flowergan.inference.video import write_video

__all__ = [
    "DEFAULT_NOISE_MODE", "NOISE_MODES", "MixResult", "Pipeline", "ProjectionResult", "load", "load_target",
    "make_grid", "png_bytes", "parse_seeds", "parse_styles", "psnr", "save_png", "seeds_to_z", "slerp",
    "style_ranges", "to_uint8", "write_video",
]
