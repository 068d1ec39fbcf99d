"""Write a dataset zip in the official StyleGAN2-ADA layout, atomically and byte-reproducibly, plus its summary.

Layout (as NVlabs dataset_tool.py writes it): `00000/img00000000.png`, ... stored uncompressed, and a top-level
`dataset.json` with `{"labels": [[name, class], ...]}` or `{"labels": null}`. The zip is built in a hidden temp
file next to the output and renamed into place only when complete.
"""

from __future__ import annotations

import json
import logging
import os
import re
import zipfile
from pathlib import Path
from typing import Any

from flowergan.data.errors import DataError
from flowergan.infra import process_alive

log = logging.getLogger(__name__)
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # zip timestamps are fixed so two runs give identical bytes


def archive_name(index: int) -> str:
    """Official file name for image `index`: 00000/img00000000.png (1000 images per folder)."""
    s = f"{index:08d}"
    return f"{s[:5]}/img{s}.png"


def summary_path(out: str | os.PathLike) -> Path:
    """Where the summary of `out` is saved: DATASET.zip.summary.json beside it."""
    p = Path(out)
    return p.with_name(p.name + ".summary.json")


def remove_stale_partials(out: Path) -> list[Path]:
    """Delete temp files left by a killed run writing `out` (their writer process no longer exists)."""
    removed = []
    pat = re.compile(re.escape(f".{out.name}.partial-") + r"(\d+)-")
    if not out.parent.is_dir():
        return removed
    for p in out.parent.iterdir():
        m = pat.match(p.name)
        if m and not process_alive(int(m.group(1))):
            try:
                p.unlink()
                removed.append(p)
                log.info("removed %s left by an interrupted run", p)
            except OSError:
                pass
    return removed


def check_output(out: str | os.PathLike, overwrite: bool) -> Path:
    """Validate the output path before any work: a .zip, parent creatable, not existing unless `overwrite`."""
    p = Path(out).expanduser()
    if p.suffix.lower() != ".zip":
        raise DataError(f"--out {p}: the dataset is written as a zip (the official layout); give a path ending "
                        f"in .zip, e.g. --out data/flowers-128.zip")
    if p.is_dir():
        raise DataError(f"--out {p} is a folder; give a file path ending in .zip")
    if p.exists() and not overwrite:
        raise DataError(f"output {p} already exists; pass --overwrite to replace it, or choose another --out")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the folder for --out {p} ({e.strerror or e})") from None
    remove_stale_partials(p)
    return p


def write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}-json")
    try:
        tmp.write_text(json.dumps(obj, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class DatasetZipWriter:
    """Collects PNGs into a temp zip; `commit(labels)` adds dataset.json and renames it to `out`.

    Use as a context manager: leaving the block without commit (an error, Ctrl-C) deletes the temp file.
    """

    def __init__(self, out: Path, overwrite: bool):
        self.out = out
        self.overwrite = overwrite
        self.tmp = out.with_name(f".{out.name}.partial-{os.getpid()}-{os.urandom(3).hex()}")
        self.zf = zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
        self.count = 0
        self.committed = False

    def add(self, name: str, data: bytes) -> None:
        info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
        info.compress_type = zipfile.ZIP_STORED
        info.external_attr = 0o644 << 16
        self.zf.writestr(info, data)
        self.count += 1

    def commit(self, labels: list[list[Any]] | None, class_names: list[str] | None = None) -> Path:
        """Write dataset.json (with "class_names" when known), close, and move into place (refusing to replace
        unless overwrite)."""
        doc: dict[str, Any] = {"labels": labels}
        if class_names is not None and labels is not None:
            doc["class_names"] = list(class_names)
        self.add("dataset.json", json.dumps(doc).encode("utf-8"))
        self.count -= 1
        self.zf.close()
        if self.out.exists() and not self.overwrite:
            raise DataError(f"output {self.out} appeared while this run was working; pass --overwrite to "
                            f"replace it, or choose another --out")
        os.replace(self.tmp, self.out)
        self.committed = True
        return self.out

    def abort(self) -> None:
        try:
            self.zf.close()
        except Exception:  # closing a half-written zip may fail; the file is deleted anyway
            pass
        if self.tmp.exists():
            self.tmp.unlink()

    def __enter__(self) -> DatasetZipWriter:
        return self

    def __exit__(self, *exc) -> None:
        if not self.committed:
            self.abort()
