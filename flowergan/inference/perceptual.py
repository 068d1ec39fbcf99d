"""Projection losses: the LPIPS distance of NVlabs' VGG16 TorchScript (sha256-gated, optional download)
and the offline fallback (pixel MSE + a multi-scale pyramid of pixel and gradient MSE).

LPIPS: Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric",
as used by the StyleGAN2-ADA projector (`vgg16(img_0_255, resize_images=False, return_lpips=True)`).
A TorchScript file is loaded only after its sha256 is found in `KNOWN_VGG16_SHA256`, in
`$FLOWERGAN_TRUSTED_SHA256` (comma-separated `sha256[:kind]`, shared with the metrics area) or
given explicitly by the caller. NVlabs' `vgg16.pkl` pickle is never read.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from flowergan.metrics import download as _dl

log = logging.getLogger(__name__)

__all__ = [
    "VGG16_URL", "VGG16_FILENAME", "KNOWN_VGG16_SHA256", "PerceptualError", "ChecksumError", "cache_dir",
    "check_sha256",
    "sha256_file", "download_vgg16", "load_vgg16", "resolve_vgg16", "lpips_features", "pyramid_loss",
]

# NVlabs' plain TorchScript VGG16 + LPIPS weights (the .pt file, no pickle involved).
VGG16_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt"
VGG16_FILENAME = "vgg16.pt"

# sha256 of TorchScript files known to be the VGG16 LPIPS network -> description. flowergan does
# not record NVlabs' checksum (it could not be verified when this was written): vouch for your copy
# with --vgg16-sha256 / $FLOWERGAN_TRUSTED_SHA256 after checking it against a source you trust.
KNOWN_VGG16_SHA256: dict[str, str] = {}



class PerceptualError(RuntimeError):
    """The VGG16 network cannot be found, verified or loaded; the message says how to fix it."""


class ChecksumError(PerceptualError):
    """A file's sha256 is not the expected or a trusted one."""


def cache_dir() -> Path:
    """`$FLOWERGAN_CACHE/detectors` (default `~/.cache/flowergan/detectors`), shared with the metrics area."""
    return _dl.cache_dir("detectors")


sha256_file = _dl.sha256_file


def check_sha256(value: str, where: str = "--vgg16-sha256") -> str:
    """`value` as a lowercase sha256 (64 hex digits); anything else raises PerceptualError."""
    v = value.strip().lower()
    if len(v) != 64 or any(ch not in "0123456789abcdef" for ch in v):
        raise PerceptualError(f"{where} {value[:80]!r}: not a sha256 (64 hexadecimal digits); the command prints the "
                              f"file's sha256 when it refuses an unknown file")
    return v


def _trusted(extra: str | None = None) -> set[str]:
    out = {s.lower() for s in KNOWN_VGG16_SHA256}
    for entry in os.environ.get("FLOWERGAN_TRUSTED_SHA256", "").split(","):
        sha = entry.strip().partition(":")[0].strip().lower()
        if sha:
            out.add(sha)
    if extra:
        out.add(extra.strip().lower())
    return out


def download_vgg16(url: str = VGG16_URL, dest: str | os.PathLike | None = None, sha256: str | None = None,
                   progress: bool = True, timeout: float = 60.0) -> Path:
    """Download the VGG16 TorchScript to the cache (atomically), checking `sha256` when given.

    On a checksum mismatch nothing is kept and `ChecksumError` is raised. Returns the file path.
    """
    dest = Path(dest) if dest is not None else cache_dir() / VGG16_FILENAME
    try:
        return _dl.download(url, dest, sha256=sha256.strip() if sha256 else None, progress=progress, timeout=timeout)
    except _dl.ChecksumError as e:
        raise ChecksumError(f"{e} (or download it by hand and pass its path with --vgg16 PATH)") from None


