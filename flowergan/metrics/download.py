"""Cache folder and checksummed, explicit-only downloads of metric detector files."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.request
from pathlib import Path

from flowergan import infra

log = logging.getLogger(__name__)

__all__ = ["ChecksumError", "cache_dir", "download", "sha256_file"]

_CHUNK = 1 << 20


class ChecksumError(RuntimeError):
    """A downloaded or local file does not have the expected sha256."""


def cache_dir(sub: str | None = None) -> Path:
    """`$FLOWERGAN_CACHE` if set, else `~/.cache/flowergan`; with `sub`, that subfolder (created)."""
    return infra.cache_dir(sub, create=True)


_sha_memo: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file (memoised per path, size and mtime within the process)."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if key not in _sha_memo:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                h.update(chunk)
        _sha_memo[key] = h.hexdigest()
    return _sha_memo[key]


def download(url: str, dest: str | os.PathLike, sha256: str | None = None, progress: bool = True,
             timeout: float = 60.0) -> Path:
    """Download `url` to `dest` (atomically: temp file in the same folder, then os.replace).

    With `sha256`, the bytes are checked before the file is put in place; on a mismatch nothing
    is left behind and `ChecksumError` is raised. Returns the destination path.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s -> %s", url, dest)
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            from tqdm.auto import tqdm

            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
                for chunk in iter(lambda: resp.read(_CHUNK), b""):
                    out.write(chunk)
                    h.update(chunk)
                    bar.update(len(chunk))
        got = h.hexdigest()
        if sha256 is not None and got != sha256.lower():
            raise ChecksumError(
                f"download of {url} has sha256 {got}, expected {sha256}: the file is corrupt or not the "
                f"expected one; nothing was saved. Try again, or fetch it by hand and pass its local path.")
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return dest
