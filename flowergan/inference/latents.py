"""Latent-space helpers: seed lists, seed -> z (as the official generate.py), labels, slerp/lerp, style ranges."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from flowergan.bounds import LIMITS, check_count, parse_int_ranges

__all__ = [
    "MAX_SEED", "MAX_SEEDS", "parse_seeds", "parse_floats", "seeds_to_z", "class_to_c", "slerp", "lerp",
    "style_ranges", "parse_styles",
]

MAX_SEED = 2**32 - 1        # np.random.RandomState accepts seeds in [0, 2**32 - 1]
MAX_SEEDS = LIMITS["seeds"].default  # per call; FLOWERGAN_MAX_SEEDS raises it (see flowergan.bounds)

_RANGE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$", re.ASCII)
_INT = re.compile(r"\d+", re.ASCII)


def _check_seed(seed: int, what: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"{what} {seed!r}: must be an integer in [0, {MAX_SEED}]")
    seed = int(seed)
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{what} {seed}: must be in [0, {MAX_SEED}] (numpy RandomState seeds are 32-bit)")
    return seed


def parse_seeds(spec: str | int | Iterable[int], what: str = "seeds") -> list[int]:
    """Seeds from "0-63" (inclusive range), "1,5,7-9" (list of numbers and ranges), an int or a list of ints.

    Order and repeats are kept as written. At most `bounds.limit("seeds")` seeds (checked before a range is
    expanded). Raises ValueError (a `BoundsError` for sizes) naming the bad part.
    """
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        return [_check_seed(spec, what)]
    if not isinstance(spec, str):
        spec = list(spec)
        check_count(len(spec), "seeds", what)
        return [_check_seed(s, what) for s in spec]
    if not spec.strip():
        raise ValueError(f"{what}: empty; give seeds like '0-63' or '1,5,7-9'")
    return parse_int_ranges(spec, what, 0, MAX_SEED, "seeds")


def parse_floats(spec: str | float | Iterable[float], what: str = "values") -> list[float]:
    """Floats from "1,0.7,0.5,0", a number or a list of numbers."""
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return [float(spec)]
    if not isinstance(spec, str):
        return [float(v) for v in spec]
    try:
        vals = [float(p) for p in spec.split(",") if p.strip()]
    except ValueError:
        raise ValueError(f"{what}: cannot parse {spec!r}; give numbers like '1,0.7,0.5,0'") from None
    if not vals or not all(math.isfinite(v) for v in vals):
        raise ValueError(f"{what}: {spec!r} must be a comma-separated list of finite numbers")
    return vals


def seeds_to_z(seeds: Sequence[int], z_dim: int) -> np.ndarray:
    """z for each seed exactly as the official generate.py: `np.random.RandomState(seed).randn(1, z_dim)`.

    Returns float64 [N, z_dim] (the mapping network casts it to float32, as the official code does).
    """
    seeds = parse_seeds(seeds)
    if not seeds:
        return np.zeros([0, z_dim])
    return np.concatenate([np.random.RandomState(s).randn(1, z_dim) for s in seeds], axis=0)


def class_to_c(class_idx: int | None, c_dim: int, n: int = 1, device: str | torch.device = "cpu") -> torch.Tensor:
    """One-hot labels [n, c_dim] for a conditional model; [n, 0] for an unconditional one.

    Raises ValueError when a conditional model gets no class, a class is out of range, or an
    unconditional model is given a class.
    """
    if c_dim == 0:
        if class_idx is not None:
            raise ValueError(f"class {class_idx}: this model is unconditional (c_dim=0); leave the class out")
        return torch.zeros([n, 0], device=device)
    if class_idx is None:
        raise ValueError(f"this model is conditional (c_dim={c_dim}): pass a class index in [0, {c_dim - 1}] "
                         f"(--class N on the command line, class_idx=N in Python)")
    if isinstance(class_idx, bool) or not isinstance(class_idx, (int, np.integer)) or not 0 <= class_idx < c_dim:
        raise ValueError(f"class {class_idx!r}: must be an integer in [0, {c_dim - 1}] for this model (c_dim={c_dim})")
    c = torch.zeros([n, c_dim], device=device)
    c[:, int(class_idx)] = 1
    return c


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between vectors a and b [..., D] (angle from their directions, norms lerped).

    t = 0 returns `a` and t = 1 returns `b` exactly; (anti)parallel vectors fall back to lerp.
    """
    if t == 0:
        return a.clone()
    if t == 1:
        return b.clone()
    a64, b64 = a.to(torch.float64), b.to(torch.float64)
    na, nb = a64.norm(dim=-1, keepdim=True), b64.norm(dim=-1, keepdim=True)
    ua, ub = a64 / na, b64 / nb
    dot = (ua * ub).sum(dim=-1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.arccos(dot)
    so = torch.sin(omega)
    if bool((so.abs() < 1e-6).any()):
        return torch.lerp(a64, b64, t).to(a.dtype)
    direction = (torch.sin((1 - t) * omega) * ua + torch.sin(t * omega) * ub) / so
    return (direction * torch.lerp(na, nb, t)).to(a.dtype)


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Linear interpolation a + t (b - a); exact at t = 0 and t = 1."""
    if t == 0:
        return a.clone()
    if t == 1:
        return b.clone()
    return torch.lerp(a, b, t)


def style_ranges(num_ws: int) -> dict[str, list[int]]:
    """Named layer ranges for style mixing: coarse / middle / fine (and all).

    With num_ws >= 12 (128 px and up) these are the StyleGAN paper's: coarse = 0-3 (4-8 px),
    middle = 4-7 (16-32 px), fine = 8-end. Smaller models split their ws into thirds
    (coarse = [0, ceil(n/3)), middle = [ceil(n/3), ceil(2n/3)), fine = the rest).
    """
    if num_ws >= 12:
        a, b = 4, 8
    else:
        a, b = math.ceil(num_ws / 3), math.ceil(2 * num_ws / 3)
    return {"coarse": list(range(0, a)), "middle": list(range(a, b)), "fine": list(range(b, num_ws)),
            "all": list(range(num_ws))}


def parse_styles(spec: str | Iterable[int] | None, num_ws: int, what: str = "styles") -> list[int]:
    """Layer indices from "0-3", "0,2,5-7", a named range (coarse, middle, fine, all, none) or a list.

    Named ranges may be combined ("coarse,fine"). Every index must be in [0, num_ws - 1].
    """
    if spec is None:
        return []
    named = style_ranges(num_ws)
    if isinstance(spec, str):
        out: list[int] = []
        for part in (p.strip().lower() for p in spec.split(",")):
            if part in ("", "none"):
                continue
            if part in named:
                out.extend(named[part])
                continue
            m = _RANGE.match(part)
            if m:
                lo, hi = int(m.group(1)), int(m.group(2))
                if hi < lo:
                    raise ValueError(f"{what}: range {part!r} runs backwards")
                out.extend(range(lo, min(hi, num_ws) + 1))  # an index >= num_ws is refused below
            elif _INT.fullmatch(part):
                out.append(int(part))
            else:
                raise ValueError(f"{what}: cannot parse {part!r}; use layer indices like '0-3' or '0,2,4-6', or "
                                 f"one of {sorted(named)} / 'none'")
    else:
        spec = list(spec)
        check_count(len(spec), "seeds", what)
        out = [int(i) for i in spec]
    bad = [i for i in out if not 0 <= i < num_ws]
    if bad:
        raise ValueError(f"{what}: layer index {bad[0]} out of range; this model has {num_ws} ws, "
                         f"so indices must be in [0, {num_ws - 1}]")
    return sorted(set(out))
