"""FIR up/down-sampling (upfirdn2d semantics): zero-insert upsample, pad/crop, FIR filter, decimate.

The filter is applied as a true convolution (flipped) unless `flip_filter`; for the symmetric
[1,3,3,1] filter of StyleGAN2 both are the same. Plain PyTorch, differentiable to any order; on CUDA
`upfirdn2d` runs the Triton kernel of `upfirdn_triton.py` where `fused.py` allows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

import torch
import torch.nn.functional as F

from flowergan.ops import fused


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    a, b = v
    return int(a), int(b)


def _padding4(padding: int | Sequence[int]) -> tuple[int, int, int, int]:
    """-> (x0, x1, y0, y1)."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    if len(padding) == 2:
        px, py = padding
        return px, px, py, py
    x0, x1, y0, y1 = padding
    return int(x0), int(x1), int(y0), int(y1)


def setup_filter(f: Sequence[float] | torch.Tensor = (1, 3, 3, 1), normalize: bool = True,
                 separable: bool = False, device: torch.device | str = "cpu") -> torch.Tensor:
    """Build a FIR filter tensor: 1-D input -> 2-D outer product [fh, fw] (or kept 1-D if separable)."""
    f = torch.as_tensor(f, dtype=torch.float32, device=device)
    if f.ndim == 0:
        f = f[None]
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if normalize:
        f = f / f.sum()
    return f


def filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """-> (fw, fh) of a 1-D (separable) or 2-D filter; (1, 1) for None."""
    if f is None:
        return 1, 1
    if f.ndim == 1:
        return f.shape[0], f.shape[0]
    return f.shape[1], f.shape[0]


class _DepthwiseFir(torch.autograd.Function):
    """Depthwise 'valid' convolution of x [N, C, H, W] with a constant filter w [C, 1, kh, kw], stride s.

    Its gradient is the adjoint (a transposed depthwise convolution, `_DepthwiseFirAdjoint`), whose gradient
    is this op again, so gradients of every order stay two-kernel depthwise convolutions. Autograd's generic
    double backward of a grouped convolution instead loops over the groups (one small convolution per
    channel), which made R1 (a gradient of a gradient through D) ~30x slower than D's main step on a GPU.
    """

    @staticmethod
    def forward(ctx, x, w, stride):
        ctx.save_for_backward(w)
        ctx.stride, ctx.in_hw = stride, tuple(x.shape[-2:])
        return F.conv2d(x, w.to(x.dtype), stride=stride, groups=w.shape[0])

    @staticmethod
    def backward(ctx, gy):
        (w,) = ctx.saved_tensors
        return _DepthwiseFirAdjoint.apply(gy, w, ctx.stride, ctx.in_hw), None, None


class _DepthwiseFirAdjoint(torch.autograd.Function):
    """The adjoint of `_DepthwiseFir`: y [N, C, Ho, Wo] -> [N, C, H, W] (transposed convolution)."""

    @staticmethod
    def forward(ctx, y, w, stride, in_hw):
        ctx.save_for_backward(w)
        ctx.stride = stride
        kh, kw = w.shape[-2:]
        extra = (in_hw[0] - (y.shape[-2] - 1) * stride[0] - kh, in_hw[1] - (y.shape[-1] - 1) * stride[1] - kw)
        if y.dtype == torch.bfloat16 and y.device.type == "cpu" and max(stride) > 1:
            # oneDNN's strided transposed depthwise convolution in bf16 is ~4x slower than in fp32 on CPUs
            # (the gradient of every decimating FIR in D): the same sum in fp32, rounded to bf16 once.
            with torch.autocast("cpu", enabled=False):
                gx = F.conv_transpose2d(y.float(), w.float(), stride=stride, output_padding=extra, groups=w.shape[0])
            return gx.to(y.dtype)
        return F.conv_transpose2d(y, w.to(y.dtype), stride=stride, output_padding=extra, groups=w.shape[0])

    @staticmethod
    def backward(ctx, gx):
        (w,) = ctx.saved_tensors
        return _DepthwiseFir.apply(gx, w, ctx.stride), None, None, None


