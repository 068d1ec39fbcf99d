"""Infrastructure shared by every area: the cache folder, downloads (resume, checksum, progress), atomic
file and folder writes, file hashes, float -> uint8 image conversion and grids. Standard library and numpy
only at import (torch is imported where a tensor is converted), and no flowergan imports, so every area,
`data` included, may use it."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import math
import os
import re
import secrets
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# ---- the cache folder ---------------------------------------------------------------------------
def cache_dir(sub: str | None = None, create: bool = False) -> Path:
    """`$FLOWERGAN_CACHE` (with ~ expanded) if set, else `~/.cache/flowergan`; with `sub`, that subfolder.
    `create` makes the folder."""
    env = os.environ.get("FLOWERGAN_CACHE")
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "flowergan"
    path = root / sub if sub else root
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


# ---- hashes -------------------------------------------------------------------------------------
_CHUNK = 1 << 20


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB blocks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


# ---- downloads ----------------------------------------------------------------------------------
class DownloadError(RuntimeError):
    """A download failed; the message says why and what to do."""


class ChecksumError(DownloadError):
    """A downloaded file does not have the expected checksum (it was deleted)."""


def _open_url(url: str, start: int, timeout: float):
    headers = {"User-Agent": "flowergan-downloader"}
    if start:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def download(url: str, dest: str | os.PathLike, *, digest: str | None = None, algorithm: str = "sha256",
             progress: bool = True, timeout: float = 60.0, retries: int = 3, hint: str = "") -> Path:
    """Download `url` to `dest` via `dest`.part, resuming a partial file with an HTTP Range request.

    A server that ignores Range (200 instead of 206) restarts the file from zero; a dropped connection is
    retried `retries` times from where it stopped. With `digest` (hex, of `algorithm`), the whole file is
    checked before it is renamed into place; on a mismatch the download is deleted and ChecksumError is
    raised. `hint` (e.g. how to fetch the file by hand) ends every error message. Returns `dest`.
    """
    from tqdm.auto import tqdm

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    tail = f"\n{hint}" if hint else ""
    attempt = 0
    while True:
        start = part.stat().st_size if part.exists() else 0
        try:
            resp = _open_url(url, start, timeout)
        except urllib.error.HTTPError as e:
            if e.code == 416 and start:  # our partial file is already complete (or longer than the file)
                m = re.search(r"/(\d+)", e.headers.get("Content-Range", "") or "")
                if m and int(m.group(1)) == start:
                    break
                part.unlink()
                continue
            raise DownloadError(f"download of {url} failed: HTTP {e.code} {e.reason}.{tail}") from None
        except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as e:
            why = getattr(e, "reason", e)
            raise DownloadError(f"cannot reach {url} ({why}); are you offline?{tail}") from None
        with resp:
            if start and resp.status == 206:
                cr = resp.headers.get("Content-Range", "")
                m = re.match(r"bytes (\d+)-", cr)
                if not m or int(m.group(1)) != start:
                    raise DownloadError(f"{url}: the server answered a resume request with an unexpected "
                                        f"range ({cr!r}); delete {part} and retry")
                mode = "ab"
            else:
                if start:
                    log.info("the server ignored the resume request; downloading %s from the start", url)
                start, mode = 0, "wb"
            length = resp.headers.get("Content-Length")
            total = start + int(length) if length is not None else None
            got = start
            try:
                with open(part, mode) as f, tqdm(total=total, initial=start, unit="B", unit_scale=True,
                                                 unit_divisor=1024, desc=dest.name, disable=not progress,
                                                 leave=False) as bar:
                    while block := resp.read(_CHUNK):
                        f.write(block)
                        got += len(block)
                        bar.update(len(block))
            except (TimeoutError, http.client.IncompleteRead, ConnectionError, OSError) as e:
                attempt += 1
                if attempt > retries:
                    raise DownloadError(f"download of {url} was interrupted at {got} bytes ({e}); run the "
                                        f"same command again to resume from there.{tail}") from None
                log.warning("connection dropped at %d bytes (%s); resuming", got, e)
                continue
            if total is not None and got < total:
                attempt += 1
                if attempt > retries:
                    raise DownloadError(f"download of {url} stopped at {got} of {total} bytes; run the same "
                                        f"command again to resume.{tail}")
                log.warning("download stopped at %d of %d bytes; resuming", got, total)
                continue
        break
    if digest:
        actual = file_digest(part, algorithm)
        if actual != digest.strip().lower():
            part.unlink()
            raise ChecksumError(f"checksum mismatch for {dest.name} from {url}: expected {algorithm} "
                                f"{digest}, got {actual}. The corrupt download was deleted, nothing was "
                                f"saved; run again to download it afresh.{tail}")
    os.replace(part, dest)
    return dest


# ---- limits from the environment -------------------------------------------------------------------
def env_number(name: str, default: float, error: type[Exception] = ValueError,
               hint: str = "a positive number") -> float:
    """A positive, finite number from environment variable `name` (`default` when unset or blank).

    Anything else raises `error` with a message naming the variable and what to give (`hint`)."""
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        v = float(text)
        if not (math.isfinite(v) and v > 0):
            raise ValueError
    except ValueError:
        raise error(f"environment variable {name}={text[:40]!r}: give {hint}") from None
    return v


# ---- atomic writes ------------------------------------------------------------------------------
def process_alive(pid: int) -> bool:
    """Whether process `pid` exists on this machine (one we may not signal counts; so does any doubt): a temp file
    whose writer is gone may be removed, one whose writer may still be writing may not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def temp_name(path: str | os.PathLike, tag: str = "tmp") -> Path:
    """A fresh hidden name next to `path` with the same suffix: `.<stem>.<pid>-<random>.<tag><suffix>`."""
    path = Path(path)
    return path.parent / f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.{tag}{path.suffix}"


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any], fsync: bool = False) -> Path:
    """Call `write(tmp_path)` for a temp name next to `path`, then rename it into place: readers see
    the old file or the whole new one, never a part. On any error the temp file is removed and the
    old file is untouched. The temp file is created by `write`, so it gets the usual permissions."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    try:
        write(str(tmp))
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno is not None and e.filename is None:
            e.filename = str(path)  # e.g. a full disk: say which output failed
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def replace_dir(tmp_dir: Path, final: Path) -> None:
    """Move a fully written `tmp_dir` to `final`, replacing an existing folder only at the last moment."""
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
        os.replace(tmp_dir, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp_dir, final)


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """`with atomic_dir(out) as tmp:` fill `tmp`; on success it replaces `out` (files fsynced first),
    on an error it is deleted and `out` is untouched."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))
    try:
        umask = os.umask(0o022)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it 0700: the folder gets the mode a plain mkdir would give
        yield tmp
        for f in tmp.iterdir():
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ---- images -------------------------------------------------------------------------------------
class NonFiniteImageError(RuntimeError):
    """A generated image holds NaN or infinite values: it is an error, never written or served as a PNG."""


