"""bias_act as one fused Triton kernel (GPU), with a backward that is itself differentiable (R1, path length).

Imported only where `triton` imports (see `fused.py`); `bias_act.py` keeps the plain formula, which is the
CPU path and the oracle the tests check this against (under `TRITON_INTERPRET=1` on CPU tensors).

Activations: linear, relu and lrelu, the piecewise-linear ones the networks use. For those the derivative
depends only on the sign of the output and on whether the clamp cut it, so backward keeps the output `y`
alone (which the next layer keeps anyway) instead of the input:

    y  = clamp(act(x + b) * gain, -c, c)
    dx = dy * gain * slope(y) * [|y| < c]          (slope: 1 where y > 0, else alpha; 1 for linear)
    db = sum of dx over every dimension but `dim`

dx is linear in dy with a factor that is constant almost everywhere, so the second-order backward is the same
kernel applied to the incoming gradient (and nothing flows to y). One difference from the plain formula, on a
set of measure zero: where act(x + b) * gain equals +-c exactly, torch's clamp passes the gradient, this does not.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from flowergan.ops import fused

ACT_CODES = {"linear": 0, "relu": 1, "lrelu": 1}  # relu is lrelu with alpha 0
BLOCK = 1024


@triton.jit
def _bias_act_fwd(x_ptr, b_ptr, y_ptr, n, C, stride_c, alpha, gain, clamp,
                  HAS_BIAS: tl.constexpr, ACT: tl.constexpr, HAS_CLAMP: tl.constexpr,
                  IS_F64: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    v = tl.load(x_ptr + offs, mask=mask, other=0)
    if not IS_F64:
        v = v.to(tl.float32)
    if HAS_BIAS:
        c = (offs // stride_c) % C  # channel of each element (dense layouts: see _channel_stride)
        bv = tl.load(b_ptr + c, mask=mask, other=0)
        if not IS_F64:
            bv = bv.to(tl.float32)
        v = v + bv
    if ACT == 1:
        v = tl.where(v > 0, v, v * alpha)
    v = v * gain
    if HAS_CLAMP:
        v = tl.minimum(tl.maximum(v, -clamp), clamp)
    tl.store(y_ptr + offs, v, mask=mask)


@triton.jit
def _bias_act_grad(g_ptr, y_ptr, out_ptr, n, alpha, gain, clamp,
                   ACT: tl.constexpr, HAS_CLAMP: tl.constexpr, IS_F64: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    g = tl.load(g_ptr + offs, mask=mask, other=0)
    y = tl.load(y_ptr + offs, mask=mask, other=0)
    if not IS_F64:
        g = g.to(tl.float32)
        y = y.to(tl.float32)
    g = g * gain
    if ACT == 1:
        g = tl.where(y > 0, g, g * alpha)
    if HAS_CLAMP:
        g = tl.where(tl.abs(y) < clamp, g, 0.0)
    tl.store(out_ptr + offs, g, mask=mask)


def is_dense(x: torch.Tensor) -> bool:
    """Contiguous in the default or the channels-last layout: the flat index then finds each channel."""
    return x.is_contiguous() or (x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last))


def _channel_stride(x: torch.Tensor, dim: int) -> int:
    # In a dense tensor, every dimension laid out outside `dim` has a stride that is a multiple of
    # stride(dim) * C, so the channel of flat element i is (i // stride(dim)) % C.
    return x.stride(dim) if x.shape[dim] > 1 else 1


def _grid(n: int):
    return (triton.cdiv(n, BLOCK),)


def _params(act: str, alpha: float, gain: float, clamp: float | None):
    has_clamp = clamp is not None and clamp >= 0
    return dict(alpha=float(alpha) if act == "lrelu" else 0.0, gain=float(gain),
                clamp=float(clamp) if has_clamp else 0.0, ACT=ACT_CODES[act], HAS_CLAMP=has_clamp)


def _grad(g: torch.Tensor, y: torch.Tensor, p: dict) -> torch.Tensor:
    g = g if g.stride() == y.stride() else torch.empty_like(y).copy_(g)  # same layout as y
    out = torch.empty_like(y)
    try:
        _bias_act_grad[_grid(y.numel())](g, y, out, y.numel(), IS_F64=y.dtype == torch.float64,
                                         BLOCK=BLOCK, **p)
    except torch.OutOfMemoryError:
        raise
    except Exception as e:  # noqa: BLE001 - the graph is built: finish this backward in plain PyTorch
        fused.disable(f"bias_act backward kernel raised {type(e).__name__}: {str(e).splitlines()[0][:200]}")
        return _grad_plain(g, y, p)
    return out


def _grad_plain(g: torch.Tensor, y: torch.Tensor, p: dict) -> torch.Tensor:
    """What `_bias_act_grad` computes, in plain PyTorch."""
    g = g * p["gain"]
    if p["ACT"] == 1:
        g = torch.where(y > 0, g, g * p["alpha"])
    if p["HAS_CLAMP"]:
        g = torch.where(y.abs() < p["clamp"], g, torch.zeros_like(g))
    return g


class _BiasActGrad(torch.autograd.Function):
    """dx = dy * gain * slope(y) * mask(y): linear in dy, so its own backward is the same map."""

    @staticmethod
    def forward(ctx, dy: torch.Tensor, y: torch.Tensor, p: dict) -> torch.Tensor:
        ctx.save_for_backward(y)
        ctx.p = p
        return _grad(dy, y, p)

    @staticmethod
    def backward(ctx, ddx: torch.Tensor):
        (y,) = ctx.saved_tensors
        return _BiasActGrad.apply(ddx, y, ctx.p), None, None


class _BiasAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, b: torch.Tensor | None, dim: int, p: dict, inplace: bool) -> torch.Tensor:
        y = x if inplace else torch.empty_like(x)
        n = x.numel()
        C = x.shape[dim]
        _bias_act_fwd[_grid(n)](x, b if b is not None else x, y, n, C, _channel_stride(x, dim),
                                HAS_BIAS=b is not None, IS_F64=x.dtype == torch.float64, BLOCK=BLOCK, **p)
        if inplace:
            ctx.mark_dirty(x)
        ctx.save_for_backward(y)
        ctx.dim, ctx.p, ctx.has_bias = dim, p, b is not None
        return y

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        (y,) = ctx.saved_tensors
        # Nothing flows back to y (the derivative is piecewise constant), but the plain formula's graph links
        # its input to the gradient for lrelu/relu and not for linear; do the same, so that exactly the same
        # parameters end up with a (zero) gradient instead of none: Adam treats those two differently.
        dx = _BiasActGrad.apply(dy, y if ctx.p["ACT"] == 1 else y.detach(), ctx.p)
        db = None
        if ctx.has_bias and ctx.needs_input_grad[1]:
            dims = [d for d in range(dx.ndim) if d != ctx.dim]
            db = dx.sum(dims) if dims else dx
        return dx, db, None, None, None


def bias_act_triton(x: torch.Tensor, b: torch.Tensor | None, dim: int, act: str, alpha: float, gain: float,
                    clamp: float | None, inplace: bool = False) -> torch.Tensor:
    """The fused kernel with bias_act's semantics (defaults already resolved by the caller).

    Args:
        x: dense input ([N, C] or [N, C, H, W], contiguous or channels-last; see `is_dense`).
        b: bias [x.shape[dim]] in x's dtype, or None.
        dim: the dimension `b` runs along.
        act: 'linear', 'relu' or 'lrelu'.
        alpha, gain, clamp: as in `bias_act` (clamp None or < 0: off; 0 is left to the plain path).
        inplace: write the result into x (x must be an intermediate autograd does not need).
    Returns:
        y, x's shape, dtype and layout.
    """
    assert act in ACT_CODES and is_dense(x), "bias_act_triton: linear/relu/lrelu on a dense tensor only"
    assert b is None or (b.ndim == 1 and b.shape[0] == x.shape[dim] and b.dtype == x.dtype)
    b = b.contiguous() if b is not None else None
    return _BiasAct.apply(x, b, dim % x.ndim, _params(act, alpha, gain, clamp), inplace)
