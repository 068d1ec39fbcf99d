"""Ops against independent references: explicit convolutions, constants, gradcheck."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from flowergan.ops import (
    bias_act,
    conv2d_resample,
    downsample2d,
    filter2d,
    modulated_conv2d,
    setup_filter,
    upfirdn2d,
    upsample2d,
)


def naive_upfirdn(x, f, up, down, pad):
    """Independent numpy reference: zero-insert, pad, full 2-D convolution (flipped kernel), decimate."""
    x = x.numpy()
    N, C, H, W = x.shape
    u = np.zeros((N, C, H * up, W * up), x.dtype)
    u[:, :, ::up, ::up] = x
    x0, x1, y0, y1 = pad
    p = np.pad(u, ((0, 0), (0, 0), (max(y0, 0), max(y1, 0)), (max(x0, 0), max(x1, 0))))
    p = p[:, :, max(-y0, 0): p.shape[2] - max(-y1, 0), max(-x0, 0): p.shape[3] - max(-x1, 0)]
    fh, fw = f.shape
    kf = f[::-1, ::-1]
    oh, ow = p.shape[2] - fh + 1, p.shape[3] - fw + 1
    out = np.zeros((N, C, oh, ow), x.dtype)
    for i in range(fh):
        for j in range(fw):
            out += kf[i, j] * p[:, :, i: i + oh, j: j + ow]
    return torch.from_numpy(out[:, :, ::down, ::down].copy())


@pytest.mark.parametrize("up,down,pad", [(1, 1, (1, 2, 0, 1)), (2, 1, (2, 1, 2, 1)), (1, 2, (1, 1, 1, 1)),
                                         (2, 2, (-1, 3, 0, 2)), (1, 1, (-1, -1, 2, 0))])
def test_upfirdn_matches_explicit_convolution(up, down, pad):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 7, 6, generator=g, dtype=torch.float64)
    f = torch.rand(4, 3, generator=g, dtype=torch.float64)  # asymmetric, so the flip matters
    ours = upfirdn2d(x, f, up=up, down=down, padding=pad)
    ref = naive_upfirdn(x, f.numpy(), up, down, pad)
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)


def test_flip_filter_is_correlation():
    x = torch.randn(1, 1, 6, 6, dtype=torch.float64)
    f = torch.rand(3, 3, dtype=torch.float64)
    ours = upfirdn2d(x, f, flip_filter=True)
    torch.testing.assert_close(ours, F.conv2d(x, f[None, None]))


def test_separable_equals_2d_filter():
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    f1, f2 = setup_filter([1, 3, 3, 1], separable=True).double(), setup_filter([1, 3, 3, 1]).double()
    assert f2.shape == (4, 4) and abs(float(f2.sum()) - 1) < 1e-12
    for fn in (upsample2d, downsample2d, filter2d):
        torch.testing.assert_close(fn(x, f1), fn(x, f2))


def test_resampling_keeps_constants_and_shapes():
    f = setup_filter()
    x = torch.full((1, 2, 8, 8), 3.0)
    up = upsample2d(x, f)
    down = downsample2d(x, f)
    assert up.shape == (1, 2, 16, 16) and down.shape == (1, 2, 4, 4)
    # away from the zero-padded border the DC level is preserved exactly
    torch.testing.assert_close(up[:, :, 2:-2, 2:-2], torch.full_like(up[:, :, 2:-2, 2:-2], 3.0))
    torch.testing.assert_close(down[:, :, 1:-1, 1:-1], torch.full_like(down[:, :, 1:-1, 1:-1], 3.0))


def test_upfirdn_gradcheck():
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    f = setup_filter([1, 3, 3, 1]).double()
    assert torch.autograd.gradcheck(lambda t: upfirdn2d(t, f, up=2, down=1, padding=(2, 1, 2, 1)), (x,))
    assert torch.autograd.gradgradcheck(lambda t: downsample2d(t, f), (x,))


@pytest.mark.parametrize("separable", [True, False])
@pytest.mark.parametrize("size", [4, 5])  # odd sizes: the adjoint must restore the dropped last row/column
def test_fir_gradients_of_every_order(separable, size):
    f = setup_filter([1, 3, 3, 1], separable=separable).double()
    x = torch.randn(1, 2, size, size + 1, dtype=torch.float64, requires_grad=True)
    for op in (lambda t: upfirdn2d(t, f, down=2, padding=1), lambda t: upsample2d(t, f)):
        assert torch.autograd.gradcheck(op, (x,))
        assert torch.autograd.gradgradcheck(op, (x,))


def _conv_calls(fn) -> int:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return sum(e.count for e in prof.key_averages() if e.key in ("aten::convolution", "aten::_convolution"))


def test_fir_double_backward_cost_does_not_grow_with_channels():
    """R1 differentiates a gradient through every FIR; that must stay a few convolutions per filter, not the
    one-per-channel loop of autograd's generic grouped-convolution double backward."""
    f = setup_filter([1, 3, 3, 1], separable=True)

    def r1_like(channels):
        x = torch.randn(2, channels, 8, 8, requires_grad=True)
        w = torch.randn(channels, requires_grad=True)
        (g,) = torch.autograd.grad((downsample2d(x, f) * w[:, None, None]).square().sum(), x, create_graph=True)
        return lambda: g.square().sum().backward()

    assert _conv_calls(r1_like(4)) == _conv_calls(r1_like(64)) <= 8


