"""The Triton upfirdn2d and its adjoint against the plain formula, on CPU tensors under Triton's interpreter."""

import pytest
import torch

try:
    import triton  # noqa: F401
except ImportError:  # a missing or broken install
    pytest.skip("triton is not installed (`pip install triton`, part of the test extra): the fused-kernel "
                "tests need its interpreter", allow_module_level=True)

from flowergan.ops import fused  # noqa: E402
from flowergan.ops.conv import conv2d_resample  # noqa: E402
from flowergan.ops.upfirdn import (  # noqa: E402
    downsample2d,
    filter2d,
    setup_filter,
    upfirdn2d,
    upfirdn2d_reference,
    upsample2d,
)


@pytest.fixture(scope="module")
def kern(triton_kernels):
    return triton_kernels[1]


def _filters(dtype=torch.float64):
    g = torch.Generator().manual_seed(2)
    return {"1d": setup_filter([1, 3, 3, 1], separable=True).to(dtype),
            "2d": setup_filter([1, 3, 3, 1]).to(dtype),
            "asym": torch.rand(4, 3, generator=g, dtype=torch.float64).to(dtype)}  # the flip matters


# (up, down, padding): G's upsampling (upsample2d, the transposed conv's filter), D's downsampling (before the
# strided conv, and 1x1 skip), plain filtering, crops (negative padding) and mixed factors.
COMBOS = [((2, 2), (1, 1), (2, 1, 2, 1)), ((2, 2), (1, 1), (1, 1, 1, 1)), ((1, 1), (2, 2), (1, 1, 1, 1)),
          ((1, 1), (1, 1), (2, 2, 2, 2)), ((1, 1), (2, 2), (0, 0, 0, 0)), ((2, 2), (2, 2), (-1, 3, 0, 2)),
          ((1, 1), (1, 1), (-1, 1, 2, 0)), ((2, 1), (1, 2), (0, 1, 2, 0))]


@pytest.mark.parametrize("up,down,pad", COMBOS)
@pytest.mark.parametrize("fname", ["1d", "2d", "asym"])
def test_values_match_plain_formula(kern, up, down, pad, fname):
    f = _filters()[fname]
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(2, 3, 7, 6, generator=g, dtype=torch.float64)
    # fp64 (filter too), fp32 channels-last and fp16 with the networks' fp32 filter buffer
    runs = [(x0, f, 1e-12), (x0.float().to(memory_format=torch.channels_last), f.float(), 1e-5),
            (x0.half(), f.float(), 5e-3)]
    for x, fx, tol in runs:
        for flip in (False, True) if fname == "asym" else (False,):  # the others are symmetric
            ours = kern.upfirdn2d_triton(x, fx, up, down, pad, flip, 1.7)
            ref = upfirdn2d_reference(x.double(), fx.double(), up, down, pad, flip, 1.7)
            assert ours.shape == ref.shape and ours.dtype == x.dtype
            assert ours.is_contiguous(memory_format=torch.channels_last) == (x.stride(1) == 1)
            torch.testing.assert_close(ours.double(), ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("up,down,pad,fname", [((2, 2), (1, 1), (2, 1, 2, 1), "1d"),
                                               ((1, 1), (2, 2), (1, 1, 1, 1), "1d"),
                                               ((2, 1), (1, 2), (0, 1, 2, 0), "asym"),
                                               ((1, 1), (1, 1), (-1, 1, 2, 0), "asym")])
def test_adjoint_gradcheck_to_second_order(kern, up, down, pad, fname):
    f = _filters()[fname]
    x = torch.randn(1, 1, 4, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64,
                    requires_grad=True)
    fn = lambda t: kern.upfirdn2d_triton(t, f, up, down, pad, False, 2.0)
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float16, 2e-2)])
def test_dispatched_resampling_and_r1_gradients_match_plain(kern, dtype, tol):
    """upsample2d / downsample2d / filter2d / conv2d_resample as the networks call them (1-D filter buffer,
    channels-last activations), with an R1-like gradient of a gradient, against the plain ops."""
    f = setup_filter([1, 3, 3, 1], separable=True)
    g = torch.Generator().manual_seed(5)
    x0 = torch.randn(2, 4, 8, 8, generator=g).to(dtype).to(memory_format=torch.channels_last)
    w = (torch.randn(5, 4, 3, 3, generator=g) * 0.3).to(dtype).requires_grad_(True)

    def run():
        x = x0.clone().requires_grad_(True)
        outs = [upsample2d(x, f), downsample2d(x, f), filter2d(x, f),
                conv2d_resample(x, w, f=f, up=2, padding=1), conv2d_resample(x, w, f=f, down=2, padding=1)]
        total = sum(o.float().square().mean() for o in outs)
        (dx,) = torch.autograd.grad(total, x, create_graph=True)
        (dw,) = torch.autograd.grad(dx.float().square().sum(), w)
        return [*outs, dx, dw]

    calls = []
    real = kern.upfirdn2d_triton
    kern.upfirdn2d_triton = lambda *a: calls.append(1) or real(*a)
    try:
        ours = run()
    finally:
        kern.upfirdn2d_triton = real
    fused.DEVICE_TYPES.discard("cpu")
    try:
        ref = run()
    finally:
        fused.DEVICE_TYPES.add("cpu")
    assert len(calls) >= 5
    for a, r in zip(ours, ref):
        assert a.shape == r.shape
        scale = r.detach().float().abs().max() + 1
        assert float((a.detach().float() - r.detach().float()).abs().max() / scale) < tol


def test_learned_filter_keeps_the_plain_path(kern):
    f = setup_filter([1, 3, 3, 1]).requires_grad_(True)
    x = torch.randn(1, 2, 6, 6)
    calls = []
    real = kern.upfirdn2d_triton
    kern.upfirdn2d_triton = lambda *a: calls.append(1) or real(*a)
    try:
        y = upfirdn2d(x, f, down=2, padding=1)
    finally:
        kern.upfirdn2d_triton = real
    assert not calls and y.requires_grad


def test_under_autocast_checks_pass_and_fir_keeps_the_plain_dtype(kern):
    """--amp bf16 autocasts: FIR must return what the plain path returns there (autocast's dtype: it keeps the
    plain path), and bias_act's self-check, run by its first call inside autocast, must still pass."""
    from flowergan.ops.bias_act import bias_act

    fused.reset()
    g = torch.Generator().manual_seed(7)
    x, b = torch.randn(2, 3, 8, 8, generator=g), torch.randn(3, generator=g)
    f = setup_filter([1, 3, 3, 1], separable=True)

    def run():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return downsample2d(x, f), bias_act(x, b, act="lrelu", clamp=1.0)

    ours = run()
    assert fused._state["disabled"] is None and fused._state["checked"] == {("bias_act", "cpu", torch.float32)}
    fused.DEVICE_TYPES.discard("cpu")
    try:
        ref = run()
    finally:
        fused.DEVICE_TYPES.add("cpu")
    for a, r in zip(ours, ref):
        assert a.dtype == r.dtype
        torch.testing.assert_close(a, r)
