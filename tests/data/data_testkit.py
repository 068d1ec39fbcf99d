"""Helpers for the data tests: a folder of every nasty photo case, an Oxford-style archive, tiny datasets."""

from __future__ import annotations

import io
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

# Pixel colours the fixture images use (checked against the outputs).
RED, BLUE, GREEN = (220, 30, 30), (30, 40, 210), (40, 190, 60)


def jpeg_bytes(arr: np.ndarray, quality: int = 95, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=quality, **kw)
    return buf.getvalue()


def png16_bytes(arr: np.ndarray) -> bytes:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit RGB): arr uint16 [H, W] or [H, W, 3]."""
    h, w = arr.shape[:2]
    ctype = 0 if arr.ndim == 2 else 2
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, ctype, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def halves(h: int, w: int, top, bottom) -> np.ndarray:
    a = np.zeros((h, w, 3), np.uint8)
    a[: h // 2] = top
    a[h // 2:] = bottom
    return a


def noisy(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC))


def make_nasty_folder(root: Path) -> dict[str, str]:
    """Every odd case of a real photo folder. Returns {relative path: expected outcome} where the outcome is
    'ok' or a substring of the skip/ignore reason."""
    root.mkdir(parents=True, exist_ok=True)
    exp: dict[str, str] = {}

    def put(name: str, data: bytes, outcome: str) -> None:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        exp[name] = outcome

    good = jpeg_bytes(noisy(200, 300, 1))
    put("good.jpg", good, "ok")
    put("truncated.jpg", good[: len(good) // 2], "truncated or corrupt")
    put("corrupt.jpg", b"\xff\xd8\xff\xe0" + np.random.default_rng(2).bytes(3000), "truncated or corrupt")
    put("empty.jpg", b"", "empty file")
    put("notes.png", b"these are my notes, not a picture\n" * 20, "not an image")
    put("page.jpg", b"<!DOCTYPE html><html><body>404 Not Found</body></html>", "HTML")
    buf = io.BytesIO()
    Image.fromarray(np.full((60, 80), 77, np.uint8), "L").save(buf, "PNG")
    put("gray.png", buf.getvalue(), "ok")
    buf = io.BytesIO()
    Image.new("CMYK", (80, 60), (0, 255, 255, 0)).save(buf, "JPEG", quality=95)  # pure red in CMYK
    put("cmyk.jpg", buf.getvalue(), "ok")
    buf = io.BytesIO()
    Image.fromarray(halves(60, 80, RED, BLUE)).convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(buf, "PNG")
    put("palette.png", buf.getvalue(), "ok")
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., :3] = GREEN
    rgba[:, 32:, 3] = 255  # left half fully transparent -> white after compositing
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "PNG")
    put("rgba.png", buf.getvalue(), "ok")
    put("gray16.png", png16_bytes(np.full((64, 64), 40000, np.uint16)), "ok")
    rgb16 = np.zeros((64, 64, 3), np.uint16)
    rgb16[..., 0], rgb16[..., 2] = 65535, 32896  # -> (255, 0, 128)
    put("rgb16.png", png16_bytes(rgb16), "ok")
    # Stored 300 wide x 200 high, red on top; EXIF orientation 6 = displayed rotated 90 degrees clockwise,
    # so the displayed photo is 200 x 300 with red on the right and blue on the left.
    exif = Image.Exif()
    exif[0x0112] = 6
    put("rotated.jpg", jpeg_bytes(halves(200, 300, RED, BLUE), exif=exif.tobytes()), "ok")
    put("tiny.png", _png(np.full((24, 30, 3), 128, np.uint8)), "ok")  # smaller than the target: upscaled
    put("icon.png", _png(np.full((8, 8, 3), 128, np.uint8)), "too small")
    put("a/photo.jpg", jpeg_bytes(noisy(100, 120, 3)), "ok")  # same file name in two folders: both kept
    put("b/photo.jpg", jpeg_bytes(noisy(100, 120, 4)), "ok")
    put("UPPER.JPG", jpeg_bytes(noisy(90, 90, 5)), "ok")
    put("readme.txt", b"hello", "not an image file extension")
    put(".DS_Store", b"\x00\x01", "hidden file")
    put("._good.jpg", b"\x00\x05\x16\x07" + b"\x00" * 60, "AppleDouble")
    return exp


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def make_oxford_tgz(tmp: Path, labels_1based: list[int], size=(50, 40)) -> tuple[Path, Path]:
    """An Oxford-style 102flowers.tgz (jpg/image_00001.jpg ...) and a real imagelabels.mat (scipy savemat)."""
    import scipy.io

    tgz = tmp / "102flowers.tgz"
    with tarfile.open(tgz, "w:gz") as tf:
        for i in range(len(labels_1based)):
            data = jpeg_bytes(noisy(size[1], size[0], 100 + i))
            info = tarfile.TarInfo(f"jpg/image_{i + 1:05d}.jpg")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    mat = tmp / "imagelabels.mat"
    scipy.io.savemat(str(mat), {"labels": np.array([labels_1based], dtype=np.uint8)})
    return tgz, mat


def make_dataset_zip(path: Path, images: list[np.ndarray], labels: list[int] | None,
                     names: list[str] | None = None) -> Path:
    """A dataset zip in the official layout written directly (independent of flowergan's writer)."""
    names = names or [f"{i // 1000:05d}/img{i:08d}.png" for i in range(len(images))]
    with zipfile.ZipFile(path, "w") as zf:
        for name, img in zip(names, images):
            zf.writestr(name, _png(img))
        import json

        zf.writestr("dataset.json", json.dumps({"labels": None if labels is None else
                                                [[n, c] for n, c in zip(names, labels)]}))
    return path


def crashing_convert(batch, *cfg):
    """A worker task that kills its process (like a decoder segfault) when an item's bytes are b"CRASH"."""
    import os

    from flowergan.data.prepare import _convert_batch

    if any(data == b"CRASH" for _, _, data, _ in batch):
        os._exit(3)
    return _convert_batch(batch, *cfg)
