"""Image helpers for the use area: float -> uint8 (official rounding), grids, PNG bytes/files, target photos."""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Callable
from pathlib import Path

import numpy as np
import PIL.Image
import torch

__all__ = ["to_uint8", "make_grid", "png_bytes", "save_png", "atomic_write", "load_target", "psnr"]


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Generator output float [N, C, H, W] (nominally [-1, 1]) -> uint8 [N, H, W, C].

    The official conversion: `(x * 127.5 + 128).clamp(0, 255).to(uint8)` (truncation, not rounding).
    """
    if images.ndim != 4:
        raise ValueError(f"to_uint8: expected images [N, C, H, W], got shape {tuple(images.shape)}")
    x = (images.detach().to(torch.float32).permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return x.cpu().numpy()


def make_grid(images: np.ndarray, cols: int | None = None, pad: int = 0, bg: int = 0) -> np.ndarray:
    """Tile uint8 images [N, H, W, C] row by row into one image [rows*H + pad*(rows-1), cols*W + ..., C].

    `cols` defaults to ceil(sqrt(N)); empty cells (when N is not a multiple of cols) are filled with `bg`.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"make_grid: expected a non-empty uint8 array [N, H, W, C], got {images.shape}")
    n, h, w, c = images.shape
    cols = int(cols) if cols else int(np.ceil(np.sqrt(n)))
    if cols < 1:
        raise ValueError(f"make_grid: cols must be >= 1, got {cols}")
    rows = (n + cols - 1) // cols
    grid = np.full([rows * h + pad * (rows - 1), cols * w + pad * (cols - 1), c], bg, dtype=images.dtype)
    for i in range(n):
        r, k = divmod(i, cols)
        grid[r * (h + pad): r * (h + pad) + h, k * (w + pad): k * (w + pad) + w] = images[i]
    return grid


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


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call `write(tmp_path)` for a fresh temp name next to `path` (same suffix), then rename it into place.

    The temp file is created by `write` itself, so it gets the usual permissions (umask), not 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}"
    try:
        write(str(tmp))
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None:
            e.filename = str(path)  # e.g. a full disk: say which output failed
        raise
    return path


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
        p = Path(target)
        if not p.is_file():
            raise FileNotFoundError(f"target photo {p} does not exist")
        try:
            with PIL.Image.open(p) as im:
                pil = im.copy()
        except PIL.UnidentifiedImageError:
            raise ValueError(f"target photo {p}: not an image file Pillow can read") from None
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
