"""Bounds on what a dataset source may ask for (archive members, sizes, ratios, label classes), each with the
environment variable that raises it. Checked before any work, so a small hostile file cannot cost a large one."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from flowergan.data.errors import DataError
from flowergan.infra import env_number

MiB = 2**20


def _env(name: str, default: float) -> float:
    return env_number(name, default, DataError)


@dataclass(frozen=True)
class ArchiveLimits:
    """Limits for one zip or tar source (defaults leave room for ImageNet-sized photo archives)."""

    max_files: int = 2_000_000          # members in the archive           FLOWERGAN_ARCHIVE_MAX_FILES
    max_member: int = 256 * MiB         # decompressed size of one member  FLOWERGAN_ARCHIVE_MAX_MEMBER_MB
    max_total: int = 256 * 1024 * MiB   # decompressed size of all members FLOWERGAN_ARCHIVE_MAX_TOTAL_GB
    max_ratio: float = 200.0            # decompressed / compressed size (photos are ~1; a bomb is ~1000)
    ratio_floor: int = 4 * MiB          # the ratio is only checked above this decompressed size

    @classmethod
    def from_env(cls) -> ArchiveLimits:
        d = cls()
        return cls(max_files=int(_env("FLOWERGAN_ARCHIVE_MAX_FILES", d.max_files)),
                   max_member=int(_env("FLOWERGAN_ARCHIVE_MAX_MEMBER_MB", d.max_member / MiB) * MiB),
                   max_total=int(_env("FLOWERGAN_ARCHIVE_MAX_TOTAL_GB", d.max_total / 1024 / MiB) * 1024 * MiB),
                   max_ratio=_env("FLOWERGAN_ARCHIVE_MAX_RATIO", d.max_ratio))

    def member_problem(self, size: int, compressed: int | None) -> str | None:
        """Why a member of `size` decompressed bytes (stored in `compressed` bytes) is not read, or None."""
        if size > self.max_member:
            return (f"{size / MiB:.1f} MB decompressed is over the {self.max_member / MiB:g} MB limit for one file "
                    f"(not read; raise it with FLOWERGAN_ARCHIVE_MAX_MEMBER_MB)")
        if compressed is not None and size > self.ratio_floor and size > self.max_ratio * max(compressed, 1):
            return (f"decompresses {size / max(compressed, 1):.0f}x ({compressed:,} -> {size:,} bytes), over the "
                    f"{self.max_ratio:g}x limit: a decompression bomb, not a photo (not read; raise it with "
                    f"FLOWERGAN_ARCHIVE_MAX_RATIO)")
        return None

    def check_count(self, n: int, where: str) -> None:
        if n > self.max_files:
            raise DataError(f"{where}: more than {self.max_files:,} files in the archive; raise the limit with "
                            f"FLOWERGAN_ARCHIVE_MAX_FILES=<count> if this is genuine. Nothing was written.")

    def check_zip_directory(self, path: os.PathLike | str) -> None:
        """Refuse a zip whose central directory lists more than `max_files` entries, reading only its end record
        (opening it would build one Python object per entry first)."""
        import zipfile

        try:
            with open(path, "rb") as f:
                end = zipfile._EndRecData(f)  # the stdlib's own end-of-directory reader (zip64 aware)
        except OSError:
            return  # zipfile.ZipFile reports unreadable files itself
        if end:
            self.check_count(int(end[zipfile._ECD_ENTRIES_TOTAL]), str(path))

    def check_zip_members(self, infos, where: str) -> None:
        """For a dataset zip that should hold only prepared images: count and sizes, each member and in total."""
        self.check_count(len(infos), where)
        total = 0
        for i in infos:
            why = self.member_problem(i.file_size, i.compress_size)
            if why is not None:
                raise DataError(f"{where}: member {i.filename!r}: {why}. A dataset written by flowergan prepare "
                                f"holds only small images; re-create it with flowergan prepare.")
            total += i.file_size
        self.check_total(total, where)

    def check_total(self, total: int, where: str) -> None:
        if total > self.max_total:
            raise DataError(f"{where}: the files decompress to more than {self.max_total / 1024 / MiB:g} GB; raise "
                            f"the limit with FLOWERGAN_ARCHIVE_MAX_TOTAL_GB=<GB> if this is genuine. Nothing was "
                            f"written.")


MAX_CLASSES_ENV = "FLOWERGAN_MAX_CLASSES"
DEFAULT_MAX_CLASSES = 100_000  # ImageNet-21k has 21,841; the conditioning width is the class count


def max_classes() -> int:
    return int(_env(MAX_CLASSES_ENV, DEFAULT_MAX_CLASSES))


def check_class_count(largest: int, where: str) -> None:
    """Refuse a class label that would make the one-hot label width (largest + 1) unreasonably large."""
    limit = max_classes()
    if largest + 1 > limit:
        raise DataError(f"{where}: class {largest} means {largest + 1:,} classes (one-hot label width), over the "
                        f"limit of {limit:,}. Labels are 0-based class numbers; renumber them 0..N-1, or raise the "
                        f"limit with {MAX_CLASSES_ENV}=<count>.")
