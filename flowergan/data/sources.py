"""Read image files out of a folder (recursive), a zip or a tar/tgz; list the odd files with why they are ignored."""

from __future__ import annotations

import errno
import os
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from flowergan.data.errors import DataError
from flowergan.data.images import is_image_name
from flowergan.data.limits import ArchiveLimits
from flowergan.readers import BadInput, check_file

DATASET_JSON = "dataset.json"


@dataclass
class Listing:
    """What a source holds: image-named files (sorted relative posix paths) and everything else, with reasons."""

    candidates: list[str]
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    warnings: list[str] = field(default_factory=list)
    has_dataset_json: bool = False  # a top-level dataset.json (official layout) is present


def _classify(name: str) -> str | None:
    """None when `name` is an image candidate, else the reason it is ignored."""
    base = name.rsplit("/", 1)[-1]
    if name.startswith("__MACOSX/") or "/__MACOSX/" in name:
        return "macOS archive metadata (__MACOSX folder)"
    if base.startswith("._"):
        return "macOS metadata file (AppleDouble '._' copy, not a photo)"
    if base.startswith("."):
        return "hidden file"
    if not is_image_name(base):
        ext = base[base.rfind("."):] if "." in base else "(none)"
        return f"not an image file extension ({ext})"
    return None


def _norm(name: str) -> str:
    name = name.replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


class Source:
    """Base class: `list()` the files, then `iter_files(names)` yields (name, bytes or None, error or None)."""

    kind = "?"

    def __init__(self, path: Path):
        self.path = path

    def list(self) -> Listing:
        raise NotImplementedError

    def iter_files(self, names: Iterable[str]) -> Iterator[tuple[str, bytes | None, str | None]]:
        raise NotImplementedError

    def read_member(self, name: str) -> bytes | None:
        """Bytes of one small file (e.g. dataset.json), or None when absent."""
        raise NotImplementedError

    def _listing(self, names: Iterable[str], refused: dict[str, str] | None = None) -> Listing:
        """Classify `names` (archive order); `refused` maps names that must not be read to the reason."""
        candidates, ignored, seen = [], [], set()
        has_json = False
        for raw in names:
            name = _norm(raw)
            if name in seen:
                ignored.append((name, "duplicate name inside the archive: this later copy is ignored, the first "
                                      "copy of the name is the one used"))
                continue
            seen.add(name)
            if refused and name in refused:
                ignored.append((name, refused[name]))
                continue
            if name == DATASET_JSON:
                has_json = True
                ignored.append((name, "official dataset labels file (read for labels, not an image)"))
                continue
            reason = _classify(name)
            if reason is None:
                candidates.append(name)
            else:
                ignored.append((name, reason))
        candidates.sort()
        return Listing(candidates=candidates, ignored=ignored, has_dataset_json=has_json)


def _not_regular(path: str) -> str | None:
    """Why a folder entry that is not a regular file (after following a link) is not used, else None."""
    try:
        st = os.stat(path)
    except OSError as e:
        if not os.path.islink(path):
            return f"cannot read its metadata ({e.strerror or e})"
        if e.errno == errno.ELOOP:
            return "symbolic link loop (the link leads back to itself); not used"
        return f"dangling symbolic link (its target {os.readlink(path)!r} does not exist); not used"
    if stat.S_ISREG(st.st_mode):
        return None
    if stat.S_ISDIR(st.st_mode):
        return "symbolic link to a folder (not followed)"
    return "not a regular file (a pipe, socket or device); not read"


def _dir_link_reason(path: str) -> str:
    real = os.path.realpath(path)
    parent = os.path.realpath(os.path.dirname(path))
    if parent == real or parent.startswith(real.rstrip(os.sep) + os.sep):
        return "symbolic link loop (the link points to a folder that contains it); not followed"
    return "symbolic link to a folder (not followed; pass that folder itself, or copy it in)"


