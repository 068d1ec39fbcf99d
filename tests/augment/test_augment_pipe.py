"""AugmentPipe as a whole: identity at p=0, shapes/dtypes, gradients, determinism, probabilities, errors."""

from __future__ import annotations

import math

import pytest
import torch

from flowergan.augment import PRESETS, AugmentPipe
from flowergan.augment import pipe as pipe_module


def _images(n=4, c=3, h=8, w=8, dtype=torch.float32, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, h, w, generator=g, dtype=dtype)


@pytest.mark.parametrize("preset", ["bgc", "bgcfnc"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_identity_at_p0_bitwise(preset, dtype):
    x = _images(dtype=dtype)
    x[0, 0, 0, 0] = -0.0  # signed zero must survive too
    pipe = AugmentPipe.from_preset(preset)
    assert pipe(x) is x  # p == 0 short-circuits
    y = pipe._forward(x, None)  # and the full pipeline with every transform gated off is exact too
    assert y.dtype == dtype and y.shape == x.shape
    bits = {torch.bfloat16: torch.int16, torch.float32: torch.int32, torch.float64: torch.int64}[dtype]
    assert torch.equal(y.view(bits), x.view(bits))


def test_p0_shortcut_follows_the_owners_p():
    x = _images(n=8, h=8, w=8)
    assert AugmentPipe.from_preset("bgc")(x) is x
    assert not torch.equal(AugmentPipe.from_preset("bgc", p=1.0)(x), x)
    owned = torch.tensor(0.0, dtype=torch.float64)  # whoever owns p (ADA's controller) moves it in place
    pipe = AugmentPipe.from_preset("bgc", p=lambda: owned)
    assert pipe(x) is x
    owned.fill_(1.0)  # seen at the next call
    assert not torch.equal(pipe(x), x)
    owned.copy_(torch.as_tensor(0.0))
    assert pipe(x) is x
    state = torch.get_rng_state()
    pipe(x)
    assert torch.equal(torch.get_rng_state(), state)  # at p == 0 no random numbers are drawn


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [(4, 4), (8, 8), (12, 10)])
def test_p1_changes_images_and_keeps_shape(channels, size):
    h, w = size
    preset = "bgcfnc" if h == w else "bgc"
    pipe = AugmentPipe.from_preset(preset, p=1.0) if h == w else AugmentPipe.from_preset(preset, p=1.0, rotate90=0)
    for dtype in (torch.float32, torch.float64):
        x = _images(n=6, c=channels, h=h, w=w, dtype=dtype)
        y = pipe(x)
        assert y.shape == x.shape and y.dtype == dtype
        assert torch.isfinite(y).all()
        changed = (y - x).flatten(1).abs().amax(1) > 1e-3
        assert changed.sum() >= 5  # at p=1 a sample escapes all 13+ transforms with negligible probability


def test_p_is_a_read_only_float32_scalar_and_no_state():
    pipe = AugmentPipe.from_preset("bgc", p=0.25)
    assert pipe.p.dtype == torch.float32 and pipe.p.ndim == 0 and float(pipe.p) == 0.25
    assert pipe.state_dict() == {}
    with pytest.raises(RuntimeError, match="[Ii]nplace"):
        pipe.p.copy_(torch.as_tensor(0.75))
    with pytest.raises(AttributeError):
        pipe.p = torch.tensor(0.75)
    with pytest.raises(RuntimeError, match="Unexpected key"):
        pipe.load_state_dict({"p": torch.tensor(0.75)})
    assert float(pipe.p) == 0.25


def test_gradients_reach_the_input():
    pipe = AugmentPipe.from_preset("bgcf", p=1.0)
    x = _images(n=3, h=16, w=16).requires_grad_(True)
    (pipe(x) * torch.randn(3, 3, 16, 16)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert (x.grad.flatten(1).abs().sum(1) > 0).all()


def _seeded(pipe, seed=123):
    def f(x):
        torch.manual_seed(seed)  # same random transforms on every call gradcheck makes
        return pipe(x)
    return f


def test_gradcheck_color_float64():
    pipe = AugmentPipe.from_preset("color", p=1.0)
    x = _images(n=2, h=8, w=8, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(_seeded(pipe), (x,), fast_mode=True)


@pytest.mark.parametrize("preset", ["geom", "blit"])
def test_gradcheck_and_gradgradcheck_spatial_float64(preset):
    # gradgradcheck: R1 regularisation differentiates D's input gradient through the augmentation.
    pipe = AugmentPipe.from_preset(preset, p=1.0)
    x = _images(n=2, c=1, h=8, w=8, dtype=torch.float64).requires_grad_(True)
    f = _seeded(pipe)
    assert (f(x) - x).abs().max() > 1e-2  # really transformed
    assert torch.autograd.gradcheck(f, (x,), fast_mode=True)
    assert torch.autograd.gradgradcheck(f, (x,), fast_mode=True)


def test_deterministic_given_rng_state_and_rng_use_independent_of_positive_p():
    x = _images(n=8, h=8, w=8)
    pipe = AugmentPipe.from_preset("bgcfnc", p=0.6)
    torch.manual_seed(7)
    a = pipe(x)
    after_a = torch.rand(4)
    torch.manual_seed(7)
    b = pipe(x)
    assert torch.equal(a, b)
    torch.manual_seed(8)
    assert not torch.equal(pipe(x), a)
    # the random stream advances by the same amount whatever p > 0 is
    pipe = AugmentPipe.from_preset("bgcfnc", p=1e-6)
    torch.manual_seed(7)
    pipe(x)
    assert torch.equal(torch.rand(4), after_a)


@pytest.mark.parametrize("p", [1.0, 0.5])
def test_xflip_probability(p):
    # x-flip picks flip/no-flip uniformly for the p-selected samples: P(flipped) = p / 2.
    n = 4000
    pipe = AugmentPipe(xflip=1, p=p)
    x = torch.arange(4.0).expand(n, 1, 4, 4).contiguous()  # ramp along x: a flip reverses it
    y = pipe(x)
    flipped = (y[:, 0, 0, :] == x[0, 0, 0].flip(-1)).all(1)
    same = (y[:, 0, 0, :] == x[0, 0, 0]).all(1)
    assert bool((flipped | same).all())
    frac = flipped.double().mean().item()
    sd = math.sqrt(0.25 * (1 - 0.25) / n) if p == 0.5 else math.sqrt(0.25 / n)
    assert abs(frac - p / 2) < 5 * sd


@pytest.mark.parametrize("name,kw", [("brightness", {"brightness": 1}), ("rotate", {"rotate": 1}),
                                     ("xfrac", {"xfrac": 1})])
def test_fraction_of_augmented_samples_is_p(name, kw):
    # continuous parameters are never the neutral value, so P(changed) = p; for rotation the pre- and
    # post-rotations have probability 1 - sqrt(1 - p) each, so P(any rotation) = p.
    n, p = 1500, 0.3
    pipe = AugmentPipe(**kw, p=p)
    x = _images(n=n, c=3, h=4, w=4)
    changed = ((pipe(x) - x).flatten(1).abs().amax(1) > 0).double().mean().item()
    assert abs(changed - p) < 5 * math.sqrt(p * (1 - p) / n), name


def test_presets_and_enabled():
    assert set(PRESETS) >= {"blit", "geom", "color", "bgc", "bgcf", "noise", "cutout"}
    assert AugmentPipe.from_preset("bgc").enabled() == [
        "xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac",
        "brightness", "contrast", "lumaflip", "hue", "saturation"]
    pipe = AugmentPipe.from_preset("bgc", xflip=0, p=0.5)
    assert "xflip" not in pipe.enabled() and float(pipe.p) == 0.5
    # paper default strengths
    assert (pipe.xint_max, pipe.scale_std, pipe.xfrac_std, pipe.brightness_std, pipe.contrast_std,
            pipe.saturation_std) == (0.125, 0.2, 0.125, 0.2, 0.5, 1.0)


def test_clear_errors():
    with pytest.raises(ValueError, match="Unknown augmentation preset"):
        AugmentPipe.from_preset("bgx")
    with pytest.raises(ValueError, match="must be a finite number >= 0"):
        AugmentPipe(xflip=-1)
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        AugmentPipe.from_preset("bgc")(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="1 \\(grey\\) or 3 \\(RGB\\)"):
        AugmentPipe.from_preset("bgc")(torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match="square"):
        AugmentPipe(rotate90=1)(torch.zeros(1, 3, 8, 6))
    with pytest.raises(ValueError, match="debug_percentile"):
        AugmentPipe(xflip=1)(torch.zeros(1, 3, 8, 8), debug_percentile=1.5)
    AugmentPipe.from_preset("bg")(torch.zeros(1, 2, 8, 8))  # no colour: any channel count works


def test_forward_and_backward_make_no_host_transfers(monkeypatch):
    # On CUDA, building tensors from Python data (torch.tensor/as_tensor) or reading values back
    # (.item(), .tolist(), bool(t), float(t)) synchronises with the device. Forbid them all while the
    # default pipeline runs as it does on an accelerator (no skipping of stages no sample draws, which
    # the CPU path decides by reading values back); torch's own C++ code is unaffected by these patches.
    monkeypatch.setattr(pipe_module, "_host_reads_are_free", lambda t: False)
    pipe = AugmentPipe.from_preset("bgcfnc", p=0.7)
    x = _images(n=3, h=8, w=8).requires_grad_(True)
    pipe(x.detach())  # p is read back once after each change (the p == 0 shortcut), then never again

    def forbidden(*args, **kwargs):
        raise AssertionError("host<->device transfer in AugmentPipe")

    for name in ("tensor", "as_tensor"):
        monkeypatch.setattr(torch, name, forbidden)
    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "cpu", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, forbidden)
    y = pipe(x)
    y.sum().backward()
    monkeypatch.undo()
    assert x.grad is not None


def test_runs_in_full_precision_under_autocast():
    pipe = AugmentPipe.from_preset("bgc", p=1.0)
    x = _images(n=2, h=8, w=8)
    torch.manual_seed(3)
    ref = pipe(x)
    torch.manual_seed(3)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        y = pipe(x)
    assert y.dtype == torch.float32 and torch.allclose(y, ref, atol=1e-6)


@pytest.mark.parametrize("preset", ["bgc", "bgcfnc"])
def test_skipping_stages_no_sample_draws_is_exact(monkeypatch, preset):
    # At small p most batches draw no transform of a stage; the CPU path then skips that stage. Outputs and
    # input gradients must equal the always-compute (accelerator) path bitwise, batch by batch.
    pipe = AugmentPipe.from_preset(preset, p=0.05)
    x = _images(n=3, h=8, w=8)
    weight = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(2))

    def run(free: bool, seed: int):
        monkeypatch.setattr(pipe_module, "_host_reads_are_free", lambda t: free)
        xi = x.clone().requires_grad_(True)
        torch.manual_seed(seed)
        y = pipe(xi)
        (y * weight).sum().backward()
        return y.detach(), xi.grad

    changed = 0
    for seed in range(40):
        (y_skip, g_skip), (y_full, g_full) = run(True, seed), run(False, seed)
        assert torch.equal(y_skip, y_full) and torch.equal(g_skip, g_full), seed
        changed += not torch.equal(y_full, x)
    assert 0 < changed < 40  # both kinds of batch occurred
