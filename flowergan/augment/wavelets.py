"""Wavelet low-pass filters used by ADA (Karras et al. 2020, appendix B) and the 4-band image filter bank.

* `SYM6`: 12-tap Symlet-6 orthonormal low-pass (6 vanishing moments). Upsampling with it and
  downsampling with its mirror image is an exact round trip, and its sharp cut-off keeps the
  geometric augmentations nearly free of aliasing.
* `SYM2`: 4-tap Symlet-2 (= Daubechies-2) low-pass, written in closed form; it builds the dyadic
  filter bank of the image-space filtering augmentation.

Both are public mathematical constants; each satisfies sum(h) = sqrt(2) and
sum_n h[n] h[n + 2k] = delta(k) (checked in the tests).
"""

from __future__ import annotations

import math

import numpy as np

SYM6: tuple[float, ...] = (
    0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
    0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
    -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148,
)

_R3, _D = math.sqrt(3.0), 4.0 * math.sqrt(2.0)
SYM2: tuple[float, ...] = ((1 - _R3) / _D, (3 - _R3) / _D, (3 + _R3) / _D, (1 + _R3) / _D)

#: Expected share of image power per band (lowest first): a 1/f-like natural-image spectrum.
BAND_EXPECTED_POWER: tuple[float, ...] = (10 / 13, 1 / 13, 1 / 13, 1 / 13)


def _dilate(f: np.ndarray, m: int) -> np.ndarray:
    """f(z) -> f(z^m): insert m - 1 zeros between taps."""
    out = np.zeros((len(f) - 1) * m + 1)
    out[::m] = f
    return out


def _centre_pad(f: np.ndarray, n: int) -> np.ndarray:
    """Zero-pad an odd-length zero-phase filter on both sides to odd length n."""
    extra = (n - len(f)) // 2
    return np.pad(f, (extra, extra))


def band_filter_bank(h: tuple[float, ...] = SYM2, num_bands: int = 4) -> np.ndarray:
    """Zero-phase 1-D filters splitting a signal into `num_bands` octave bands, lowest band first.

    With P(z) = H(z) H(1/z) / 2 (half-band low-pass) and Q(z) = H(-z) H(-1/z) / 2 (its complement,
    P + Q = 1 for an orthonormal H), band b of B is P(z) P(z^2) ... P(z^(2^(B-b-2))) Q(z^(2^(B-b-1)))
    for b >= 1 and the all-low-pass product for b = 0. The bands telescope, so they sum to a unit
    impulse: amplifying every band by 1 is the identity.

    Returns:
        float64 array [num_bands, taps] (taps odd, centre tap = zero delay).
    """
    h = np.asarray(h, dtype=np.float64)
    lo = np.convolve(h, h[::-1]) / 2
    lags = np.arange(len(lo)) - (len(lo) - 1) // 2
    hi = lo * np.where(lags % 2 == 0, 1.0, -1.0)
    bands = []
    for b in range(num_bands):
        levels = num_bands - 2 if b == 0 else num_bands - 1 - b
        last = lo if b == 0 else hi
        f = np.ones(1)
        for level in range(levels):
            f = np.convolve(f, _dilate(lo, 2 ** level))
        bands.append(np.convolve(f, _dilate(last, 2 ** levels)))
    taps = max(len(f) for f in bands)
    return np.stack([_centre_pad(f, taps) for f in bands])
