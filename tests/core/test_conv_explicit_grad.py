"""The bf16 CPU convolution whose backward is written as ordinary convolutions (`ops.conv._ConvExplicitGrad`).

On CPUs with AMX, oneDNN's bf16 convolution with an image-sized kernel (the weight term of autograd's own
double backward of a convolution) is wrong, so R1 and path length trained some weights on noise. These tests
force the explicit path on any CPU and check it against the plain formula: values and first and second
derivatives in float64 (a first-order backward takes oneDNN's fused kernel, whose result is right; only a backward
that builds a graph takes the explicit formula), and an R1-style gradient in bf16 against fp32."""

import pytest
import torch
import torch.nn.functional as F

from flowergan.ops import conv as conv_ops

CASES = [  # (stride, padding, groups, transpose, in_hw, kernel)
    (1, 1, 1, False, 6, 3),
    (2, 0, 1, False, 7, 3),
    (1, 0, 2, False, 5, 1),
    (2, 1, 1, True, 4, 3),
    (2, 0, 2, True, 3, 3),
]


def _plain(x, w, stride, padding, groups, transpose, b=None):
    fn = F.conv_transpose2d if transpose else F.conv2d
    return fn(x, w, b, stride=stride, padding=padding, groups=groups)


def _weights(g, transpose, groups, k, requires_grad=True):
    """(w, b) of a convolution from 4 input channels to 4 (transposed) or 6 outputs."""
    out = 4 if transpose else 6
    wshape = (4, out // groups, k, k) if transpose else (out, 4 // groups, k, k)
    w = torch.randn(*wshape, dtype=torch.float64, generator=g, requires_grad=requires_grad)
    return w, torch.randn(out, dtype=torch.float64, generator=g, requires_grad=requires_grad)


@pytest.mark.parametrize("stride,padding,groups,transpose,hw,k", CASES)
def test_explicit_grad_matches_autograd_to_second_order(stride, padding, groups, transpose, hw, k):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, hw, hw, dtype=torch.float64, generator=g, requires_grad=True)
    w, b = _weights(g, transpose, groups, k)

    def explicit(x, w, b):
        return conv_ops._ConvExplicitGrad.apply(x, w, b, stride, padding, groups, transpose)

    torch.testing.assert_close(explicit(x, w, b), _plain(x, w, stride, padding, groups, transpose, b))
    assert torch.autograd.gradcheck(explicit, (x, w, b))
    assert torch.autograd.gradgradcheck(explicit, (x, w, b))


@pytest.mark.parametrize("stride,padding,groups,transpose,hw,k", CASES)
@pytest.mark.parametrize("wanted", ["x", "w", "xwb", "b"])
def test_first_order_backward_takes_the_fused_kernel_and_matches(stride, padding, groups, transpose, hw, k, wanted,
                                                                 monkeypatch):
    """Without create_graph the backward is one aten.convolution_backward call (oneDNN's fused kernel, right in bf16
    too); the gradients asked for match autograd's on the plain formula."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, hw, hw, dtype=torch.float64, generator=g, requires_grad="x" in wanted)
    w, b = _weights(g, transpose, groups, k, requires_grad=False)
    w.requires_grad_("w" in wanted)
    b.requires_grad_("b" in wanted)
    inputs = [t for t in (x, w, b) if t.requires_grad]
    y = _plain(x, w, stride, padding, groups, transpose, b)
    gy = torch.randn(y.shape, dtype=torch.float64, generator=g)
    ref = torch.autograd.grad(y, inputs, gy)
    calls = []
    fused = torch.ops.aten.convolution_backward
    monkeypatch.setattr(torch.ops.aten, "convolution_backward", lambda *a: calls.append(a[-1]) or fused(*a))
    y = conv_ops._ConvExplicitGrad.apply(x, w, b, stride, padding, groups, transpose)
    got = torch.autograd.grad(y, inputs, gy)
    assert calls == [["x" in wanted, "w" in wanted, "b" in wanted]]
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b)


def _r1_weight_grad(x, w, dtype, explicit):
    """d/dw of |d sum(lrelu(conv(x, w))^2) / dx|^2: the shape of R1 through one 3x3 layer of D."""
    xx = x.to(dtype).requires_grad_()
    ww = w.to(dtype).requires_grad_()
    y = conv_ops._ConvExplicitGrad.apply(xx, ww, None, 1, 1, 1, False) if explicit else F.conv2d(xx, ww, padding=1)
    (gx,) = torch.autograd.grad(F.leaky_relu(y, 0.2).float().square().sum(), xx, create_graph=True)
    (gw,) = torch.autograd.grad(gx.float().square().sum(), ww)
    return gw.float()


def test_r1_through_a_bf16_convolution_is_accurate():
    """bf16 rounding alone moves this gradient by ~0.3%; the broken oneDNN kernel moved it by ~60%."""
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(8, 16, 16, 16, generator=g), torch.randn(16, 16, 3, 3, generator=g)
    ref = _r1_weight_grad(x, w, torch.float32, explicit=False)
    got = _r1_weight_grad(x, w, torch.bfloat16, explicit=True)
    assert ((got - ref).norm() / ref.norm()).item() < 0.03


def test_dispatch_only_for_differentiable_bf16_on_amx(monkeypatch):
    x = torch.randn(1, 2, 4, 4, requires_grad=True)
    w = torch.randn(2, 2, 3, 3)
    monkeypatch.setattr(conv_ops, "_cpu_has_amx", lambda: True)
    assert not conv_ops.explicit_grad_wanted(x, w)  # fp32: autograd's formula is right
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert conv_ops.explicit_grad_wanted(x, w)
        with torch.no_grad():
            assert not conv_ops.explicit_grad_wanted(x, w)
    assert conv_ops.explicit_grad_wanted(x.detach().bfloat16().requires_grad_(), w.bfloat16())
    monkeypatch.setattr(conv_ops, "_cpu_has_amx", lambda: False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not conv_ops.explicit_grad_wanted(x, w)


def test_conv2d_resample_takes_the_explicit_path_under_bf16(monkeypatch):
    """Through the public op (bias, weight flip, strided and transposed cases), bf16 autocast on an AMX CPU gives
    the values of the native path (to bf16 rounding: the bias is added after the rounded convolution), and the
    explicit Function is really used."""
    monkeypatch.setattr(conv_ops, "_cpu_has_amx", lambda: True)
    calls = []
    real_apply = conv_ops._ConvExplicitGrad.apply
    monkeypatch.setattr(conv_ops._ConvExplicitGrad, "apply", lambda *a: calls.append(1) or real_apply(*a))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 8, 8, generator=g, requires_grad=True)
    w, b = torch.randn(4, 4, 3, 3, generator=g), torch.randn(4, generator=g)
    from flowergan.ops.upfirdn import setup_filter
    f = setup_filter([1, 3, 3, 1])
    for kw in (dict(padding=1), dict(down=2, f=f, padding=1), dict(up=2, f=f, padding=1)):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = conv_ops.conv2d_resample(x, w, bias=b, flip_weight=False, **kw)
            with torch.no_grad():
                ref = conv_ops.conv2d_resample(x, w, bias=b, flip_weight=False, **kw)
        torch.testing.assert_close(got.float(), ref.float(), rtol=2**-7, atol=2**-7 * ref.abs().max().item())
    assert len(calls) == 3
