"""Cache folder and checksummed, explicit-only downloads of metric detector files (on `flowergan.infra`)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from flowergan import infra

log = logging.getLogger(__name__)

__all__ = ["ChecksumError", "cache_dir", "download", "sha256_file"]



ChecksumError = infra.ChecksumError  # a downloaded or local file does not have the expected sha256


def cache_dir(sub: str | None = None) -> Path:
    """`$FLOWERGAN_CACHE` if set, else `~/.cache/flowergan`; with `sub`, that subfolder (created)."""
    return infra.cache_dir(sub, create=True)


_sha_memo: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file (memoised per path, size and mtime within the process)."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if key not in _sha_memo:
        _sha_memo[key] = infra.file_digest(path, "sha256")
    return _sha_memo[key]


def download(url: str, dest: str | os.PathLike, sha256: str | None = None, progress: bool = True,
             timeout: float = 60.0) -> Path:
    """Download `url` to `dest` (resumable, renamed into place only when complete; `flowergan.infra.download`).

    With `sha256`, the bytes are checked before the file is put in place; on a mismatch nothing
    is left behind and `ChecksumError` is raised. Returns the destination path.
    """
    return infra.download(url, dest, digest=sha256, algorithm="sha256", progress=progress, timeout=timeout,
                          hint="Try again, or fetch the file by hand and pass its local path.")