class FolderSource(Source):
    """A folder searched recursively; hidden folders and __MACOSX are not searched. `exclude` paths are skipped."""

    kind = "folder"

    def __init__(self, path: Path, exclude: Iterable[Path] = ()):
        super().__init__(path)
        self.exclude = {os.path.realpath(p) for p in exclude}

    def list(self) -> Listing:
        names, skipped_dirs = [], []
        for dirpath, dirnames, filenames in os.walk(self.path, onerror=None, followlinks=False):
            rel_dir = os.path.relpath(dirpath, self.path)
            rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
            keep = []
            for d in sorted(dirnames):
                if d.startswith(".") or d == "__MACOSX":
                    skipped_dirs.append((rel_dir + d + "/", "hidden or macOS metadata folder (not searched)"))
                elif os.path.islink(os.path.join(dirpath, d)):
                    skipped_dirs.append((rel_dir + d + "/", _dir_link_reason(os.path.join(dirpath, d))))
                else:
                    keep.append(d)
            dirnames[:] = keep
            for f in filenames:
                full = os.path.join(dirpath, f)
                if os.path.realpath(full) in self.exclude:
                    continue
                problem = _not_regular(full)
                if problem is not None:
                    skipped_dirs.append((rel_dir + f, problem))
                    continue
                names.append(rel_dir + f)
        listing = self._listing(names)
        listing.ignored = skipped_dirs + listing.ignored
        return listing

    def iter_files(self, names):
        for name in names:
            try:
                with open(self.path / name, "rb") as f:
                    yield name, f.read(), None
            except OSError as e:
                yield name, None, f"cannot read the file ({e.strerror or e}); check its permissions"

    def read_member(self, name):
        p = self.path / name
        return p.read_bytes() if p.is_file() else None


class ZipSource(Source):
    kind = "zip"

    def __init__(self, path: Path):
        super().__init__(path)
        self.limits = ArchiveLimits.from_env()
        self.limits.check_zip_directory(path)
        try:
            self.zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as e:
            raise DataError(f"{path} is not a readable zip file ({e}). Re-download or re-create it, or "
                            f"unpack it and pass the folder instead.") from None
        self._first: dict[str, zipfile.ZipInfo] = {}  # the first member of each name: the copy that is used
        for i in self.zf.infolist():
            if not i.is_dir():
                self._first.setdefault(_norm(i.filename), i)

    def list(self) -> Listing:
        members = [i for i in self.zf.infolist() if not i.is_dir()]
        self.limits.check_count(len(members), str(self.path))
        refused, total = {}, 0
        for i in self._first.values():
            why = self.limits.member_problem(i.file_size, i.compress_size)
            if why is not None:
                refused[_norm(i.filename)] = why
            elif is_image_name(i.filename.rsplit("/", 1)[-1]):
                total += i.file_size
        self.limits.check_total(total, str(self.path))
        return self._listing((i.filename for i in members), refused)

    def iter_files(self, names):
        lookup = self._first
        for name in names:
            try:
                yield name, self.zf.read(lookup[name]), None
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
                yield name, None, f"corrupt member inside the zip ({e})"
            except (RuntimeError, NotImplementedError) as e:  # encrypted / unsupported compression method
                yield name, None, f"cannot extract from the zip ({e})"

    def read_member(self, name):
        info = self._first.get(name)
        if info is None or self.limits.member_problem(info.file_size, info.compress_size):
            return None
        try:
            return self.zf.read(info)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError):
            return None