def _depthwise(x: torch.Tensor, w: torch.Tensor, stride: tuple[int, int]) -> torch.Tensor:
    if w.requires_grad:  # a learned filter needs its own gradient: let autograd handle the whole op
        return F.conv2d(x, w, stride=stride, groups=w.shape[0])
    if not (torch.is_grad_enabled() and x.requires_grad):
        # No gradient to shape: the same convolution, and no Python autograd function in traced/exported graphs.
        return F.conv2d(x, w.to(x.dtype), stride=stride, groups=w.shape[0])
    return _DepthwiseFir.apply(x, w, stride)


def _fir(x: torch.Tensor, f: torch.Tensor, flip_filter: bool, down: tuple[int, int] = (1, 1)) -> torch.Tensor:
    """Depthwise 'valid' filtering of x [N, C, H, W] by f (1-D separable or 2-D), decimating by `down`.

    A grouped (depthwise) convolution is an order of magnitude faster on the CPU than folding channels
    into the batch; decimation is the convolution's stride, so the dropped samples are never computed.
    """
    N, C, H, W = x.shape
    f = f.to(x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    dx, dy = down
    if f.ndim == 1:
        k = f.shape[0]
        x = _depthwise(x, f.reshape(1, 1, 1, k).expand(C, 1, 1, k), (1, dx))
        return _depthwise(x, f.reshape(1, 1, k, 1).expand(C, 1, k, 1), (dy, 1))
    return _depthwise(x, f[None, None].expand(C, 1, *f.shape), (dy, dx))


def upfirdn2d(x: torch.Tensor, f: torch.Tensor | None, up: int | Sequence[int] = 1,
              down: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
              flip_filter: bool = False, gain: float = 1) -> torch.Tensor:
    """Upsample (zero insertion), pad, FIR-filter and downsample a batch of images.

    Args:
        x: [N, C, H, W] input.
        f: filter, 2-D [fh, fw], 1-D [fw] (applied separably) or None (identity).
        up: integer upsampling factor (or (ux, uy)).
        down: integer downsampling factor (or (dx, dy)).
        padding: int, (px, py) or (x0, x1, y0, y1); negative values crop.
        flip_filter: use the filter as given (correlation) instead of flipping it (convolution).
        gain: overall gain; a 2-D filter is scaled by gain, a 1-D one by sqrt(gain) per pass.
    Returns:
        [N, C, (H*uy + y0 + y1 - fh + 1) // dy, (W*ux + x0 + x1 - fw + 1) // dx] (ceil division).
    """
    assert x.ndim == 4, f"upfirdn2d expects [N, C, H, W], got {tuple(x.shape)}"
    up, down, pad = _pair(up), _pair(down), _padding4(padding)
    y = _fused(x, f, up, down, pad, flip_filter, gain)
    return y if y is not None else upfirdn2d_reference(x, f, up, down, pad, flip_filter, gain)


def _fused(x: torch.Tensor, f: torch.Tensor | None, up: tuple[int, int], down: tuple[int, int],
           pad: tuple[int, int, int, int], flip_filter: bool, gain: float) -> torch.Tensor | None:
    """The Triton kernel's result where it applies and works, else None (the caller runs the plain formula)."""
    if f is None or f.requires_grad or f.ndim not in (1, 2) or f.device != x.device or x.numel() == 0:
        return None
    if torch.is_autocast_enabled(x.device.type):
        return None  # the plain path's convolutions follow autocast's dtype; keep exactly that behaviour
    kernels = fused.upfirdn_kernels(x)
    if kernels is None:
        return None
    try:
        return kernels.upfirdn2d_triton(x, f.contiguous(), up, down, pad, flip_filter, gain)
    except torch.OutOfMemoryError:
        raise
    except Exception as e:  # noqa: BLE001 - a kernel failure falls back to the plain formula
        fused.disable(f"upfirdn2d kernel raised {type(e).__name__}: {str(e).splitlines()[0][:200]}")
        return None


def upfirdn2d_reference(x: torch.Tensor, f: torch.Tensor | None, up: tuple[int, int], down: tuple[int, int],
                        pad: tuple[int, int, int, int], flip_filter: bool = False, gain: float = 1) -> torch.Tensor:
    """The plain formula behind `upfirdn2d` (arguments normalised): the CPU path and the tests' oracle."""
    upx, upy = up
    downx, downy = down
    x0, x1, y0, y1 = pad
    N, C, H, W = x.shape
    if upx > 1 or upy > 1:
        x = x.reshape(N, C, H, 1, W, 1)
        x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])  # zeros after every sample
        x = x.reshape(N, C, H * upy, W * upx)
    if any(p > 0 for p in (x0, x1, y0, y1)):
        x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    if any(p < 0 for p in (x0, x1, y0, y1)):
        x = x[:, :, max(-y0, 0): x.shape[2] - max(-y1, 0), max(-x0, 0): x.shape[3] - max(-x1, 0)]
    if f is not None:
        if gain != 1:  # (one op less per call for D's many gain-1 filters)
            f = f * (gain ** (f.ndim / 2))
        return _fir(x, f, flip_filter, down=(downx, downy))
    if gain != 1:
        x = x * gain
    if downx > 1 or downy > 1:
        x = x[:, :, ::downy, ::downx]
    return x


