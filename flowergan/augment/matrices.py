"""Batched homogeneous transformation matrices: 3x3 for 2-D image geometry, 4x4 for RGB colour (ADA, appendix B).

Every builder takes per-sample parameters as tensors of shape [N] (or [N, 3] for an axis) and returns
[N, 3, 3] / [N, 4, 4] in the parameters' dtype and device. Image coordinates are x to the right,
y downwards, origin at the image centre, so a positive `rotate2d` angle turns content clockwise on
screen. Colour vectors are homogeneous (r, g, b, 1).
"""

from __future__ import annotations

import math

import torch

#: Unit luma axis (1, 1, 1) / sqrt(3) of RGB space (homogeneous 0 appended by `luma_axis`).
LUMA = (1 / math.sqrt(3),) * 3


_SCALARS: dict[tuple[float, torch.dtype, torch.device], torch.Tensor] = {}  # a few literals of this module


def _scalar(v: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A 0-dim constant, made once per process and device (no fill kernel per matrix; nothing writes to it)."""
    if torch.compiler.is_compiling():  # traced: a constant of the graph
        return torch.full((), v, dtype=dtype, device=device)
    t = _SCALARS.get((v, dtype, device))
    if t is None:
        with torch.inference_mode(False):  # usable later outside inference mode too
            t = _SCALARS[(v, dtype, device)] = torch.full((), v, dtype=dtype, device=device)
    return t


def _assemble(rows: list[list[torch.Tensor | float]], ref: torch.Tensor) -> torch.Tensor:
    """Stack a k x k nested list of [N] tensors / Python numbers into [N, k, k]."""
    k = len(rows)
    elems = [e if isinstance(e, torch.Tensor) else _scalar(float(e), ref.dtype, ref.device).expand(ref.shape)
             for row in rows for e in row]
    return torch.stack(elems, dim=-1).reshape(ref.shape + (k, k))


def eye(n: int, k: int, *, device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """[n, k, k] stack of identity matrices."""
    return torch.eye(k, device=device, dtype=dtype).expand(n, k, k).clone()


def translate2d(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    """Move points by (tx, ty). [N] -> [N, 3, 3]."""
    return _assemble([[1, 0, tx], [0, 1, ty], [0, 0, 1]], tx)


def scale2d(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    """Scale about the origin by (sx, sy). [N] -> [N, 3, 3]."""
    return _assemble([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], sx)


def rotate2d(theta: torch.Tensor) -> torch.Tensor:
    """Rotate by theta radians about the origin, [[cos, -sin], [sin, cos]]. [N] -> [N, 3, 3]."""
    c, s = torch.cos(theta), torch.sin(theta)
    return _assemble([[c, -s, 0], [s, c, 0], [0, 0, 1]], theta)


def translate3d(tx: torch.Tensor, ty: torch.Tensor, tz: torch.Tensor) -> torch.Tensor:
    """Add (tx, ty, tz) to colours. [N] -> [N, 4, 4]."""
    return _assemble([[1, 0, 0, tx], [0, 1, 0, ty], [0, 0, 1, tz], [0, 0, 0, 1]], tx)


def scale3d(sx: torch.Tensor, sy: torch.Tensor, sz: torch.Tensor) -> torch.Tensor:
    """Scale colours about the origin (0, 0, 0). [N] -> [N, 4, 4]."""
    return _assemble([[sx, 0, 0, 0], [0, sy, 0, 0], [0, 0, sz, 0], [0, 0, 0, 1]], sx)


def luma_axis(*, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """v = (1, 1, 1, 0) / sqrt(3) as a [4] tensor."""
    v = torch.full((4,), LUMA[0], device=device, dtype=dtype)  # built on the device: no host->device copy
    v[3] = 0
    return v


def luma_projector(*, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """v v^T [4, 4]: projection onto the luma axis (homogeneous part untouched by it)."""
    v = luma_axis(device=device, dtype=dtype)
    return torch.outer(v, v)


def luma_flip(i: torch.Tensor) -> torch.Tensor:
    """Householder reflection I - 2 i v v^T about the plane orthogonal to luma; i in {0, 1}. [N] -> [N, 4, 4]."""
    vv = luma_projector(device=i.device, dtype=i.dtype)
    return torch.eye(4, device=i.device, dtype=i.dtype) - 2 * vv * i[:, None, None]


def rotate_about_luma(theta: torch.Tensor) -> torch.Tensor:
    """Hue rotation: rotate RGB by theta radians about the luma axis (Rodrigues). [N] -> [N, 4, 4].

    R = cos(t) I + sin(t) [v]_x + (1 - cos(t)) v v^T on the RGB block; the luma component is kept.
    """
    vx, vy, vz = LUMA
    c, s = torch.cos(theta), torch.sin(theta)
    cc = 1 - c
    return _assemble([
        [vx * vx * cc + c, vx * vy * cc - vz * s, vx * vz * cc + vy * s, 0],
        [vy * vx * cc + vz * s, vy * vy * cc + c, vy * vz * cc - vx * s, 0],
        [vz * vx * cc - vy * s, vz * vy * cc + vx * s, vz * vz * cc + c, 0],
        [0, 0, 0, 1],
    ], theta)


def saturate(s: torch.Tensor) -> torch.Tensor:
    """Scale the chroma (component orthogonal to luma) by s: v v^T + s (I - v v^T). [N] -> [N, 4, 4].

    s = 0 gives grey (every channel = the pixel's channel mean), s = 1 the identity.
    """
    vv = luma_projector(device=s.device, dtype=s.dtype)
    homog = torch.zeros(4, 4, device=s.device, dtype=s.dtype)
    homog[3, 3] = 1
    chroma = torch.eye(4, device=s.device, dtype=s.dtype) - homog - vv
    return vv + homog + chroma * s[:, None, None]