class TarSource(Source):
    """A tar, optionally gzip/bz2/xz-compressed (e.g. Oxford's 102flowers.tgz), read in two streaming passes."""

    kind = "tar"
    _ERRORS = (tarfile.TarError, EOFError, zlib.error, OSError)

    def __init__(self, path: Path):
        super().__init__(path)
        self.limits = ArchiveLimits.from_env()
        self._refused: dict[str, str] = {}

    def list(self) -> Listing:
        names, links, refused, total, count = [], [], {}, 0, 0
        packed = max(self.path.stat().st_size, 1)
        try:
            with tarfile.open(self.path, "r|*") as tf:
                for m in tf:
                    count += 1
                    self.limits.check_count(count, str(self.path))
                    if m.isfile():
                        names.append(m.name)
                        why = self.limits.member_problem(m.size, None)
                        if why is not None:
                            refused.setdefault(_norm(m.name), why)
                        else:
                            total += m.size
                        self.limits.check_total(total, str(self.path))
                        if total > self.limits.ratio_floor * 16 and total > self.limits.max_ratio * packed:
                            raise DataError(
                                f"{self.path}: its {packed:,} bytes decompress to more than {total:,} "
                                f"({total / packed:.0f}x, over the {self.limits.max_ratio:g}x limit): a "
                                f"decompression bomb, not a photo archive. Raise the limit with "
                                f"FLOWERGAN_ARCHIVE_MAX_RATIO if it is genuine. Nothing was written.")
                    elif not m.isdir():
                        links.append((_norm(m.name), "link or special file inside the tar (not followed)"))
        except self._ERRORS as e:
            if not names:
                raise DataError(f"{self.path} is not a readable tar archive ({e}). Re-download it (a partial "
                                f"download is a common cause) or unpack it and pass the folder.") from None
            raise DataError(f"{self.path} is truncated or corrupt after {len(names)} files ({e}), so some images "
                            f"would be missing. Re-download it (a partial download is the usual cause) and check "
                            f"its size or checksum. Nothing was written.") from None
        self._refused = refused
        listing = self._listing(names, refused)
        listing.ignored += links
        return listing

    def iter_files(self, names):
        wanted = set(names)
        done = set()
        try:
            with tarfile.open(self.path, "r|*") as tf:
                for m in tf:
                    name = _norm(m.name)
                    if name in wanted and name not in done and m.isfile():
                        done.add(name)
                        if self.limits.member_problem(m.size, None):  # listed under another size: not read
                            yield name, None, self.limits.member_problem(m.size, None)
                            continue
                        f = tf.extractfile(m)
                        yield name, f.read() if f else b"", None
        except self._ERRORS as e:
            for name in sorted(wanted - done):
                yield name, None, f"the archive is truncated or corrupt before this file ({e})"
            return
        for name in sorted(wanted - done):
            yield name, None, "listed in the archive but not found when reading it"

    def read_member(self, name):
        try:
            with tarfile.open(self.path, "r|*") as tf:
                for m in tf:
                    if _norm(m.name) == name and m.isfile():
                        if self.limits.member_problem(m.size, None):
                            return None
                        f = tf.extractfile(m)
                        return f.read() if f else None
        except self._ERRORS:
            return None
        return None


def open_source(path: str | os.PathLike, exclude: Iterable[Path] = ()) -> Source:
    """A Source for a folder, a .zip or a tar archive (by content, so a misnamed archive still works)."""
    p = Path(path).expanduser()
    if p.is_dir():
        return FolderSource(p, exclude)
    if not p.exists():
        raise DataError(f"source {str(path)!r} does not exist. Pass a folder of images, a .zip, a .tar/.tgz, "
                        f"or the word 'oxford102' or 'synthetic'.")
    try:  # a named pipe would block and a device such as /dev/zero never ends: refused before reading
        check_file(p, "source")
    except BadInput as e:
        raise DataError(f"{e}. Pass a folder of images, a .zip or a .tar/.tgz.") from None
    if zipfile.is_zipfile(p):
        return ZipSource(p)
    try:
        is_tar = tarfile.is_tarfile(p)
    except (OSError, EOFError, zlib.error):
        is_tar = False
    if is_tar or p.name.lower().endswith((".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tar.xz")):
        return TarSource(p)
    raise DataError(f"source {str(path)!r} is a file but neither a zip nor a tar archive. Pass the folder that "
                    f"contains your images, or an archive of it.")
