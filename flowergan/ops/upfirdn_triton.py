"""upfirdn2d as one Triton kernel (GPU), with its adjoint as the same kernel: gradients of every order.

Imported only where `triton` imports (see `fused.py`); `upfirdn.py` keeps the plain formula, which is the CPU
path and the tests' oracle. Each output sample is computed directly from the input, no intermediate images:

    out[n, c, oy, ox] = gain * sum_{i, j} F[i, j] * U[oy * dy + i - y0, ox * dx + j - x0]

where U is x with (up - 1) zeros after every sample (U[u, v] = x[u / uy, v / ux] where both divide, else 0) and
F is f flipped (a true convolution) unless `flip_filter`; a 1-D f is applied separably (F[i, j] = f[i] * f[j]).
With o = k * up + p0 - o' * down, the adjoint (gradient with respect to x) is the same map with up and down
swapped, the filter flipped, and padding (fw - 1 - x0, W * ux - OW * dx + x0 - ux + 1, likewise in y).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from flowergan.ops import fused

BLOCK = 256


@triton.jit
def _upfirdn_kernel(x_ptr, f_ptr, out_ptr, n_out, C, H, W, OH, OW,
                    sxn, sxc, sxh, sxw, son, soc, soh, sow,
                    UPX: tl.constexpr, UPY: tl.constexpr, DOWNX: tl.constexpr, DOWNY: tl.constexpr,
                    X0: tl.constexpr, Y0: tl.constexpr, FH: tl.constexpr, FW: tl.constexpr,
                    SEPARABLE: tl.constexpr, FLIP: tl.constexpr, gain, IS_F64: tl.constexpr,
                    CHANNELS_LAST: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_out
    if CHANNELS_LAST:  # enumerate outputs in memory order, so neighbouring lanes touch neighbouring addresses
        c = offs % C
        ox = (offs // C) % OW
        oy = (offs // (C * OW)) % OH
        n = offs // (C * OW * OH)
    else:
        ox = offs % OW
        oy = (offs // OW) % OH
        c = (offs // (OW * OH)) % C
        n = offs // (OW * OH * C)
    if IS_F64:
        acc = tl.full([BLOCK], 0, dtype=tl.float64)
    else:
        acc = tl.full([BLOCK], 0, dtype=tl.float32)
    base = x_ptr + n * sxn + c * sxc
    for i in tl.static_range(FH):
        u = oy * DOWNY + i - Y0  # row in the zero-inserted image
        iy = u // UPY
        row_ok = (u >= 0) & (u % UPY == 0) & (iy < H)
        fi = FH - 1 - i if FLIP else i
        for j in tl.static_range(FW):
            v = ox * DOWNX + j - X0
            ix = v // UPX
            ok = mask & row_ok & (v >= 0) & (v % UPX == 0) & (ix < W)
            fj = FW - 1 - j if FLIP else j
            if SEPARABLE:
                w = tl.load(f_ptr + fi) * tl.load(f_ptr + fj)
            else:
                w = tl.load(f_ptr + fi * FW + fj)
            xv = tl.load(base + iy * sxh + ix * sxw, mask=ok, other=0)
            if IS_F64:
                acc += xv.to(tl.float64) * w.to(tl.float64)
            else:
                acc += xv.to(tl.float32) * w.to(tl.float32)
    tl.store(out_ptr + n * son + c * soc + oy * soh + ox * sow, acc * gain, mask=mask)


def _launch(x: torch.Tensor, f: torch.Tensor, p: dict, out_hw: tuple[int, int]) -> torch.Tensor:
    N, C, H, W = x.shape
    OH, OW = out_hw
    fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous() \
        else torch.contiguous_format
    out = torch.empty([N, C, OH, OW], device=x.device, dtype=x.dtype, memory_format=fmt)
    n_out = out.numel()
    if n_out == 0:
        return out
    FH = f.shape[0]
    FW = f.shape[-1]
    _upfirdn_kernel[(triton.cdiv(n_out, BLOCK),)](
        x, f, out, n_out, C, H, W, OH, OW, *x.stride(), *out.stride(),
        UPX=p["up"][0], UPY=p["up"][1], DOWNX=p["down"][0], DOWNY=p["down"][1], X0=p["pad"][0], Y0=p["pad"][2],
        FH=FH, FW=FW, SEPARABLE=f.ndim == 1, FLIP=not p["flip_filter"], gain=float(p["gain"]),
        IS_F64=x.dtype == torch.float64, CHANNELS_LAST=fmt == torch.channels_last, BLOCK=BLOCK)
    return out


def _out_hw(H: int, W: int, f: torch.Tensor, p: dict) -> tuple[int, int]:
    fh, fw = f.shape[0], f.shape[-1]
    (ux, uy), (dx, dy), (x0, x1, y0, y1) = p["up"], p["down"], p["pad"]
    return (H * uy + y0 + y1 - fh) // dy + 1, (W * ux + x0 + x1 - fw) // dx + 1


def _adjoint(p: dict, in_hw: tuple[int, int], out_hw: tuple[int, int], f: torch.Tensor) -> dict:
    """Parameters of the adjoint map (gradient with respect to the input), derived in the module docstring."""
    fh, fw = f.shape[0], f.shape[-1]
    (ux, uy), (dx, dy), (x0, _, y0, _) = p["up"], p["down"], p["pad"]
    H, W = in_hw
    OH, OW = out_hw
    pad = (fw - 1 - x0, W * ux - OW * dx + x0 - ux + 1, fh - 1 - y0, H * uy - OH * dy + y0 - uy + 1)
    return dict(up=(dx, dy), down=(ux, uy), pad=pad, flip_filter=not p["flip_filter"], gain=p["gain"])


class _Upfirdn(torch.autograd.Function):
    """x -> upfirdn2d(x); the gradient is the adjoint map, whose gradient is this map again."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, f: torch.Tensor, p: dict) -> torch.Tensor:
        out_hw = _out_hw(x.shape[2], x.shape[3], f, p)
        ctx.save_for_backward(f)
        ctx.p, ctx.in_hw, ctx.out_hw = p, tuple(x.shape[2:]), out_hw
        return _launch(x, f, p, out_hw)

    @staticmethod
    def backward(ctx, gy: torch.Tensor):
        (f,) = ctx.saved_tensors
        q = _adjoint(ctx.p, ctx.in_hw, ctx.out_hw, f)
        try:
            return _Upfirdn.apply(gy, f, q), None, None
        except torch.OutOfMemoryError:
            raise
        except Exception as e:  # noqa: BLE001 - the graph is built: finish this backward in plain PyTorch
            fused.disable(f"upfirdn2d backward kernel raised {type(e).__name__}: {str(e).splitlines()[0][:200]}")
            from flowergan.ops.upfirdn import upfirdn2d_reference

            return upfirdn2d_reference(gy, f, q["up"], q["down"], q["pad"], q["flip_filter"], q["gain"]), None, None


def upfirdn2d_triton(x: torch.Tensor, f: torch.Tensor, up: tuple[int, int], down: tuple[int, int],
                     pad: tuple[int, int, int, int], flip_filter: bool, gain: float) -> torch.Tensor:
    """The kernel with upfirdn2d's semantics (arguments already normalised by the caller).

    Args:
        x: [N, C, H, W] (any strides; the output is channels-last when x is).
        f: a constant filter, 1-D [fw] (separable) or 2-D [fh, fw], on x's device, contiguous.
        up, down: (x, y) factors; pad: (x0, x1, y0, y1), negative crops; flip_filter, gain: as upfirdn2d.
    Returns:
        [N, C, OH, OW] as upfirdn2d.
    """
    assert x.ndim == 4 and f.ndim in (1, 2) and f.is_contiguous() and not f.requires_grad
    p = dict(up=tuple(up), down=tuple(down), pad=tuple(pad), flip_filter=bool(flip_filter), gain=float(gain))
    return _Upfirdn.apply(x, f, p)