def test_fir_under_bf16_autocast():
    f = setup_filter([1, 3, 3, 1], separable=True)
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = downsample2d(x, f)
    (g,) = torch.autograd.grad(y.float().square().sum(), x, create_graph=True)
    g.sum().backward()
    assert g.dtype == torch.float32 and x.grad.dtype == torch.float32
    torch.testing.assert_close(y.float(), downsample2d(x, f), atol=0.05, rtol=0.05)


def test_fir_bf16_gradient_of_decimation_matches_fp64():
    """The adjoint of a decimating FIR in bf16 (computed in fp32 on the CPU, rounded once) is the exact
    adjoint: checked against the fp64 vector-Jacobian product, to within the two bf16 roundings of the
    separable passes (each at most 2^-8 of the pass's magnitude)."""
    f = setup_filter([1, 3, 3, 1], separable=True)
    x = torch.randn(2, 8, 16, 16, generator=torch.Generator().manual_seed(0))
    g = torch.randn(2, 8, 8, 8, generator=torch.Generator().manual_seed(1))
    xb = x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    (gx,) = torch.autograd.grad(downsample2d(xb, f), xb, g.to(torch.bfloat16))
    x64 = x.double().requires_grad_(True)
    (ref,) = torch.autograd.grad(downsample2d(x64, f.double()), x64, g.to(torch.bfloat16).double())
    assert gx.dtype == torch.bfloat16 and gx.shape == x.shape
    torch.testing.assert_close(gx.double(), ref, atol=2 * 2**-8 * float(ref.abs().max()), rtol=2**-8)


def test_bias_act_closed_form():
    x = torch.tensor([[-2.0, 0.5], [1.0, -0.1]])
    b = torch.tensor([0.5, -1.0])
    y = bias_act(x, b, act="lrelu")
    pre = x + b
    expect = torch.where(pre >= 0, pre, 0.2 * pre) * math.sqrt(2)
    torch.testing.assert_close(y, expect)
    y = bias_act(x, b, act="lrelu", gain=1.0, clamp=0.3)
    assert float(y.abs().max()) <= 0.3 + 1e-7
    torch.testing.assert_close(bias_act(x, None, act="linear"), x)
    with pytest.raises(ValueError, match="unknown activation"):
        bias_act(x, act="nope")


def test_bias_act_gradcheck():
    x = torch.randn(3, 4, 2, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, c: bias_act(a, c, act="lrelu", clamp=1.0), (x, b))


