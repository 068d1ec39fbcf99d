"""One place that turns the expected failures of any command into one line (what, where, how to fix) and
an exit status: 2 for bad input, 1 for a failure of the run itself. `--debug` or FLOWERGAN_DEBUG=1 lets
the original exception (and its traceback) through instead."""

from __future__ import annotations

import errno
import os
import pickle
import re
import sys

import click

from flowergan.errors import BadInput, MissingDependency

__all__ = ["BAD_INPUT", "FAILURE", "CommandFailed", "classify", "debug_enabled"]

BAD_INPUT, FAILURE = 2, 1
DEBUG_ENV = "FLOWERGAN_DEBUG"

# top-level module of an optional package -> what to install
_EXTRAS = {"imageio": "pip install 'flowergan[video]'", "imageio_ffmpeg": "pip install 'flowergan[video]'",
           "matplotlib": "pip install 'flowergan[plot]'", "scipy": "pip install scipy",
           "playwright": "pip install playwright", "huggingface_hub": "pip install huggingface_hub"}


class CommandFailed(click.ClickException):
    """A classified failure: click prints `Error: <message>` and exits with `exit_code`."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def debug_enabled(flag: bool = False) -> bool:
    return flag or os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _loaded(module: str, name: str):
    """The class `module.name` if that module is already imported (an exception can only come from it then)."""
    mod = sys.modules.get(module)
    return getattr(mod, name, None) if mod is not None else None


def _path(e: OSError) -> str:
    names = [str(n) for n in (e.filename, e.filename2) if n is not None]
    return " -> ".join(names) if names else "a file"


def _os_error(e: OSError) -> tuple[int, str]:
    where, why = _path(e), e.strerror or " ".join(str(e).split()) or type(e).__name__
    if isinstance(e, FileNotFoundError):
        if e.errno is None and e.filename is None and str(e):  # raised with a message of its own: keep it
            return BAD_INPUT, " ".join(str(e).split())
        return BAD_INPUT, f"{where}: no such file or folder; check the path"
    if isinstance(e, FileExistsError):
        return BAD_INPUT, f"{where}: already exists; choose another name or pass --overwrite where the command has it"
    if isinstance(e, IsADirectoryError):
        return BAD_INPUT, f"{where}: is a folder, a file was expected"
    if isinstance(e, NotADirectoryError):
        return BAD_INPUT, f"{where}: a part of this path is a file, a folder was expected"
    if isinstance(e, PermissionError):
        return FAILURE, f"{where}: permission denied; choose a location you may read/write or change its permissions"
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return FAILURE, f"{where}: the disk is full ({why}); free some space or write somewhere else"
    if e.errno == errno.EROFS:
        return FAILURE, f"{where}: the file system is read-only; write the output somewhere else"
    if e.errno == errno.ENAMETOOLONG:
        return BAD_INPUT, f"{where[:120]}...: file name too long; choose a shorter name"
    if e.filename is None:  # e.g. a network failure during a download
        return FAILURE, f"{type(e).__name__}: {why}"
    return FAILURE, f"{where}: {why}"


def classify(e: BaseException) -> tuple[int, str] | None:
    """(exit status, one-line message) for an expected failure; None for anything click handles itself."""
    if isinstance(e, (click.exceptions.ClickException, click.exceptions.Abort, click.exceptions.Exit,
                      KeyboardInterrupt, SystemExit, GeneratorExit)):
        return None
    msg = " ".join(str(e).split()) or type(e).__name__  # one line
    pil_bad = _loaded("PIL", "UnidentifiedImageError")
    if pil_bad is not None and isinstance(e, pil_bad):
        return BAD_INPUT, f"not an image file Pillow can read: {msg}"
    download_error = _loaded("flowergan.data.download", "DownloadError")
    if download_error is not None and isinstance(e, download_error):
        return FAILURE, msg
    if isinstance(e, MemoryError) or "can't allocate memory" in msg or "out of memory" in msg.lower():
        return FAILURE, (f"out of memory ({msg[:200]}); ask for a smaller batch, model or image count, or use a "
                         f"machine with more memory")
    os_code = re.search(r"os error (\d+)", msg) if type(e).__name__ == "SafetensorError" else None
    if os_code:  # safetensors' wrapping of a failed read or write (e.g. a full disk): the OS error it is
        code = int(os_code.group(1))
        return _os_error(OSError(code, os.strerror(code), getattr(e, "filename", None)))
    if isinstance(e, (BadInput, pickle.UnpicklingError)) or type(e).__name__ == "SafetensorError":
        return BAD_INPUT, msg
    if isinstance(e, BrokenPipeError):
        return FAILURE, "the output pipe was closed before the command finished"
    if isinstance(e, OSError):
        return _os_error(e)
    if isinstance(e, RecursionError):
        return BAD_INPUT, f"input nested too deeply to read ({msg}); is the file damaged?"
    if isinstance(e, (ValueError, EOFError, UnicodeError)):  # the library's validation errors; damaged files
        return BAD_INPUT, msg
    zip_bad = _loaded("zipfile", "BadZipFile")
    tar_bad = _loaded("tarfile", "TarError")
    if any(c is not None and isinstance(e, c) for c in (zip_bad, tar_bad)):
        return BAD_INPUT, f"damaged or unsupported archive: {msg}"
    if isinstance(e, MissingDependency):
        return FAILURE, msg
    if isinstance(e, ImportError):
        top = (e.name or "").split(".")[0]
        fix = _EXTRAS.get(top, f"pip install {top}" if top else "check your installation")
        return FAILURE, f"a package this command needs is missing ({msg}); install it: {fix}"
    if "CUDA" in msg or "NVIDIA" in msg:
        return FAILURE, f"CUDA failure: {msg}; use --device cpu, or check the GPU driver and torch's CUDA build"
    if isinstance(e, RuntimeError):  # the library's runtime failures (diverged training, detector files, ...)
        return FAILURE, msg
    return FAILURE, (f"internal error: {type(e).__name__}: {msg[:300]} (this is a bug; rerun with --debug or "
                     f"{DEBUG_ENV}=1 for the traceback and please report it)")
