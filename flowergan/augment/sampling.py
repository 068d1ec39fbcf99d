"""Low-level resampling helpers for the augmentation pipeline: reflect indexing/padding, twice-differentiable
grid_sample.

`grid_sample_bilinear` is `torch.nn.functional.grid_sample` (bilinear, zero padding, align_corners=False)
wrapped so that its gradient with respect to the *image* is itself differentiable on every torch
version (R1 regularisation differentiates D's input gradient through the augmentation). The sampling
grid is treated as a constant: it never receives a gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_BILINEAR = 0  # aten enum values for grid_sampler_2d: interpolation_mode, padding_mode
_ZEROS = 0


def reflect_index(i: torch.Tensor, n: int) -> torch.Tensor:
    """Fold integer positions `i` (any shape) into [0, n) by mirroring about the first/last sample.

    Mirror without repeating the edge sample (numpy/torch 'reflect'): for n = 4 the positions
    ..., -2, -1, 0, 1, 2, 3, 4, 5, ... map to ..., 2, 1, 0, 1, 2, 3, 2, 1, ... (period 2 * (n - 1)).
    """
    if n < 2:
        raise ValueError(f"reflect_index needs at least 2 samples along an axis to mirror, got n={n}")
    period = 2 * (n - 1)
    m = torch.remainder(i, period)
    return torch.where(m >= n, period - m, m)


def reflect_pad(x: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
    """Reflect-pad x [N, C, H, W] by pad = (left, right, top, bottom) pixels, any amount.

    Same values as `F.pad(mode="reflect")` (used when every pad is smaller than the axis); larger pads
    keep mirroring back and forth (via `reflect_index`) instead of failing.
    """
    x0, x1, y0, y1 = (int(v) for v in pad)
    H, W = x.shape[-2:]
    if min(x0, x1, y0, y1) < 0:
        raise ValueError(f"reflect_pad expects non-negative padding, got {pad}")
    if max(x0, x1) < W and max(y0, y1) < H:
        return F.pad(x, [x0, x1, y0, y1], mode="reflect") if max(x0, x1, y0, y1) > 0 else x
    ix = reflect_index(torch.arange(-x0, W + x1, device=x.device), W)
    iy = reflect_index(torch.arange(-y0, H + y1, device=x.device), H)
    return x.index_select(-1, ix).index_select(-2, iy)


class _Sample(torch.autograd.Function):
    """y = grid_sample(x, grid); linear in x, so its backward is the adjoint sampling (`_Adjoint`)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(grid)
        ctx.in_shape = x.shape
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor):  # type: ignore[override]
        (grid,) = ctx.saved_tensors
        grad_x = _Adjoint.apply(grad_y, grid, ctx.in_shape) if ctx.needs_input_grad[0] else None
        return grad_x, None


class _Adjoint(torch.autograd.Function):
    """g_x = A^T g_y for the sampling operator A; its own backward is A again (twice differentiable)."""

    @staticmethod
    def forward(ctx, grad_y: torch.Tensor, grid: torch.Tensor, in_shape: torch.Size) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(grid)
        # The kernel reads `input` only for the grid gradient, which is masked off; a broadcast zero
        # of the right shape avoids keeping the (large) upsampled image alive for the backward pass.
        dummy = grad_y.new_zeros(()).expand(in_shape)
        grad_x, _ = torch.ops.aten.grid_sampler_2d_backward(
            grad_y.contiguous(), dummy, grid, _BILINEAR, _ZEROS, False, [True, False])
        return grad_x

    @staticmethod
    def backward(ctx, grad_grad_x: torch.Tensor):  # type: ignore[override]
        (grid,) = ctx.saved_tensors
        grad_grad_y = _Sample.apply(grad_grad_x, grid) if ctx.needs_input_grad[0] else None
        return grad_grad_y, None, None


def grid_sample_bilinear(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Bilinear sampling of x [N, C, Hi, Wi] at grid [N, Ho, Wo, 2] (normalised xy, align_corners=False).

    Points outside the image read zeros. Returns [N, C, Ho, Wo]. Differentiable to any order in x;
    the grid gets no gradient.
    """
    if grid.requires_grad:
        raise ValueError("grid_sample_bilinear: the sampling grid must not require grad (it is a constant)")
    return _Sample.apply(x, grid)