@pytest.mark.parametrize("up,down", [(1, 1), (2, 1), (1, 2)])
def test_conv2d_resample_equals_conv_then_resample(up, down):
    """Up: conv on the FIR-upsampled input == transposed-conv path; down: FIR-filter then strided conv."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 8, 8, generator=g, dtype=torch.float64)
    w = torch.randn(5, 3, 3, 3, generator=g, dtype=torch.float64)
    f = setup_filter().double()
    y = conv2d_resample(x, w, f=f, up=up, down=down, padding=1)
    if up == 2:
        ref = F.conv2d(upsample2d(x, f), w, padding=1)  # same linear map, computed the slow way
    elif down == 2:
        ref = F.conv2d(x, w, padding=1)
        ref = downsample2d(ref, f)
    else:
        ref = F.conv2d(x, w, padding=1)
    assert y.shape == ref.shape
    if up == 2:
        # identical away from the border, where zero padding enters at different stages
        torch.testing.assert_close(y[:, :, 3:-3, 3:-3], ref[:, :, 3:-3, 3:-3])
    elif down == 2:
        # filtering commutes with the convolution except at the border
        torch.testing.assert_close(y[:, :, 1:-1, 1:-1], ref[:, :, 1:-1, 1:-1])
    else:
        torch.testing.assert_close(y, ref)


@pytest.mark.parametrize("up", [1, 2])
def test_modulated_conv_fused_equals_unfused_and_reference(up):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 4, 6, 6, generator=g, dtype=torch.float64)
    w = torch.randn(5, 4, 3, 3, generator=g, dtype=torch.float64)
    s = torch.rand(3, 4, generator=g, dtype=torch.float64) + 0.5
    f = setup_filter(separable=True).double()
    fused = modulated_conv2d(x, w, s, up=up, padding=1, resample_filter=f, fused_modconv=True)
    unfused = modulated_conv2d(x, w, s, up=up, padding=1, resample_filter=f, fused_modconv=False)
    torch.testing.assert_close(fused, unfused)
    # per-sample reference from the paper's equations 1-3
    for n in range(3):
        wn = w * s[n].reshape(1, 4, 1, 1)
        wn = wn / wn.square().sum(dim=[1, 2, 3], keepdim=True).add(1e-8).sqrt()
        ref = conv2d_resample(x[n:n + 1], wn, f=f, up=up, padding=1)
        torch.testing.assert_close(fused[n:n + 1], ref)


def test_modulated_conv_gradcheck():
    x = torch.randn(2, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    s = (torch.rand(2, 2, dtype=torch.float64) + 0.5).requires_grad_(True)
    for fused in (True, False):
        assert torch.autograd.gradcheck(
            lambda a, b, c, fused=fused: modulated_conv2d(a, b, c, padding=1, fused_modconv=fused), (x, w, s))


def test_layers_double_backward_with_folded_gains():
    """R1 and path-length need gradients of gradients through the in-place, gain-folded layers."""
    from flowergan.networks.generator import SynthesisLayer
    from flowergan.networks.layers import Conv2dLayer

    torch.manual_seed(0)
    conv = Conv2dLayer(2, 3, 3, activation="lrelu", down=2).double()
    conv.bias.data.normal_()
    x = torch.randn(2, 2, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda t: conv(t, gain=0.7), (x,))
    syn = SynthesisLayer(2, 3, w_dim=4, resolution=8, up=2).double()
    syn.bias.data.normal_()
    syn.noise_strength.data.fill_(0.3)
    w = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    x4 = torch.randn(2, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    for fused in (False, True):
        assert torch.autograd.gradgradcheck(
            lambda a, b, fused=fused: syn(a, b, noise_mode="const", fused_modconv=fused, gain=0.5), (x4, w))


def test_folded_gain_layers_match_unfolded_formula():
    """Conv2dLayer(lrelu) == bias_act(conv(x, w * wg), b, lrelu, gain) computed the textbook way."""
    from flowergan.networks.layers import Conv2dLayer

    conv = Conv2dLayer(3, 4, 3, activation="lrelu", down=2).double()
    conv.bias.data.normal_()
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    ref = conv2d_resample(x, conv.weight * conv.weight_gain, f=conv.resample_filter, down=2, padding=1)
    ref = bias_act(ref, conv.bias, act="lrelu", gain=math.sqrt(2) * 0.5)
    torch.testing.assert_close(conv(x, gain=0.5), ref)