def filter2d(x: torch.Tensor, f: torch.Tensor, padding: int | Sequence[int] = 0,
             flip_filter: bool = False, gain: float = 1) -> torch.Tensor:
    """Filter x [N, C, H, W] with f, padded so the output keeps the input size (plus `padding`)."""
    fw, fh = filter_size(f)
    x0, x1, y0, y1 = _padding4(padding)
    p = [x0 + fw // 2, x1 + (fw - 1) // 2, y0 + fh // 2, y1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain)


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2, padding: int | Sequence[int] = 0,
               flip_filter: bool = False, gain: float = 1) -> torch.Tensor:
    """Upsample x [N, C, H, W] -> [N, C, H*up, W*up] with FIR filter f (gain up**2 keeps DC)."""
    upx, upy = _pair(up)
    fw, fh = filter_size(f)
    x0, x1, y0, y1 = _padding4(padding)
    p = [x0 + (fw + upx - 1) // 2, x1 + (fw - upx) // 2, y0 + (fh + upy - 1) // 2, y1 + (fh - upy) // 2]
    return upfirdn2d(x, f, up=(upx, upy), padding=p, flip_filter=flip_filter, gain=gain * upx * upy)


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: int = 2, padding: int | Sequence[int] = 0,
                 flip_filter: bool = False, gain: float = 1) -> torch.Tensor:
    """Downsample x [N, C, H, W] -> [N, C, H/down, W/down] after FIR filtering with f."""
    dx, dy = _pair(down)
    fw, fh = filter_size(f)
    x0, x1, y0, y1 = _padding4(padding)
    p = [x0 + (fw - dx + 1) // 2, x1 + (fw - dx) // 2, y0 + (fh - dy + 1) // 2, y1 + (fh - dy) // 2]
    return upfirdn2d(x, f, down=(dx, dy), padding=p, flip_filter=flip_filter, gain=gain)


def _self_check_upfirdn(mod: ModuleType, device: torch.device, dtype: torch.dtype) -> str | None:
    """upsample2d-, downsample2d- and crop-like calls, 1-D and 2-D filters: values and gradients of two orders."""
    g = torch.Generator().manual_seed(0)
    tol = fused.TOL[dtype]
    cases = [((2, 1), (1, 1), (2, 1, 2, 1), 4.0, True), ((1, 1), (2, 2), (1, 1, 1, 1), 1.0, True),
             ((1, 1), (1, 1), (-1, 2, 1, 0), 1.0, False)]
    for up, down, pad, gain, separable in cases:
        f = setup_filter([1, 3, 3, 1] if separable else [[1, 2], [3, 4], [0, 1]], separable=separable)
        f = f.to(device)
        x0 = torch.randn([2, 3, 5, 4], generator=g).to(device, dtype).to(memory_format=torch.channels_last)
        outs = []
        for fn in (mod.upfirdn2d_triton, upfirdn2d_reference):
            x = x0.clone().requires_grad_()
            y = fn(x, f, up, down, pad, False, gain)
            w = torch.randn(y.shape, generator=torch.Generator().manual_seed(1)).to(device, dtype).requires_grad_()
            (dx,) = torch.autograd.grad((y * w).sum(), [x], create_graph=True)
            (dw,) = torch.autograd.grad(dx.square().sum(), [w])  # the second-order path
            outs.append((y, dx, dw))
        error = fused.compare(("y", "dx", "d(dx)"), *outs, tol)
        if error is not None:
            return error
    return None


fused.register_check("upfirdn2d", _self_check_upfirdn)
