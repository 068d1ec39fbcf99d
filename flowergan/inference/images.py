"""Image helpers for the use area: PNG bytes/files, target photos, PSNR.

Float -> uint8 and grids live in `flowergan.infra`.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import PIL.Image

from flowergan.infra import atomic_write, make_grid, to_uint8  # re-exported: the one implementation

__all__ = ["to_uint8", "make_grid", "png_bytes", "save_png", "atomic_write", "load_target", "psnr"]


def _pil(image: np.ndarray) -> PIL.Image.Image:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return PIL.Image.fromarray(image, "L")
    if image.ndim == 3 and image.shape[2] == 3:
        return PIL.Image.fromarray(image, "RGB")
    raise ValueError(f"expected an image [H, W, 3] or [H, W, 1], got shape {image.shape}")


def png_bytes(image: np.ndarray) -> bytes:
    """PNG-encode one uint8 image [H, W, 3] or [H, W, 1]."""
    buf = io.BytesIO()
    _pil(image).save(buf, format="PNG")
    return buf.getvalue()


def save_png(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write one uint8 image [H, W, C] as PNG atomically."""
    data = png_bytes(image)
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def load_target(target: str | os.PathLike | np.ndarray | PIL.Image.Image, resolution: int,
                channels: int = 3) -> np.ndarray:
    """A target photo for projection: center-cropped to a square and resized (Lanczos) to `resolution`.

    `target` is a path, a PIL image or a uint8 array [H, W], [H, W, 1] or [H, W, 3].
    Returns uint8 [resolution, resolution, channels] (channels 3: RGB, 1: grayscale).
    """
    if isinstance(target, (str, os.PathLike)):
        from flowergan.readers import load_image

        pil = load_image(target, "target photo")  # a bounded regular file, pixels checked from the header
    elif isinstance(target, PIL.Image.Image):
        pil = target
    else:
        arr = np.asarray(target)
        if arr.dtype != np.uint8:
            raise ValueError(f"target array: expected dtype uint8 in [0, 255], got {arr.dtype}")
        pil = _pil(arr)
    pil = pil.convert("RGB" if channels == 3 else "L")
    w, h = pil.size
    s = min(w, h)
    pil = pil.crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2))
    if pil.size != (resolution, resolution):
        pil = pil.resize((resolution, resolution), PIL.Image.LANCZOS)
    arr = np.asarray(pil, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 images (peak 255); inf when identical."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"psnr: shapes differ: {a.shape} vs {b.shape}")
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))