def load_vgg16(path: str | os.PathLike, sha256: str | None = None, device: str | torch.device = "cpu") -> Any:
    """`torch.jit.load` a VGG16 TorchScript file, but only after its sha256 is known or trusted.

    `sha256`: a checksum the caller vouches for (it must match the file). Raises ChecksumError.
    """
    path = Path(path)
    if sha256 is not None:
        sha256 = check_sha256(sha256)
    if not path.is_file():
        raise PerceptualError(f"VGG16 file {path} does not exist")
    got = sha256_file(path)
    if sha256 is not None and got != sha256.strip().lower():
        raise ChecksumError(f"{path} has sha256 {got}, but {sha256} was given; not loading it")
    if got not in _trusted(sha256):
        raise ChecksumError(
            f"refusing to load {path}: its sha256 {got} is not a known VGG16 checksum, and TorchScript files are "
            f"only loaded when their checksum is trusted. If it is NVlabs' vgg16.pt and you have checked that "
            f"checksum against a source you trust, pass --vgg16-sha256 {got} to `flowergan project` (Python: "
            f"vgg16_sha256=...), or set FLOWERGAN_TRUSTED_SHA256={got} (any command, `serve` too). See docs/use.md.")
    with warnings.catch_warnings():  # recent torch marks TorchScript deprecated; the format still loads
        warnings.simplefilter("ignore", DeprecationWarning)
        net = torch.jit.load(str(path), map_location="cpu").eval().to(device)
    log.info("loaded VGG16 (LPIPS) from %s (sha256 %s)", path, got[:16])
    return net


def resolve_vgg16(source: Any = None, device: str | torch.device = "cpu", sha256: str | None = None,
                  progress: bool = True) -> Callable | None:
    """The LPIPS network for projection, or None for the fallback loss.

    `source`: a callable `net(img [N,3,H,W] in [0,255], resize_images=False, return_lpips=True) -> [N, D]`
    (used as is); a TorchScript path; "download" (fetch `VGG16_URL` into the cache unless already there);
    "none" (fallback loss, no warning); or None = automatic: `$FLOWERGAN_VGG16`, else the cached
    `vgg16.pt` if it is trusted, else the fallback loss with a warning. An explicitly requested
    network that cannot be used raises PerceptualError instead of falling back.
    """
    if sha256 is not None:
        sha256 = check_sha256(sha256)
    if source is not None and callable(source):
        return source
    if isinstance(source, str) and source.lower() == "none":
        return None
    if isinstance(source, str) and source.lower() == "download":
        cached = cache_dir() / VGG16_FILENAME
        path = cached if cached.is_file() else download_vgg16(sha256=sha256, progress=progress)
        return load_vgg16(path, sha256, device)
    if source is not None:
        return load_vgg16(source, sha256, device)
    env = os.environ.get("FLOWERGAN_VGG16")
    if env:
        return load_vgg16(env, sha256, device)
    cached = cache_dir() / VGG16_FILENAME
    if cached.is_file():
        try:
            return load_vgg16(cached, sha256, device)
        except PerceptualError as e:
            log.warning("not using the cached VGG16: %s", e)
    log.warning("VGG16 (LPIPS) is not available, so projection uses the fallback loss (pixel and gradient MSE over "
                "an image pyramid; blurrier than LPIPS). For LPIPS, give NVIDIA's vgg16.pt: `flowergan project "
                "--vgg16 download` or `--vgg16 PATH`, or FLOWERGAN_VGG16=PATH (also for `serve` and Python); "
                "see docs/use.md.")
    return None


def lpips_features(vgg16: Callable, images: torch.Tensor) -> torch.Tensor:
    """LPIPS embedding of images float [N, C, H, W] in [0, 255] (as the official projector: area-resized
    to 256 when larger; grayscale repeated to RGB)."""
    if images.shape[1] == 1:
        images = images.repeat(1, 3, 1, 1)
    if images.shape[2] > 256:
        images = F.interpolate(images, size=(256, 256), mode="area")
    return vgg16(images, resize_images=False, return_lpips=True)


def pyramid_loss(x: torch.Tensor, y: torch.Tensor, min_size: int = 8) -> torch.Tensor:
    """Fallback projection loss: sum over a 2x area-downsampled pyramid (down to `min_size` px) of
    MSE(x, y) + MSE of horizontal and vertical finite differences. x, y float [N, C, H, W]."""
    total = x.new_zeros([])
    while True:
        total = total + F.mse_loss(x, y)
        total = total + F.mse_loss(x[..., :, 1:] - x[..., :, :-1], y[..., :, 1:] - y[..., :, :-1])
        total = total + F.mse_loss(x[..., 1:, :] - x[..., :-1, :], y[..., 1:, :] - y[..., :-1, :])
        if min(x.shape[-2:]) <= min_size:
            return total
        x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
