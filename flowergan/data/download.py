"""Download Oxford 102 Flowers (archive + labels) into the cache: resumable (HTTP Range), md5-verified, with progress.

Official files: https://www.robots.ox.ac.uk/~vgg/data/flowers/102/102flowers.tgz and imagelabels.mat. The md5
sums are the ones torchvision's Flowers102 verifies. Overrides (for mirrors and tests, which serve a fixture from
127.0.0.1): FLOWERGAN_OXFORD102_URL (base URL) and FLOWERGAN_OXFORD102_MD5 ("name=md5,name=md5").
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

from flowergan import infra
from flowergan.data.errors import DataError

log = logging.getLogger(__name__)

OXFORD102_BASE_URL = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
OXFORD102_FILES = {  # name -> md5 (as verified by torchvision.datasets.Flowers102)
    "102flowers.tgz": "52808999861908f626f3c1f4e79d11fa",  # 344,862,509 bytes, 8,189 JPEGs under jpg/
    "imagelabels.mat": "e0620be6f572b9609742df49c70aed4d",
}
_CHUNK = 1 << 20


class DownloadError(DataError):
    """A download failed; the message says why and how to get the files by hand."""


def cache_dir() -> Path:
    """$FLOWERGAN_CACHE, else ~/.cache/flowergan."""
    return infra.cache_dir()


def file_md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def manual_hint(dest_dir: Path | None = None) -> str:
    where = f" (or put them in {dest_dir} and rerun)" if dest_dir else ""
    return ("Manual alternative: download 102flowers.tgz and imagelabels.mat from "
            f"{OXFORD102_BASE_URL} with a browser{where}, then run\n"
            "  flowergan prepare 102flowers.tgz --labels imagelabels.mat --out data/flowers-128.zip --resolution 128")


def _open(url: str, start: int, timeout: float):
    headers = {"User-Agent": "flowergan-downloader"}
    if start:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def download_file(url: str, dest: str | os.PathLike, *, md5: str | None = None, progress: bool = True,
                  timeout: float = 60.0, retries: int = 3) -> Path:
    """Download `url` to `dest` via `dest`.part, resuming a partial file with an HTTP Range request.

    A server that ignores Range (200 instead of 206) restarts the file from zero. A dropped connection is
    retried `retries` times from where it stopped. With `md5`, a mismatch deletes the download and raises.
    """
    from tqdm import tqdm

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    attempt = 0
    while True:
        start = part.stat().st_size if part.exists() else 0
        try:
            resp = _open(url, start, timeout)
        except urllib.error.HTTPError as e:
            if e.code == 416 and start:  # our partial file is already complete (or longer than the file)
                m = re.search(r"/(\d+)", e.headers.get("Content-Range", "") or "")
                if m and int(m.group(1)) == start:
                    break
                part.unlink()
                continue
            raise DownloadError(f"download of {url} failed: HTTP {e.code} {e.reason}.\n{manual_hint(dest.parent)}"
                                ) from None
        except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise DownloadError(f"cannot reach {url} ({reason}); are you offline?\n{manual_hint(dest.parent)}"
                                ) from None
        with resp:
            status = resp.status
            if start and status == 206:
                cr = resp.headers.get("Content-Range", "")
                m = re.match(r"bytes (\d+)-", cr)
                if not m or int(m.group(1)) != start:
                    raise DownloadError(f"{url}: the server answered a resume request with an unexpected range "
                                        f"({cr!r}); delete {part} and retry")
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
                    raise DownloadError(f"download of {url} was interrupted at {got} bytes ({e}); run the same "
                                        f"command again to resume from there.\n{manual_hint(dest.parent)}"
                                        ) from None
                log.warning("connection dropped at %d bytes (%s); resuming", got, e)
                continue
            if total is not None and got < total:
                attempt += 1
                if attempt > retries:
                    raise DownloadError(f"download of {url} stopped at {got} of {total} bytes; run the same "
                                        f"command again to resume.\n{manual_hint(dest.parent)}")
                log.warning("download stopped at %d of %d bytes; resuming", got, total)
                continue
        break
    if md5:
        actual = file_md5(part)
        if actual != md5.lower():
            part.unlink()
            raise DownloadError(f"checksum mismatch for {dest.name} from {url}: expected md5 {md5}, got {actual}. "
                                f"The corrupt download was deleted; run again to download it afresh.\n"
                                f"{manual_hint(dest.parent)}")
    os.replace(part, dest)
    return dest


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
