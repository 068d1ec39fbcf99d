"""Bounded readers, one per kind of input file: JSON, npz latents, images and raw bytes (directions files,
pickles). Every command and the web API read outside files through them.

Each reader follows a symbolic link, then refuses anything but a regular file (a folder; a named pipe, which
would block forever; a device such as /dev/zero, which never ends), checks the file's size against its limit in
`flowergan.bounds` *before* reading a byte, and then reads at most that many bytes (a file that grows meanwhile
is refused too). Refusals are `BadInput` / `BoundsError` whose one line names the file, the limit and the
FLOWERGAN_MAX_* variable that raises it. Standard library, numpy and flowergan.bounds only (Pillow where an
image is read), so every area, `data` included, may use it.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import stat
import warnings
import zipfile
from typing import Any

import numpy as np

from flowergan import bounds
from flowergan.errors import BadInput, BoundsError

__all__ = ["check_file", "read_bytes", "read_text", "read_json", "read_latents", "load_image", "check_pixels",
           "BoundedFile", "MiB"]

MiB = 2**20


def _size_limit(limit: str) -> int:
    return bounds.limit(limit) * MiB


def check_file(path: str | os.PathLike, what: str, limit: str | None = None) -> int:
    """The size in bytes of `path`, a regular file (after following links) of at most limit `limit` (an MB
    limit of flowergan.bounds; None: any size). Raises FileNotFoundError, BadInput or BoundsError."""
    p = os.fspath(path)
    try:
        st = os.stat(p)  # follows a symbolic link: the target is what gets read
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {p} does not exist; check the path") from None
    except OSError as e:  # a link loop, a name too long, a part of the path that is a file
        raise BadInput(f"{what} {p}: cannot be read ({e.strerror or e})") from None
    if stat.S_ISDIR(st.st_mode):
        raise BadInput(f"{what} {p}: is a folder, a file was expected")
    if not stat.S_ISREG(st.st_mode):
        kind = "a named pipe" if stat.S_ISFIFO(st.st_mode) else \
            "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "a socket or other special file"
        raise BadInput(f"{what} {p}: not a regular file ({kind}, which could block or never end); give a file")
    if limit is not None:
        cap = _size_limit(limit)
        if st.st_size > cap:
            lim = bounds.LIMITS[limit]
            raise BoundsError(f"{what} {p}: {st.st_size / MiB:,.1f} MB, over the limit of {cap // MiB:,} "
                              f"{lim.unit} (raise it with {lim.env}=N if the file is genuine); nothing was read")
    return st.st_size


def read_bytes(path: str | os.PathLike, what: str, limit: str) -> bytes:
    """The bytes of regular file `path`, at most limit `limit` (checked before and while reading)."""
    check_file(path, what, limit)
    cap = _size_limit(limit)
    with open(path, "rb") as f:
        data = f.read(cap + 1)
    if len(data) > cap:
        lim = bounds.LIMITS[limit]
        raise BoundsError(f"{what} {os.fspath(path)}: grew past the limit of {cap // MiB:,} {lim.unit} while "
                          f"being read (raise it with {lim.env}=N)")
    return data


def read_text(path: str | os.PathLike, what: str, limit: str = "json_mb") -> str:
    """UTF-8 text of a bounded regular file; a file that is not UTF-8 is BadInput naming it."""
    data = read_bytes(path, what, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadInput(f"{what} {os.fspath(path)}: not UTF-8 text ({e}); the file is damaged") from None


def read_json(path: str | os.PathLike, what: str, limit: str = "json_mb") -> Any:
    """The JSON document in a bounded regular file (`json_mb`, FLOWERGAN_MAX_JSON_MB); garbled or nested too
    deep is BadInput naming the file."""
    text = read_text(path, what, limit)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(f"{what} {os.fspath(path)}: not readable JSON ({e}); the file is damaged") from None
    except RecursionError:
        raise BadInput(f"{what} {os.fspath(path)}: JSON nested too deeply to read; the file is damaged") from None


# ---- latents ----------------------------------------------------------------------------------------
def read_latents(path: str | os.PathLike, what: str = "--projected-w", shape: tuple[int, int] | None = None,
                 key: str = "w") -> np.ndarray:
    """ws float32 [N, num_ws, w_dim] from a projected_w.npz (array `key`, e.g. [1, num_ws, w_dim] from
    `flowergan project`). The file size (`latents_mb`), then the array's size from its .npy header
    (`memory_mb`), its dtype, its shape (`shape` = (num_ws, w_dim) where given), its count (`seeds`) and
    finiteness are checked; each refusal is BadInput naming the file."""
    p = os.fspath(path)
    where = f"{what} {p}"
    check_file(p, what, "latents_mb")
    try:
        with zipfile.ZipFile(p) as z:
            member = next((i for i in z.infolist() if i.filename == f"{key}.npy"), None)
            if member is None:
                raise BadInput(f"{where}: no array named {key!r} (expected [1, num_ws, w_dim]; write one with "
                               f"flowergan project)")
            with z.open(member) as f:  # the .npy header says how much loading would allocate
                fmt = np.lib.format
                version = fmt.read_magic(f)
                read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
                hshape, _, dtype = read_header(f)
            bounds.check_memory(max(member.file_size, math.prod(hshape) * dtype.itemsize), where,
                                f"the array {key!r}")
            if dtype.kind != "f":
                raise BadInput(f"{where}: {key!r} is {dtype} {list(hshape)}; floats [N, num_ws, w_dim] are needed")
            with z.open(member) as f:
                ws = np.lib.format.read_array(f, allow_pickle=False)
    except BadInput:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, TypeError) as e:
        raise BadInput(f"{where}: not an .npz file with a readable array {key!r} ({type(e).__name__}; write one "
                       f"with flowergan project)") from None
    if ws.ndim < 2 or (shape is not None and tuple(ws.shape[-2:]) != tuple(shape)):
        want = f"[N, {shape[0]}, {shape[1]}]" if shape is not None else "[N, num_ws, w_dim]"
        raise BadInput(f"{where}: {key!r} is {ws.dtype} {list(ws.shape)}; this model needs floats {want}")
    bounds.check_count(int(np.prod(ws.shape[:-2])), "seeds", where)
    if not np.isfinite(ws).all():
        raise BadInput(f"{where}: {key!r} holds NaN or infinite values (they would render black images)")
    return ws.reshape(-1, *ws.shape[-2:]).astype(np.float32, copy=False)


# ---- images -----------------------------------------------------------------------------------------
_PIL_PIXELS = re.compile(r"\((\d+) pixels\)")


def check_pixels(width: int, height: int, what: str, max_pixels: int | None = None) -> None:
    """Refuse an image of width x height pixels over `image_pixels` (or `max_pixels` where smaller)."""
    cap = bounds.limit("image_pixels")
    if max_pixels is not None:
        cap = min(cap, max_pixels)
    if width < 1 or height < 1:
        raise BadInput(f"{what}: {width}x{height} pixels; not an image")
    if width * height > cap:
        raise BoundsError(f"{what}: {width}x{height} = {width * height:,} pixels, over the limit of {cap:,} pixels "
                          f"per image (resize it, or raise the limit with {bounds.LIMITS['image_pixels'].env}=N)")


def load_image(source: str | os.PathLike | bytes, what: str, max_pixels: int | None = None,
               formats: tuple[str, ...] | None = None):
    """A decoded PIL image from a bounded regular file or from bytes (`image_mb`). Its width x height is
    read from the header and checked (`check_pixels`) before any pixel is decoded; a file Pillow cannot
    read, or whose data is truncated, is BadInput naming it."""
    import PIL.Image

    if isinstance(source, (bytes, bytearray)):
        cap = _size_limit("image_mb")
        if len(source) > cap:
            raise BoundsError(f"{what}: {len(source) / MiB:,.1f} MB, over the limit of {cap // MiB:,} MB per image "
                              f"file (raise it with {bounds.LIMITS['image_mb'].env}=N)")
        data = bytes(source)
    else:
        data = read_bytes(source, what, "image_mb")
        what = f"{what} {os.fspath(source)}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)  # our own limit applies below
            im = PIL.Image.open(io.BytesIO(data), formats=formats)  # reads the header only
        check_pixels(*im.size, what, max_pixels)
        im.load()
        return im
    except BadInput:
        raise
    except PIL.Image.DecompressionBombError as e:  # Pillow's own refusal, from the header
        m = _PIL_PIXELS.search(str(e))
        n = f"{int(m.group(1)):,} pixels" if m else "too many pixels"
        raise BoundsError(f"{what}: its header claims {n}, over the limit of {bounds.limit('image_pixels'):,} "
                          f"pixels per image (resize it)") from None
    except PIL.UnidentifiedImageError:
        want = " or ".join(formats) if formats else "an image file"
        raise BadInput(f"{what}: not {want} Pillow can read") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, MemoryError) as e:
        raise BadInput(f"{what}: truncated or corrupt image data ({str(e) or type(e).__name__})") from None


# ---- length claims inside a file (pickles) -------------------------------------------------------
class BoundedFile(io.RawIOBase):
    """A read-only view of a binary file that refuses any single read past the file's end: a length claimed
    inside the file (a pickle's 2^40-byte string) is a BoundsError, not an allocation of that size."""

    def __init__(self, f, size: int, what: str):
        super().__init__()
        self.f, self.size, self.what = f, size, what

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.f.tell()

    def seek(self, pos: int, whence: int = 0) -> int:
        return self.f.seek(pos, whence)

    def read(self, n: int = -1) -> bytes:
        left = self.size - self.f.tell()
        if n is not None and n > max(left, 0):
            raise BoundsError(f"{self.what}: a length of {n:,} bytes is claimed at byte {self.f.tell():,}, but only "
                              f"{max(left, 0):,} bytes remain; the file is truncated or hostile (nothing was built)")
        return self.f.read(n)

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def readline(self, limit: int = -1) -> bytes:
        return self.f.readline(limit if limit is not None and limit >= 0 else 1 << 20)