def check_finite_images(images: Any) -> None:
    """Raise NonFiniteImageError when float images (a tensor or an array) hold NaN or infinite values (a
    clamp would turn them into black or saturated pixels silently)."""
    if isinstance(images, np.ndarray):
        bad = int(images.size - np.isfinite(images).sum()) if images.dtype.kind == "f" else 0
    else:
        import torch

        bad = int((~torch.isfinite(images)).sum()) if images.is_floating_point() else 0
    if bad:
        raise NonFiniteImageError(f"the generated image(s) hold {bad:,} NaN or infinite value(s) of "
                                  f"{int(np.prod(images.shape)):,}; nothing was written. The model's weights "
                                  f"or the latents are broken: use another checkpoint or check the latents")


def to_uint8_nchw(images: Any) -> Any:
    """float [N, C, H, W] tensor in ~[-1, 1] -> uint8 tensor [N, C, H, W] on the same device (the official
    `(x * 127.5 + 128).clamp(0, 255).to(uint8)`: truncation, not rounding). Non-finite values raise
    NonFiniteImageError."""
    import torch

    check_finite_images(images)
    return (images * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def to_uint8(images: Any) -> np.ndarray:
    """Generator output float [N, C, H, W] (nominally [-1, 1]; a tensor or an array) -> uint8 [N, H, W, C].

    The official conversion: `(x * 127.5 + 128).clamp(0, 255).to(uint8)` in float32 (truncation, not
    rounding). Non-finite values raise NonFiniteImageError (the one place every written or served image
    passes).
    """
    if images.ndim != 4:
        raise ValueError(f"to_uint8: expected images [N, C, H, W], got shape {tuple(images.shape)}")
    check_finite_images(images)
    if isinstance(images, np.ndarray):
        x = images.astype(np.float32).transpose(0, 2, 3, 1)  # [N, H, W, C]
        return np.clip(x * np.float32(127.5) + np.float32(128), 0, 255).astype(np.uint8)
    import torch

    x = (images.detach().to(torch.float32).permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return x.cpu().numpy()


def make_grid(images: np.ndarray, cols: int | None = None, pad: int = 0, bg: int = 0) -> np.ndarray:
    """Tile images [N, H, W, C] (or [N, H, W]) row by row into one [rows*H + pad*(rows-1), cols*W + ..., C].

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
