"""Wavelet constants and the band filter bank against their defining identities; twice-differentiable sampling."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from flowergan.augment.sampling import grid_sample_bilinear, reflect_index, reflect_pad
from flowergan.augment.wavelets import SYM2, SYM6, band_filter_bank


def _check_orthonormal_lowpass(h, moments):
    h = np.asarray(h)
    assert abs(h.sum() - math.sqrt(2)) < 1e-12
    for k in range(len(h) // 2):  # orthonormal to its own even shifts
        assert abs(np.dot(h[2 * k:], h[:len(h) - 2 * k]) - (k == 0)) < 1e-11
    n = np.arange(len(h))
    for m in range(moments):  # vanishing moments of the wavelet = zeros of H at z = -1
        assert abs(((-1.0) ** n * n ** m * h).sum()) < 1e-8 * max(1, len(h) ** m)


def test_sym6_and_sym2_are_orthonormal_wavelet_lowpass_filters():
    assert len(SYM6) == 12 and len(SYM2) == 4
    _check_orthonormal_lowpass(SYM6, moments=6)
    _check_orthonormal_lowpass(SYM2, moments=2)


def test_band_filters_sum_to_an_impulse_and_split_the_spectrum():
    bank = band_filter_bank()
    taps = bank.shape[1]
    assert bank.shape == (4, taps) and taps % 2 == 1
    impulse = np.zeros(taps)
    impulse[taps // 2] = 1
    assert np.abs(bank.sum(0) - impulse).max() < 1e-12
    assert np.abs(bank - bank[:, ::-1]).max() < 1e-12  # zero phase (symmetric)
    lag = np.arange(taps) - taps // 2
    response = lambda f, w: float((f * np.cos(w * lag)).sum())
    assert abs(response(bank[0], 0) - 1) < 1e-12 and all(abs(response(b, 0)) < 1e-12 for b in bank[1:])
    assert abs(response(bank[3], math.pi) - 1) < 1e-12 and all(abs(response(b, math.pi)) < 1e-12 for b in bank[:3])
    # band b (b >= 1) is centred on its octave: strongest response near pi / 2^(3 - b)
    for b in (1, 2):
        w = np.linspace(0, math.pi, 257)
        peak = w[np.argmax([response(bank[b], x) for x in w])]
        assert math.pi / 2 ** (4 - b) <= peak <= math.pi / 2 ** (2 - b)


def test_reflect_index_and_pad_match_numpy_reflect():
    assert reflect_index(torch.arange(-5, 9), 4).tolist() == [1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2]
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    for pad in [(1, 2, 2, 1), (7, 5, 6, 4)]:  # second one exceeds the image: must keep mirroring
        want = np.pad(x[0, 0].numpy(), ((pad[2], pad[3]), (pad[0], pad[1])), mode="reflect")
        assert np.array_equal(reflect_pad(x, pad)[0, 0].numpy(), want)


def test_grid_sample_bilinear_matches_torch_and_is_twice_differentiable():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 2, 5, 6, dtype=torch.float64, generator=g).requires_grad_(True)
    grid = torch.rand(2, 4, 3, 2, dtype=torch.float64, generator=g) * 2.4 - 1.2  # some points outside
    ref = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    assert torch.equal(grid_sample_bilinear(x, grid), ref)
    f = lambda t: grid_sample_bilinear(t, grid)
    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))
