"""Each ADA transform, forced with debug_percentile, against an independent expectation (closed forms, moments)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation
from scipy.stats import norm

from flowergan.augment import AugmentPipe
from flowergan.augment import matrices as M
from flowergan.augment.pipe import geometric_filter, resample


def _marked(h=8, w=8, c=3, at=((1, 6),)):
    x = torch.zeros(1, c, h, w)
    for r, col in at:
        x[0, :, r, col] = 1.0
    return x


def _peak(y):
    idx = int(y[0, 0].flatten().argmax())
    return divmod(idx, y.shape[-1])


def _rgb(n=2, h=6, w=6, seed=3):
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# --------------------------------------------------------------------------------------- pixel blitting
def test_xflip_moves_mark_to_mirrored_column():
    x = _marked(at=((2, 1),))
    y = AugmentPipe(xflip=1)(x, debug_percentile=0.75)  # quantile >= 0.5 -> flip
    assert torch.equal(y, _marked(at=((2, 8 - 1 - 1),)))
    assert torch.equal(AugmentPipe(xflip=1)(x, debug_percentile=0.25), x)


@pytest.mark.parametrize("k,expected", [(0, (0, 7)), (1, (0, 0)), (2, (7, 0)), (3, (7, 7))])
def test_rotate90_moves_top_right_corner(k, expected):
    # k quarter turns counter-clockwise on screen (y points down): top-right -> top-left -> bottom-left -> ...
    x = _marked(at=((0, 7),))
    y = AugmentPipe(rotate90=1)(x, debug_percentile=(k + 0.5) / 4)
    assert torch.equal(y, _marked(at=(expected,)))


def test_rotate90_is_an_exact_permutation_of_a_random_image():
    x = _rgb(h=5, w=5)
    y = AugmentPipe(rotate90=1)(x, debug_percentile=0.3)  # k = 1
    assert torch.equal(y, torch.stack([x[:, :, :, 4 - i] for i in range(5)], dim=2))  # out[r, c] = in[c, W-1-r]


@pytest.mark.parametrize("q,shift", [(0.9, 3), (0.1, -3)])
def test_integer_translation_moves_mark_and_reflects_at_border(q, shift):
    # t = (2q - 1) * 0.125 * 32 = +-3.2 -> rounded to +-3 pixels in x and y; out[i] = in[reflect(i - t)],
    # reflect = mirror about the edge pixel without repeating it ("reflect" padding of numpy/torch).
    x = _marked(h=32, w=32, at=((16, 10),))
    y = AugmentPipe(xint=1)(x, debug_percentile=q)
    assert torch.equal(y, _marked(h=32, w=32, at=((16 + shift, 10 + shift),)))
    # a mark one pixel from the edge is mirrored back in: it shows up twice
    x = _marked(h=32, w=32, at=((1, 1),)) if shift > 0 else _marked(h=32, w=32, at=((30, 30),))
    y = AugmentPipe(xint=1)(x, debug_percentile=q)
    if shift > 0:  # content moves right/down by 3; output rows/cols 0..2 read inputs 3, 2, 1
        want = [(r, c) for r in (4, 2) for c in (4, 2)]
    else:
        want = [(r, c) for r in (27, 29) for c in (27, 29)]
    assert torch.equal(y, _marked(h=32, w=32, at=want))


# --------------------------------------------------------------------------------------- colour
def test_brightness_adds_the_same_constant_everywhere():
    q = 0.8
    x = _rgb()
    d = AugmentPipe(brightness=1)(x, debug_percentile=q) - x
    assert torch.allclose(d, torch.full_like(d, 0.2 * norm.ppf(q)), atol=1e-6)


def test_contrast_scales_about_zero():
    q = 0.3
    x = _rgb()
    y = AugmentPipe(contrast=1)(x, debug_percentile=q)
    assert torch.allclose(y, x * 2 ** (0.5 * norm.ppf(q)), atol=1e-6)


def test_luma_flip_is_householder_about_luma_axis():
    x = _rgb()
    v = np.array([1, 1, 1]) / math.sqrt(3)
    house = torch.tensor(np.eye(3) - 2 * np.outer(v, v), dtype=torch.float32)
    y = AugmentPipe(lumaflip=1)(x, debug_percentile=0.75)
    assert torch.allclose(y, torch.einsum("ij,njhw->nihw", house, x), atol=1e-6)
    assert torch.allclose(y, x - 2 * x.mean(dim=1, keepdim=True), atol=1e-6)
    grey = torch.full((1, 3, 4, 4), 0.4)
    assert torch.allclose(AugmentPipe(lumaflip=1)(grey, debug_percentile=0.75), -grey, atol=1e-6)


@pytest.mark.parametrize("q", [0.3, 0.9])
def test_hue_rotation_matches_rodrigues_and_keeps_luma(q):
    x = _rgb()
    theta = (2 * q - 1) * math.pi
    rot = torch.tensor(Rotation.from_rotvec(theta * np.ones(3) / math.sqrt(3)).as_matrix(), dtype=torch.float32)
    y = AugmentPipe(hue=1)(x, debug_percentile=q)
    assert torch.allclose(y, torch.einsum("ij,njhw->nihw", rot, x), atol=1e-5)
    assert torch.allclose(y.mean(dim=1), x.mean(dim=1), atol=1e-6)  # luma kept
    chroma = lambda t: (t - t.mean(dim=1, keepdim=True)).norm(dim=1)
    assert torch.allclose(chroma(y), chroma(x), atol=1e-5)  # chroma magnitude kept


def test_saturation_scales_chroma_and_zero_gives_grey():
    q = 0.8
    x = _rgb()
    s = 2 ** (1.0 * norm.ppf(q))
    mean = x.mean(dim=1, keepdim=True)
    y = AugmentPipe(saturation=1)(x, debug_percentile=q)
    assert torch.allclose(y, mean + s * (x - mean), atol=1e-5)
    m0 = M.saturate(torch.zeros(1))[0]
    grey = m0[:3, :3] @ torch.tensor([0.9, -0.3, 0.0])
    assert torch.allclose(grey, torch.full((3,), 0.2), atol=1e-6)
    assert torch.equal(m0[3], torch.tensor([0.0, 0.0, 0.0, 1.0]))  # stays a homogeneous matrix


def test_grayscale_uses_the_rgb_matrix_on_grey_pixels():
    g = torch.rand(2, 1, 5, 5)
    b = 0.2 * norm.ppf(0.8)
    assert torch.allclose(AugmentPipe(brightness=1)(g, debug_percentile=0.8), g + b, atol=1e-6)
    assert torch.allclose(AugmentPipe(lumaflip=1)(g, debug_percentile=0.8), -g, atol=1e-6)
    # hue and saturation leave grey pixels unchanged
    assert torch.allclose(AugmentPipe(hue=1, saturation=1)(g, debug_percentile=0.8), g, atol=1e-6)


# --------------------------------------------------------------------------------------- geometry
def _blob(size=48, sx=3.0, sy=3.0, cx=0.0, cy=0.0):
    c = (size - 1) / 2
    yy, xx = torch.meshgrid(torch.arange(size) - c, torch.arange(size) - c, indexing="ij")
    return torch.exp(-((xx - cx) ** 2) / (2 * sx ** 2) - ((yy - cy) ** 2) / (2 * sy ** 2))[None, None].double()


def _moments(img):
    w = img[0, 0].clamp(min=0)
    size = w.shape[-1]
    c = (size - 1) / 2
    yy, xx = torch.meshgrid(torch.arange(size) - c, torch.arange(size) - c, indexing="ij")
    w = w / w.sum()
    mx, my = (w * xx).sum(), (w * yy).sum()
    cov = torch.tensor([[(w * (xx - mx) ** 2).sum(), (w * (xx - mx) * (yy - my)).sum()],
                        [(w * (xx - mx) * (yy - my)).sum(), (w * (yy - my) ** 2).sum()]])
    return float(mx), float(my), cov


def test_isotropic_scaling_changes_blob_radius_by_the_factor():
    q = 0.84
    s = 2 ** (0.2 * norm.ppf(q))
    y = AugmentPipe(scale=1)(_blob(), debug_percentile=q)
    _, _, cov = _moments(y)
    assert math.sqrt(cov[0, 0]) == pytest.approx(3 * s, rel=0.01)
    assert math.sqrt(cov[1, 1]) == pytest.approx(3 * s, rel=0.01)


def test_anisotropic_scaling_stretches_x_and_squeezes_y():
    q = 0.2
    s = 2 ** (0.2 * norm.ppf(q))
    _, _, cov = _moments(AugmentPipe(aniso=1)(_blob(), debug_percentile=q))
    assert math.sqrt(cov[0, 0]) == pytest.approx(3 * s, rel=0.01)
    assert math.sqrt(cov[1, 1]) == pytest.approx(3 / s, rel=0.01)


@pytest.mark.parametrize("q", [0.55, 0.7])
def test_rotation_turns_the_covariance_of_an_elongated_blob(q):
    theta = (2 * q - 1) * math.pi  # forced pre-rotation; post-rotation is 0 in debug mode
    _, _, cov = _moments(AugmentPipe(rotate=1)(_blob(sx=6, sy=2), debug_percentile=q))
    r = torch.tensor([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]], dtype=cov.dtype)
    want = r @ torch.diag(torch.tensor([36.0, 4.0], dtype=cov.dtype)) @ r.T
    assert torch.allclose(cov, want, atol=0.15)


def test_fractional_translation_moves_the_centroid():
    q = 0.7
    t = 0.125 * norm.ppf(q) * 48
    mx, my, _ = _moments(AugmentPipe(xfrac=1)(_blob(sx=4, sy=4), debug_percentile=q))
    assert mx == pytest.approx(t, abs=0.01) and my == pytest.approx(t, abs=0.01)


def test_resample_identity_integer_shift_and_subpixel_shift():
    f = geometric_filter().double()
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    eye = M.eye(2, 3, dtype=torch.float64)
    assert (resample(x, eye, f) - x).abs().max() < 1e-9  # sym6 up/down round trip is exact
    shift = M.translate2d(torch.tensor([-2.0, 1.0], dtype=torch.float64),
                          torch.tensor([-1.0, 3.0], dtype=torch.float64))
    y = resample(x, shift, f)  # content moves by (+2, +1) and (-1, -3)
    assert (y[0, :, 1:, 2:] - x[0, :, :-1, :-2]).abs().max() < 1e-9
    assert (y[1, :, :-3, :-1] - x[1, :, 3:, 1:]).abs().max() < 1e-9
    # smooth image, sub-pixel move: compare with the analytic function sampled at the moved positions
    size, t = 64, 0.37
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64),
                            indexing="ij")
    fn = lambda a, b: torch.sin(2 * math.pi * a / 16 + 0.3) * torch.cos(2 * math.pi * b / 24)
    img = fn(xx, yy)[None, None]
    no_shift = torch.zeros(1, dtype=torch.float64)
    moved = resample(img, M.translate2d(torch.tensor([-t], dtype=torch.float64), no_shift), f)
    err = (moved - fn(xx - t, yy))[..., 8:-8, 8:-8].abs().max()
    assert err < 0.01  # bilinear on 2x-oversampled data: (2 pi / 32)^2 / 8 ~ 0.005 worst case
    tiny = resample(img, M.translate2d(torch.tensor([-0.01], dtype=torch.float64), no_shift), f)
    assert (tiny - img).abs().max() < 0.01


def test_tight_padding_equals_max_padding():
    x = torch.randn(3, 3, 12, 12, dtype=torch.float64)
    torch.manual_seed(5)
    a = AugmentPipe.from_preset("geom", p=1.0)(x)
    torch.manual_seed(5)
    b = AugmentPipe.from_preset("geom", p=1.0, geom_pad="tight")(x)
    assert (a - b).abs().max() < 1e-9


# --------------------------------------------------------------------------------------- filter, noise, cutout
def test_image_filter_scales_a_constant_image_by_the_low_band_gain_squared():
    q = 0.8
    t = 2 ** (1.0 * norm.ppf(q))
    e = np.array([10, 1, 1, 1]) / 13
    g = np.ones(4)
    for i in range(4):  # each band in turn amplified by t, then power renormalised
        ti = np.ones(4)
        ti[i] = t
        g = g * ti / np.sqrt((e * ti ** 2).sum())
    x = torch.full((1, 3, 8, 8), 0.5)
    y = AugmentPipe(imgfilter=1)(x, debug_percentile=q)
    assert torch.allclose(y, x * g[0] ** 2, atol=1e-5)  # only the lowest band passes DC; filter is separable
    assert torch.allclose(AugmentPipe(imgfilter=1)(_rgb(h=8, w=8), debug_percentile=0.5), _rgb(h=8, w=8), atol=1e-5)


def test_noise_has_the_forced_standard_deviation():
    q = 0.6
    sigma = 0.1 * norm.ppf((1 + q) / 2)  # quantile of |N(0, 0.1^2)|
    x = torch.zeros(1, 3, 64, 64)
    d = AugmentPipe(noise=1)(x, debug_percentile=q)
    assert float(d.std()) == pytest.approx(sigma, rel=0.05) and abs(float(d.mean())) < 0.01 * sigma * 5


def test_cutout_zeroes_a_centred_square_of_half_the_size():
    x = torch.ones(1, 3, 8, 8)
    y = AugmentPipe(cutout=1)(x, debug_percentile=0.5)
    want = torch.ones(1, 3, 8, 8)
    want[:, :, 2:6, 2:6] = 0
    assert torch.equal(y, want)


@pytest.mark.parametrize("grouped", [True, False])  # the CPU's depthwise channels-last layout, the folded one
@pytest.mark.parametrize("size", [(10, 10), (8, 14)])
def test_polyphase_up_down_match_flowergan_ops(size, grouped):
    from flowergan.augment.pipe import downsample2x, upsample2x
    from flowergan.ops import downsample2d, upsample2d
    f = geometric_filter()
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    assert torch.allclose(upsample2x(x, f, grouped=grouped), upsample2d(x, f, up=2), atol=1e-12)
    z = torch.randn(2, 3, 2 * size[0] + 12, 2 * size[1] + 12, dtype=torch.float64)
    for crop in (5, 6, 8):
        assert torch.allclose(downsample2x(z, f, crop=crop, grouped=grouped),
                              downsample2d(z, f, down=2, padding=-crop, flip_filter=True), atol=1e-12)


def test_polyphase_layouts_have_the_same_gradients_of_both_orders():
    """R1 differentiates the augmented reals twice: both layouts give the same first and second derivatives."""
    from flowergan.augment.pipe import downsample2x, upsample2x
    f = geometric_filter()
    x0 = torch.randn(2, 3, 10, 12, dtype=torch.float64)
    probe = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    grads = []
    for grouped in (True, False):
        x = x0.clone().requires_grad_(True)
        y = downsample2x(upsample2x(x, f, grouped=grouped) ** 2, f, crop=5, grouped=grouped)  # [2, 3, 5, 7]
        (g,) = torch.autograd.grad((y * probe).sum(), x, create_graph=True)
        (gg,) = torch.autograd.grad((g ** 2).sum(), x)
        grads.append((g.detach(), gg))
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-10, atol=1e-12)
    assert grads[0][1].abs().max() > 0  # the square makes the second derivative non-zero


def test_matrix_constants_cost_no_kernel_after_the_first_call():
    """A matrix of per-sample entries and literals is one stack (launches matter on GPUs), with the values
    right and gradients flowing, also after a first call under inference mode."""
    from flowergan.training.opcount import count_ops

    with torch.inference_mode():
        M.translate2d(torch.zeros(2), torch.zeros(2))
    tx = torch.tensor([1.0, -2.0], requires_grad=True)
    with count_ops() as c:
        m = M.translate2d(tx, tx * 0 + 3)
    assert dict(c.counts.calls) == {"mul": 1, "add": 1, "stack": 1}  # the mul and add are `tx * 0 + 3`
    torch.testing.assert_close(m[1], torch.tensor([[1.0, 0, -2], [0, 1, 3], [0, 0, 1]]))
    m[:, 0, 2].sum().backward()
    assert tx.grad.tolist() == [1.0, 1.0]
