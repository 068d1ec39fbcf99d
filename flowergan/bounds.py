"""One table of limits on every size a command-line flag or a web request can ask for, and the checks that
apply them before any work starts (so a 10-byte input cannot make flowergan allocate gigabytes).

Each limit has a default and an environment variable that raises it (e.g. FLOWERGAN_MAX_SEEDS=500000);
every refusal names the input, the limit and that variable. Floats from outside must be finite.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

from flowergan.errors import BoundsError

__all__ = ["BoundsError", "Limit", "LIMITS", "limit", "check_count", "check_memory", "check_float", "parse_int_ranges",
           "MAX_INT_DIGITS", "PSI_RANGE", "STRENGTH_RANGE", "FPS_RANGE"]

MAX_INT_DIGITS = 20  # longer digit strings are refused before int() (no number we accept has more)
PSI_RANGE = (-1.0, 2.0)  # truncation psi accepted from the CLI and the web API
STRENGTH_RANGE = (-100.0, 100.0)  # edit strengths, in std units of a direction (-3..3 spans most of w)
FPS_RANGE = (0.0, 240.0)  # frames per second of a written video (0 excluded)


@dataclass(frozen=True)
class Limit:
    """One bound: at most `default` `unit`, unless the environment variable `env` says otherwise."""

    name: str
    default: int
    unit: str

    @property
    def env(self) -> str:
        return f"FLOWERGAN_MAX_{self.name.upper()}"

    def value(self) -> int:
        raw = os.environ.get(self.env)
        if raw is None or not raw.strip():
            return self.default
        raw = raw.strip()
        if not raw.isdigit() or len(raw) > MAX_INT_DIGITS or int(raw) < 1:
            raise BoundsError(f"environment variable {self.env}={raw[:40]!r}: must be a positive integer "
                              f"({self.unit}; default {self.default:,})")
        return int(raw)


LIMITS: dict[str, Limit] = {lim.name: lim for lim in [
    Limit("seeds", 100_000, "seeds per command"),
    Limit("mix_seeds", 256, "row or column seeds per style-mixing figure"),
    Limit("psis", 64, "truncation values per sweep"),
    Limit("frames", 10_000, "video frames per command"),
    Limit("steps", 100_000, "projection steps"),
    Limit("batch", 4_096, "images per batch"),
    Limit("images", 10_000_000, "images per command"),
    Limit("workers", 256, "worker processes"),
    Limit("repeats", 10_000, "benchmark repeats"),
    Limit("memory_mb", 4_096, "MB of images, figures and latents a command may hold in memory at once"),
    # input files (flowergan/readers.py): checked from the file's size before a byte is read
    Limit("json_mb", 16, "MB per JSON file (config.json, --config, a directions .json)"),
    Limit("latents_mb", 1_024, "MB per latents file (--projected-w .npz)"),
    Limit("directions_mb", 8, "MB per directions file"),
    Limit("image_mb", 256, "MB per image file"),
    Limit("image_pixels", 100_000_000, "pixels per image (width x height, read from the header)"),
    Limit("labels_mb", 64, "MB per labels file (prepare --labels: .mat, .json, .csv)"),
    # latents: how far a w may lie from the model's average, in units of its typical spread (see
    # Pipeline.check_ws); untruncated samples lie about 1 away, psi 2 doubles it, noise starts far beyond
    Limit("w_distance", 20, "typical spreads of the model's w from its average w"),
]}


def limit(name: str) -> int:
    """The current value of limit `name` (its default unless the environment raises it)."""
    return LIMITS[name].value()


def _raise_hint(name: str) -> str:
    return f"raise it with {LIMITS[name].env}=N"


def check_count(n: int, name: str, where: str) -> int:
    """Refuse `n` above limit `name`; `where` names the input (e.g. '--frames')."""
    lim = LIMITS[name]
    cap = lim.value()
    if n > cap:
        raise BoundsError(f"{where}: {n:,} {lim.unit} asked for, the limit is {cap:,} ({_raise_hint(name)})")
    return n


def check_memory(nbytes: int, where: str, what: str) -> int:
    """Refuse holding `nbytes` in memory (e.g. a grid of N images of H x W x C bytes) above the memory limit."""
    cap = limit("memory_mb")
    if nbytes > cap * 2**20:
        raise BoundsError(f"{where}: {what} would take {nbytes / 2**20:,.0f} MB of memory, the limit is {cap:,} MB "
                          f"({_raise_hint('memory_mb')}, or ask for fewer or smaller images)")
    return nbytes


def check_float(v: float, where: str, lo: float | None = None, hi: float | None = None) -> float:
    """A finite float, within [lo, hi] where given (NaN and infinities are refused)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise BoundsError(f"{where}: must be a number, got {v!r}")
    v = float(v)
    if not math.isfinite(v):
        raise BoundsError(f"{where}: {v} is not a finite number")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = f"[{lo:g}, {hi:g}]" if lo is not None and hi is not None else (f">= {lo:g}" if lo is not None
                                                                           else f"<= {hi:g}")
        raise BoundsError(f"{where}: {v:g} is out of range; use a number in {rng}")
    return v


_RANGE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$", re.ASCII)
_INT = re.compile(r"\d+", re.ASCII)


def _small_int(text: str, where: str, lo: int, hi: int) -> int:
    text = text.strip()
    if len(text) > MAX_INT_DIGITS:
        raise BoundsError(f"{where}: {text[:12]}... ({len(text)} digits) is not in [{lo}, {hi}]")
    v = int(text)
    if not lo <= v <= hi:
        raise BoundsError(f"{where} {v}: must be in [{lo}, {hi}]")
    return v


def parse_int_ranges(spec: str, where: str, lo: int, hi: int, count_limit: str,
                     named: dict[str, list[int]] | None = None) -> list[int]:
    """Integers from "0-63" (inclusive), "1,5,7-9" or names in `named`; order and repeats kept.

    Every number is checked against [lo, hi] and the running count against limit `count_limit`
    before a range is expanded, so "0-4294967295" costs nothing. Raises BoundsError / ValueError.
    """
    if len(spec) > 100_000:
        raise BoundsError(f"{where}: a {len(spec):,}-character list; give ranges like '0-63' instead")
    cap = limit(count_limit)
    out: list[int] = []
    for part in spec.split(","):
        key = part.strip().lower()
        m = _RANGE.match(part)
        if named is not None and key in named:
            vals = named[key]
        elif m:
            a, b = _small_int(m.group(1), where, lo, hi), _small_int(m.group(2), where, lo, hi)
            if b < a:
                raise ValueError(f"{where}: range {part.strip()!r} runs backwards; write it as '{b}-{a}'")
            vals = range(a, b + 1)
        elif _INT.fullmatch(key):
            vals = [_small_int(key, where, lo, hi)]
        else:
            raise ValueError(f"{where}: cannot parse {part.strip()[:40]!r} in {spec[:80]!r}; give numbers like "
                             f"'0-63' or '1,5,7-9'")
        if len(out) + len(vals) > cap:
            lim = LIMITS[count_limit]
            raise BoundsError(f"{where}: {spec[:80]!r} asks for more than {cap:,} {lim.unit} "
                              f"({_raise_hint(count_limit)})")
        out.extend(vals)
    return out
