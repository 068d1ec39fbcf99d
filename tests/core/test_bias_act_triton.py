"""The fused Triton bias_act against the plain formula, run on CPU tensors by Triton's interpreter.

TRITON_INTERPRET=1 is set only while the `triton_kernels` fixture (tests/core/conftest.py) defines the kernels,
and restored at once, so no other test sees it.
"""

import math

import pytest
import torch
import torch.nn.functional as F

try:
    import triton  # noqa: F401
except ImportError:  # a missing or broken install
    pytest.skip("triton is not installed (`pip install triton`, part of the test extra): the fused-kernel "
                "tests need its interpreter", allow_module_level=True)

from flowergan.ops import fused  # noqa: E402
from flowergan.ops.bias_act import bias_act, bias_act_reference, bias_lrelu_  # noqa: E402


@pytest.fixture(scope="module")
def kern(triton_kernels):
    return triton_kernels[0]


def _input(shape, dtype, channels_last=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * 2).to(dtype)
    b = torch.randn(shape[1], generator=g, dtype=torch.float64).to(dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    return x, b


# (shape, channels_last): the mapping / FC layers ([N, C]) and the conv layers ([N, C, H, W], NCHW and NHWC).
SHAPES = [((4, 64), False), ((3, 5, 6, 7), False), ((3, 5, 6, 7), True), ((2, 1, 4, 4), True), ((1, 3, 1, 1), True)]
CASES = [("lrelu", 0.2, math.sqrt(2), None), ("lrelu", 0.2, 1.0, 1.5), ("lrelu", 0.1, 2.3, 256.0),
         ("linear", 0.0, 1.0, None), ("linear", 0.0, 1.0, 0.8), ("linear", 0.0, 0.5, 256.0),
         ("relu", 0.0, math.sqrt(2), 1.0)]


@pytest.mark.parametrize("shape,cl", SHAPES)
@pytest.mark.parametrize("act,alpha,gain,clamp", CASES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_forward_matches_plain_formula(kern, shape, cl, act, alpha, gain, clamp, with_bias):
    for dtype, tol in ((torch.float64, 1e-7), (torch.float32, 1e-6), (torch.float16, 2e-3), (torch.bfloat16, 2e-2)):
        x, b = _input(shape, dtype, cl)
        b = b if with_bias else None
        y = kern.bias_act_triton(x, b, 1, act, alpha, gain, clamp)
        ref = bias_act_reference(x.double(), b.double() if b is not None else None, 1, act, alpha, gain, clamp)
        assert y.dtype == dtype and y.shape == x.shape and y.stride() == x.stride()
        torch.testing.assert_close(y.double(), ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("shape,cl", [((3, 4), False), ((1, 3, 2, 2), False), ((2, 3, 2, 1), True)])
@pytest.mark.parametrize("act,alpha,gain,clamp", [("lrelu", 0.2, math.sqrt(2), None), ("lrelu", 0.2, 1.3, 1.0),
                                                  ("linear", 0.0, 1.0, 0.7), ("relu", 0.0, 1.0, None)])
def test_first_and_second_gradients_gradcheck(kern, shape, cl, act, alpha, gain, clamp):
    x, b = _input(shape, torch.float64, cl, seed=3)
    x.requires_grad_(True)
    b.requires_grad_(True)
    fn = lambda x, b: kern.bias_act_triton(x, b, 1, act, alpha, gain, clamp)
    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))


def _r1_like(bias_act_fn, x, w, b, v, clamp):
    """R1's pattern: the squared input gradient of conv -> bias_act -> weighted sum, differentiated again."""
    x = x.clone().requires_grad_(True)
    y = bias_act_fn(F.conv2d(x, w, padding=1), b, clamp)
    (dx,) = torch.autograd.grad((y * v).sum(), x, create_graph=True)
    penalty = dx.square().sum()
    return [penalty, dx, *torch.autograd.grad(penalty, [w, b, v])]


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.float16, 3e-2)])
@pytest.mark.parametrize("clamp", [None, 2.0])
def test_r1_gradients_match_plain_formula(kern, dtype, tol, clamp):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 4, 6, 6, generator=g).to(dtype).to(memory_format=torch.channels_last)
    w = (torch.randn(5, 4, 3, 3, generator=g) * 0.5).to(dtype).requires_grad_(True)
    b = torch.randn(5, generator=g).to(dtype).requires_grad_(True)
    v = torch.randn(2, 5, 6, 6, generator=g).to(dtype).requires_grad_(True)
    ours = _r1_like(lambda h, b, c: kern.bias_act_triton(h, b, 1, "lrelu", 0.2, math.sqrt(2), c), x, w, b, v, clamp)
    ref = _r1_like(lambda h, b, c: bias_act_reference(h, b, 1, "lrelu", 0.2, math.sqrt(2), c), x, w, b, v, clamp)
    for a, r in zip(ours, ref):
        scale = r.detach().float().abs().max() + 1
        assert float((a.detach().float() - r.detach().float()).abs().max() / scale) < tol


