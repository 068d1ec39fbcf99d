"""Convolution with FIR up/down-sampling, and StyleGAN2's modulated convolution (Karras et al. 2020, eq. 1-3).

`conv2d_resample` follows the official semantics exactly: the filter is applied around the
convolution so that up-sampling is a strided transposed convolution followed by FIR filtering,
and down-sampling is FIR filtering followed by a strided convolution.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from flowergan.ops.upfirdn import filter_size, upfirdn2d


@functools.cache
def _cpu_has_amx() -> bool:
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    try:
        return bool(probe()) if probe is not None else False
    except Exception:  # a probe that fails says nothing: keep autograd's own formula
        return False


def explicit_grad_wanted(x: torch.Tensor, w: torch.Tensor) -> bool:
    """Whether this convolution takes `_ConvExplicitGrad`: a differentiable bf16 convolution on a CPU with AMX."""
    if x.device.type != "cpu" or not torch.is_grad_enabled() or not (x.requires_grad or w.requires_grad):
        return False
    autocast = torch.is_autocast_enabled("cpu") and x.dtype == torch.float32
    dtype = torch.get_autocast_dtype("cpu") if autocast else x.dtype
    return dtype == torch.bfloat16 and _cpu_has_amx()


class _ConvExplicitGrad(torch.autograd.Function):
    """conv2d / conv_transpose2d (bias optional), whose double backward is written as ordinary convolutions.

    Autograd's own double backward of a convolution (used by R1 and path length) computes its weight term as a
    convolution whose kernel is image-sized; in bf16 on CPUs with AMX, oneDNN returns that one wrong (relative
    error ~1 instead of ~0.003, torch 2.13), so R1 trained D's 3x3 convolutions on noise. Here the input gradient
    is the adjoint convolution of the output gradient, whose own derivatives are first-order convolutions. A
    backward that builds no graph (every main phase) is oneDNN's fused one, which is right.
    The plain formula is `F.conv2d` / `F.conv_transpose2d` (the tests compare both, to second order).
    """

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, groups, transpose):
        ctx.save_for_backward(x, w)
        ctx.conf = (stride, padding, groups, transpose)
        if transpose:
            return F.conv_transpose2d(x, w, b, stride=stride, padding=padding, groups=groups)
        return F.conv2d(x, w, b, stride=stride, padding=padding, groups=groups)

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        stride, padding, groups, transpose = ctx.conf
        pads = (padding, padding) if isinstance(padding, int) else tuple(padding)
        if not torch.is_grad_enabled():  # first order only (no create_graph): oneDNN's own fused backward is right
            channels = w.shape[1] * groups if transpose else w.shape[0]
            return *torch.ops.aten.convolution_backward(gy, x, w, [channels], [stride] * 2, list(pads), [1, 1],
                                                        transpose, [0, 0], groups, list(ctx.needs_input_grad[:3])), \
                None, None, None, None
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            if transpose:
                gx = F.conv2d(gy, w, stride=stride, padding=pads, groups=groups)
            else:  # the rows and columns a strided convolution skipped come back as output padding
                extra = tuple(x.shape[2 + i] - ((gy.shape[2 + i] - 1) * stride - 2 * pads[i] + w.shape[2 + i])
                              for i in range(2))
                gx = F.conv_transpose2d(gy, w, stride=stride, padding=pads, output_padding=extra, groups=groups)
        if ctx.needs_input_grad[1]:
            gw = torch.ops.aten.convolution_backward(gy, x, w, None, [stride] * 2, list(pads), [1, 1], transpose,
                                                     [0, 0], groups, [False, True, False])[1]
        if ctx.needs_input_grad[2]:
            gb = gy.sum(dim=(0, 2, 3))
        return gx, gw, gb, None, None, None, None


def _conv(x: torch.Tensor, w: torch.Tensor, stride: int = 1, padding: int | tuple = 0, groups: int = 1,
          transpose: bool = False, flip_weight: bool = True, bias: torch.Tensor | None = None) -> torch.Tensor:
    """conv2d / conv_transpose2d; `flip_weight=False` flips the kernel (true convolution)."""
    kh, kw = w.shape[2:]
    if not flip_weight and (kw > 1 or kh > 1):
        w = w.flip([2, 3])
    if explicit_grad_wanted(x, w):
        dtype = torch.bfloat16
        b = None if bias is None else bias.to(dtype)
        return _ConvExplicitGrad.apply(x.to(dtype), w.to(dtype), b, stride, padding, groups, transpose)
    if transpose:
        return F.conv_transpose2d(x, w, bias, stride=stride, padding=padding, groups=groups)
    return F.conv2d(x, w, bias, stride=stride, padding=padding, groups=groups)


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor | None = None, up: int = 1,
                    down: int = 1, padding: int = 0, groups: int = 1, flip_weight: bool = True,
                    flip_filter: bool = False, bias: torch.Tensor | None = None) -> torch.Tensor:
    """2-D convolution with optional up/down-sampling by a FIR filter.

    Args:
        x: [N, C_in, H, W].
        w: [C_out, C_in // groups, kh, kw].
        f: FIR filter (from setup_filter) or None.
        up, down: integer factors (each 1 or more).
        padding: padding of the (virtual) upsampled input, before filtering.
        groups: convolution groups.
        flip_weight: False flips the kernel (true convolution); True is plain correlation.
        flip_filter: see upfirdn2d.
        bias: optional [C_out] added to the output (inside the convolution where it is the last step).
    Returns:
        [N, C_out, H * up / down, W * up / down] for padding = k // 2.
    """
    assert x.ndim == 4 and w.ndim == 4, "conv2d_resample expects [N, C, H, W] input and a 4-D weight"
    kh, kw = w.shape[2:]
    fw, fh = filter_size(f)
    px0 = px1 = py0 = py1 = padding
    if up > 1:  # widen the padding for the filter taps around the upsampled grid
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2

    # 1x1 kernel: resample on the cheaper side of the convolution.
    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv(x, w, groups=groups, flip_weight=flip_weight, bias=bias)
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return _add_bias(upfirdn2d(x, f, up=up, padding=[px0, px1, py0, py1], gain=up**2, flip_filter=flip_filter),
                         bias)

    if down > 1 and up == 1:  # filter, then strided conv
        x = upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight, bias=bias)

    if up > 1:  # strided transposed conv, then filter
        if groups == 1:
            wt = w.transpose(0, 1)  # [C_in, C_out, kh, kw]
        else:
            O, I = w.shape[:2]
            wt = w.reshape(groups, O // groups, I, kh, kw).transpose(1, 2).reshape(groups * I, O // groups, kh, kw)
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        x = _conv(x, wt, stride=up, padding=(pyt, pxt), groups=groups, transpose=True, flip_weight=not flip_weight)
        x = upfirdn2d(x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up**2,
                      flip_filter=flip_filter)
        if down > 1:
            x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
        return _add_bias(x, bias)

    if up == 1 and down == 1 and px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=(py0, px0), groups=groups, flip_weight=flip_weight, bias=bias)

    # General case.
    x = upfirdn2d(x, f if up > 1 else None, up=up, padding=[px0, px1, py0, py1], gain=up**2,
                  flip_filter=flip_filter)
    x = _conv(x, w, groups=groups, flip_weight=flip_weight)
    if down > 1:
        x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
    return _add_bias(x, bias)


def _add_bias(x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return x if bias is None else x + bias.to(x.dtype).reshape(1, -1, 1, 1)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                     noise: torch.Tensor | None = None, up: int = 1, down: int = 1, padding: int = 0,
                     resample_filter: torch.Tensor | None = None, demodulate: bool = True,
                     flip_weight: bool = True, fused_modconv: bool = True, out_gain: float = 1.0) -> torch.Tensor:
    """Modulated convolution with optional weight demodulation.

    Args:
        x: [N, I, H, W] input activations.
        weight: [O, I, kh, kw] weight (equalized-lr gain already applied by the caller or not needed).
        styles: [N, I] per-sample input-channel scales.
        noise: None or a tensor broadcastable to the output [N, O, H', W'], added after demodulation.
        up, down, padding, resample_filter, flip_weight: see conv2d_resample.
        demodulate: normalise each output channel's weights to unit L2 norm (eq. 3).
        fused_modconv: True -> one grouped conv with per-sample weights (inference);
            False -> scale activations, shared conv, scale outputs (training; cheaper backward).
        out_gain: multiply the convolution's output by this (folded into the demodulation
            coefficients, so it costs nothing); `noise` is added unscaled.
    Returns:
        [N, O, H', W'].
    """
    N = x.shape[0]
    O, I, kh, kw = weight.shape
    assert styles.shape == (N, I), f"styles must be [N={N}, I={I}], got {tuple(styles.shape)}"

    if x.dtype == torch.float16 and demodulate:  # keep fp16 in range: pre-normalise
        weight = weight * (1 / (I * kh * kw) ** 0.5 / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)

    dcoefs = None
    if demodulate:
        # ||w * s||^2 per output channel, as a matmul: sum_i s_i^2 * sum_k w_oik^2 (no [N, O, I, k, k] tensor).
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # [N, O]
        if out_gain != 1:
            dcoefs = dcoefs * out_gain
    elif out_gain != 1:
        dcoefs = torch.full([N, O], float(out_gain), device=x.device, dtype=styles.dtype)

    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(N, I, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding,
                            flip_weight=flip_weight)
        if dcoefs is not None and noise is not None:
            return torch.addcmul(noise.to(x.dtype), x, dcoefs.to(x.dtype).reshape(N, -1, 1, 1))
        if dcoefs is not None:
            return x * dcoefs.to(x.dtype).reshape(N, -1, 1, 1)
        if noise is not None:
            return x + noise.to(x.dtype)
        return x

    w = weight.unsqueeze(0) * styles.reshape(N, 1, I, 1, 1)  # [N, O, I, kh, kw]
    if dcoefs is not None:
        w = w * dcoefs.reshape(N, O, 1, 1, 1)
    H, W = x.shape[2:]
    x = x.reshape(1, N * I, H, W)
    x = conv2d_resample(x, w.reshape(N * O, I, kh, kw).to(x.dtype), f=resample_filter, up=up, down=down,
                        padding=padding, groups=N, flip_weight=flip_weight)
    x = x.reshape(N, O, x.shape[2], x.shape[3])
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x
