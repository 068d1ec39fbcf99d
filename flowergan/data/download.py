"""Download Oxford 102 Flowers (archive + labels) into the cache: resumable (HTTP Range), md5-verified, with progress.

Official files: https://www.robots.ox.ac.uk/~vgg/data/flowers/102/102flowers.tgz and imagelabels.mat. The md5
sums are the ones torchvision's Flowers102 verifies. Overrides (for mirrors and tests, which serve a fixture from
127.0.0.1): FLOWERGAN_OXFORD102_URL (base URL) and FLOWERGAN_OXFORD102_MD5 ("name=md5,name=md5").
"""

from __future__ import annotations

import logging
import os
import tarfile
from pathlib import Path

from flowergan import infra
from flowergan.data.errors import DataError

log = logging.getLogger(__name__)

OXFORD102_BASE_URL = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
OXFORD102_FILES = {  # name -> md5 (as verified by torchvision.datasets.Flowers102)
    "102flowers.tgz": "52808999861908f626f3c1f4e79d11fa",  # 344,862,509 bytes, 8,189 JPEGs under jpg/
    "imagelabels.mat": "e0620be6f572b9609742df49c70aed4d",
}


class DownloadError(DataError):
    """A download failed; the message says why and how to get the files by hand."""


def cache_dir() -> Path:
    """$FLOWERGAN_CACHE, else ~/.cache/flowergan."""
    return infra.cache_dir()


def file_md5(path: Path) -> str:
    return infra.file_digest(path, "md5")


def manual_hint(dest_dir: Path | None = None) -> str:
    where = f" (or put them in {dest_dir} and rerun)" if dest_dir else ""
    return ("Manual alternative: download 102flowers.tgz and imagelabels.mat from "
            f"{OXFORD102_BASE_URL} with a browser{where}, then run\n"
            "  flowergan prepare 102flowers.tgz --labels imagelabels.mat --out data/flowers-128.zip --resolution 128")


def download_file(url: str, dest: str | os.PathLike, *, md5: str | None = None, progress: bool = True,
                  timeout: float = 60.0, retries: int = 3) -> Path:
    """Download `url` to `dest` via `dest`.part, resuming a partial file with an HTTP Range request
    (`flowergan.infra.download`). With `md5`, a mismatch deletes the download and raises DownloadError."""
    dest = Path(dest)
    try:
        return infra.download(url, dest, digest=md5, algorithm="md5", progress=progress, timeout=timeout,
                              retries=retries, hint=manual_hint(dest.parent))
    except infra.DownloadError as e:
        raise DownloadError(str(e)) from None


def _checksums() -> dict[str, str | None]:
    sums: dict[str, str | None] = dict(OXFORD102_FILES)
    env = os.environ.get("FLOWERGAN_OXFORD102_MD5")
    if env:
        for item in env.split(","):
            name, _, value = item.partition("=")
            if name.strip() in sums:
                sums[name.strip()] = value.strip() or None
    return sums


def _check_format(path: Path) -> None:
    """Sanity check beyond the checksum: the archive opens as a tar, the labels as a .mat."""
    if path.suffix == ".tgz":
        try:
            with tarfile.open(path, "r|*") as tf:
                next(iter(tf))
        except (tarfile.TarError, OSError, EOFError, StopIteration) as e:
            raise DownloadError(f"{path} is not a valid tgz archive ({e}); delete it and rerun.") from None
    elif path.suffix == ".mat":
        import scipy.io

        try:
            if "labels" not in scipy.io.loadmat(str(path)):
                raise ValueError("no 'labels' variable")
        except Exception as e:  # scipy raises many types for non-.mat content
            raise DownloadError(f"{path} is not a valid imagelabels.mat ({e}); delete it and rerun.") from None


def fetch_oxford102(dest_dir: str | os.PathLike | None = None, *, base_url: str | None = None,
                    progress: bool = True) -> tuple[Path, Path]:
    """(102flowers.tgz, imagelabels.mat) in `dest_dir` (default: cache_dir()/oxford102), downloading if needed.

    Files already present are re-verified (md5) and re-downloaded when they do not match.
    """
    d = Path(dest_dir) if dest_dir else cache_dir() / "oxford102"
    base = base_url or os.environ.get("FLOWERGAN_OXFORD102_URL") or OXFORD102_BASE_URL
    base = base if base.endswith("/") else base + "/"
    sums = _checksums()
    paths = []
    for name in ("102flowers.tgz", "imagelabels.mat"):
        path = d / name
        want = sums[name]
        if path.exists():
            if want is None or file_md5(path) == want:
                log.info("using cached %s", path)
                _check_format(path)
                paths.append(path)
                continue
            log.warning("%s does not match its md5; downloading it again", path)
            path.unlink()
        log.info("downloading %s%s -> %s", base, name, path)
        download_file(base + name, path, md5=want, progress=progress)
        _check_format(path)
        paths.append(path)
    return paths[0], paths[1]