def test_path_length_like_gradients_2d(kern):
    """Path length differentiates the gradient of a mapping-shaped [N, C] layer with respect to its input."""
    g = torch.Generator().manual_seed(6)
    x = torch.randn(4, 8, generator=g, dtype=torch.float64)
    w = torch.randn(8, 8, generator=g, dtype=torch.float64).requires_grad_(True)
    b = torch.randn(8, generator=g, dtype=torch.float64).requires_grad_(True)

    def run(fn):
        xx = x.clone().requires_grad_(True)
        y = fn(xx @ w.t(), b)
        (dx,) = torch.autograd.grad(y.square().sum(), xx, create_graph=True)  # depends on y: a real 2nd order
        return torch.autograd.grad(dx.norm(), [w, b])

    ours = run(lambda h, b: kern.bias_act_triton(h, b, 1, "lrelu", 0.2, math.sqrt(2), None))
    ref = run(lambda h, b: bias_act_reference(h, b, 1, "lrelu", 0.2, math.sqrt(2), None))
    for a, r in zip(ours, ref):
        torch.testing.assert_close(a, r, rtol=1e-9, atol=1e-9)


def test_clamp_blocks_the_gradient_where_it_cuts(kern):
    x = torch.tensor([[-3.0, -0.5, 0.0, 0.5, 3.0]], requires_grad=True)
    y = kern.bias_act_triton(x, None, 1, "lrelu", 0.2, 2.0, 1.0)
    y.sum().backward()
    torch.testing.assert_close(y.detach(), torch.tensor([[-1.0, -0.2, 0.0, 1.0, 1.0]]))
    torch.testing.assert_close(x.grad, torch.tensor([[0.0, 0.4, 0.4, 0.0, 0.0]]))  # 0.5 * 2 == clamp: cut


def test_dispatch_runs_the_kernel_in_place_for_bias_lrelu(kern, monkeypatch):
    calls = []
    real = kern.bias_act_triton
    x, b = _input((2, 3, 4, 4), torch.float32, channels_last=True)
    assert fused.bias_act_kernels(x) is kern  # runs the self-check (which calls the kernel) first
    monkeypatch.setattr(kern, "bias_act_triton", lambda *a, **k: calls.append(k) or real(*a, **k))
    w = torch.randn(3, 3, 1, 1, requires_grad=True)
    h = F.conv2d(x, w)
    ref = bias_act_reference(h.detach(), b, 1, "lrelu", 0.2, 1.0, 0.9)
    y = bias_lrelu_(h, b, clamp=0.9)
    assert y.data_ptr() == h.data_ptr() and calls == [{"inplace": True}]
    torch.testing.assert_close(y.detach(), ref)
    y2 = bias_act(x, b, act="lrelu")
    assert calls[-1] == {"inplace": False} and y2.data_ptr() != x.data_ptr()
    torch.testing.assert_close(y2, bias_act_reference(x, b, 1, "lrelu", 0.2, math.sqrt(2), None))


@pytest.mark.parametrize("fp16_res,rtol", [(0, 1e-4), (2, 2e-2)])
def test_tiny_networks_train_step_matches_plain_path(kern, triton_kernels, monkeypatch, fp16_res, rtol):
    """Every call site of G and D (mapping, synthesis, toRGB, D's convs and epilogue, every FIR resampling)
    with R1 and path length, in fp32 and with fp16 blocks: both kernels give the same losses and gradients as
    the plain ops, and the same parameters receive a gradient."""
    from flowergan.config import ModelConfig
    from flowergan.networks import build_networks, layers

    monkeypatch.setattr(layers, "FP16_DEVICE_TYPES", {"cuda", "cpu"})
    cfg = ModelConfig(resolution=8, z_dim=8, w_dim=8, map_layers=2, channel_base=64, channel_max=8,
                      conv_clamp=256, mbstd_group=2, num_fp16_res=fp16_res)
    G, D = build_networks(cfg, seed=0)

    def step():
        G.zero_grad(set_to_none=True)
        D.zero_grad(set_to_none=True)
        z = torch.randn(2, cfg.z_dim, generator=torch.Generator().manual_seed(1))
        img = G(z, None, noise_mode="const")
        img = img.detach().requires_grad_(True)
        logits = D(img, None)
        (r1_grads,) = torch.autograd.grad(logits.sum(), img, create_graph=True)
        ws = G.mapping(z, None)
        out = G.synthesis(ws, noise_mode="const")
        (pl_grads,) = torch.autograd.grad((out * out.detach()).sum(), ws, create_graph=True)
        loss = logits.sum() + r1_grads.square().sum() + pl_grads.square().sum()
        loss.backward()
        named = [*G.named_parameters(prefix="G"), *D.named_parameters(prefix="D")]
        return [("loss", loss.detach())] + [(n, p.grad) for n, p in named if p.grad is not None]

    calls, fir_calls = [], []
    real, fir = kern.bias_act_triton, triton_kernels[1]
    real_fir = fir.upfirdn2d_triton
    kern.bias_act_triton = lambda *a, **k: calls.append(1) or real(*a, **k)
    fir.upfirdn2d_triton = lambda *a: fir_calls.append(1) or real_fir(*a)
    try:
        ours = step()
    finally:
        kern.bias_act_triton, fir.upfirdn2d_triton = real, real_fir
    fused.DEVICE_TYPES.discard("cpu")
    try:
        ref = step()
    finally:
        fused.DEVICE_TYPES.add("cpu")
    assert len(calls) > 10 and len(fir_calls) > 5 and fused._state["disabled"] is None
    assert [n for n, _ in ours] == [n for n, _ in ref]
    for (name, a), (_, r) in zip(ours, ref):
        torch.testing.assert_close(a, r, rtol=rtol, atol=rtol * float(r.abs().max()), msg=name)
