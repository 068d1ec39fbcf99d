"""ADA augmentation pipeline (Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data",
appendix B).

`AugmentPipe` applies, to every image the discriminator sees, a fixed chain of invertible,
differentiable transforms, each one to each sample independently with probability `p * multiplier`:

1. pixel blitting: x-flip, 90-degree rotations, integer translation (exact integer pixel moves);
2. general geometric: isotropic scale, pre-rotation, anisotropic scale, post-rotation, fractional
   translation, combined into one 3x3 matrix per sample and resampled once (reflect pad, 2x sym6
   upsample, bilinear grid_sample, 2x sym6 downsample, crop);
3. colour: brightness, contrast, luma flip, hue rotation, saturation, combined into one 4x4 matrix;
4. image-space filtering (4 octave bands, each amplified by a log-normal gain, power normalised);
5. corruptions: additive Gaussian noise, cutout.

Samples for which no transform was drawn in a stage pass that stage bit-exactly, so `p = 0` is the
identity. All randomness comes from torch's generator on the images' device, in an order that does not
depend on `p`, so a run restored with the same RNG state reproduces its augmentations.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from flowergan.augment import matrices as M
from flowergan.augment.sampling import grid_sample_bilinear, reflect_index, reflect_pad
from flowergan.augment.wavelets import BAND_EXPECTED_POWER, SYM6, band_filter_bank

_BLIT = {"xflip": 1, "rotate90": 1, "xint": 1}
_GEOM = {"scale": 1, "rotate": 1, "aniso": 1, "xfrac": 1}
_COLOR = {"brightness": 1, "contrast": 1, "lumaflip": 1, "hue": 1, "saturation": 1}

#: Named sets of probability multipliers (the letters: b = blit, g = geom, c = color, f = filter,
#: n = noise, c = cutout). "bgc" is the paper's default for ADA.
PRESETS: dict[str, dict[str, float]] = {
    "blit": _BLIT,
    "geom": _GEOM,
    "color": _COLOR,
    "filter": {"imgfilter": 1},
    "noise": {"noise": 1},
    "cutout": {"cutout": 1},
    "bg": {**_BLIT, **_GEOM},
    "bgc": {**_BLIT, **_GEOM, **_COLOR},
    "bgcf": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1},
    "bgcfn": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1, "noise": 1},
    "bgcfnc": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1, "noise": 1, "cutout": 1},
}

_MULTIPLIERS = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac", "brightness", "contrast",
                "lumaflip", "hue", "saturation", "imgfilter", "noise", "cutout")


class _Draws:
    """Per-sample random parameters for one batch; with `q` set, every draw is its q-quantile instead.

    Random numbers are always drawn (float32, on `device`) so the RNG stream does not depend on p or q.
    """

    def __init__(self, n: int, device: torch.device, p: torch.Tensor, q: float | None):
        self.n, self.device, self.p, self.q = n, device, p, q

    def _rand(self, *shape: int) -> torch.Tensor:
        return torch.rand((self.n, *shape), device=self.device, dtype=torch.float32)

    def _randn(self, *shape: int) -> torch.Tensor:
        return torch.randn((self.n, *shape), device=self.device, dtype=torch.float32)

    def _const(self, value: float, *shape: int) -> torch.Tensor:
        return torch.full((self.n, *shape), float(value), device=self.device, dtype=torch.float32)

    def gate(self, prob: torch.Tensor | float, *shape: int) -> torch.Tensor:
        """Bool [N, *shape]: apply the transform to this sample? (always True in debug mode)."""
        r = self._rand(*shape)
        return torch.ones_like(r, dtype=torch.bool) if self.q is not None else r < prob

    def discrete(self, k: int, *shape: int) -> torch.Tensor:
        """Uniform integer in {0, ..., k-1}, as float."""
        r = self._rand(*shape)
        return self._const(min(math.floor(self.q * k), k - 1), *shape) if self.q is not None else torch.floor(r * k)

    def uniform(self, half_range: float, *shape: int) -> torch.Tensor:
        """Uniform in [-half_range, half_range)."""
        r = self._rand(*shape)
        return self._const((2 * self.q - 1) * half_range, *shape) if self.q is not None else (r * 2 - 1) * half_range

    def normal(self, std: float, *shape: int) -> torch.Tensor:
        """N(0, std^2)."""
        r = self._randn(*shape)
        return self._const(std * _normal_quantile(self.q), *shape) if self.q is not None else r * std

    def half_normal(self, std: float, *shape: int) -> torch.Tensor:
        """|N(0, std^2)|."""
        r = self._randn(*shape)
        return self._const(std * _normal_quantile((1 + self.q) / 2), *shape) if self.q is not None else r.abs() * std

    def unit(self, *shape: int) -> torch.Tensor:
        """Uniform in [0, 1)."""
        r = self._rand(*shape)
        return self._const(self.q, *shape) if self.q is not None else r


def _host_reads_are_free(t: torch.Tensor) -> bool:
    """Whether reading `t`'s values on the host costs nothing (CPU); on accelerators it would be a sync."""
    return t.device.type == "cpu"


def _none_active(active: torch.Tensor, sync_free: bool = False) -> bool:
    """True when no sample of the batch draws the stage (the stage is then the identity and can be skipped);
    only checked where that is free (and not `sync_free`: the accelerator path on the CPU), so accelerator
    runs never synchronise here."""
    return not sync_free and _host_reads_are_free(active) and not bool(active.any())


def _normal_quantile(q: float) -> float:
    """Inverse CDF of the standard normal (q in (0, 1))."""
    return statistics.NormalDist().inv_cdf(q)


def _pick(gate: torch.Tensor, value: torch.Tensor, neutral: float) -> torch.Tensor:
    return torch.where(gate, value, float(neutral))  # [N, ...] (a Python scalar: no tensor to fill)


class AugmentPipe(torch.nn.Module):
    """Differentiable ADA augmentation of image batches [N, C, H, W] (float, nominally in [-1, 1]).

    Each transform is enabled by a probability multiplier (0 = off); at run time it is applied to each
    sample with probability `p * multiplier`. The pipe does not own an adjustable p: `p` is either a fixed
    number given here, or a function returning the current p as a 0-dim tensor (ADA: `AdaController.current_p`),
    read at every call. `pipe.p` is that value as a read-only float32 tensor: it cannot be assigned, in-place
    writes to it raise, and the pipe's state_dict holds no p. At p == 0 the pipeline returns its input
    unchanged at no cost. Strengths (defaults from the paper):

    Args:
        xflip, rotate90, xint: multipliers for x-flip, 90-degree rotation (k ~ U{0..3}, k quarter turns
            counter-clockwise), integer translation (uniform in [-xint_max, xint_max] x image size, rounded).
        scale, rotate, aniso, xfrac: multipliers for isotropic scaling (2**N(0, scale_std)), rotation
            (uniform in +-rotate_max half-turns, applied before and after the anisotropic scaling, each with
            probability 1 - sqrt(1 - p * rotate) so that P(any rotation) = p * rotate), anisotropic scaling
            (x by 2**N(0, aniso_std), y by its inverse) and fractional translation (N(0, xfrac_std) x size).
        brightness, contrast, lumaflip, hue, saturation: multipliers for adding N(0, brightness_std) to
            every channel, scaling by 2**N(0, contrast_std) about 0, reflecting about the plane orthogonal to
            the luma axis (half of the selected samples), rotating about the luma axis by U(+-hue_max half
            turns), scaling chroma by 2**N(0, saturation_std).
        imgfilter, imgfilter_bands, imgfilter_std: multiplier for the 4-band image filter, per-band
            multipliers (lowest first), log2 std of the band gains.
        noise, noise_std, cutout, cutout_size: additive noise with per-sample sigma |N(0, noise_std)|;
            zeroing a square of side cutout_size x size at a uniform random centre.
        p: a fixed probability, or a callable returning the current one as a 0-dim tensor (read per call).
        geom_pad: "max" pads every side by size - 1 before resampling (fixed shapes, more memory);
            "tight" pads only what the batch's transforms reach (one host read per call, so not with
            `sync_free`). A memory/time choice of its own, hence its own argument; `sync_free` rules it.
        sync_free: never read a device value on the host (accelerator training steps; True on the CPU runs
            that path, for tests): the p == 0 and no-sample-drawn shortcuts are skipped (the always-compute
            path gives the same images). Without it host reads happen only where they are free (CPU).
    """

    def __init__(self, *, xflip: float = 0, rotate90: float = 0, xint: float = 0, xint_max: float = 0.125,
                 scale: float = 0, rotate: float = 0, aniso: float = 0, xfrac: float = 0,
                 scale_std: float = 0.2, rotate_max: float = 1, aniso_std: float = 0.2, xfrac_std: float = 0.125,
                 brightness: float = 0, contrast: float = 0, lumaflip: float = 0, hue: float = 0,
                 saturation: float = 0, brightness_std: float = 0.2, contrast_std: float = 0.5,
                 hue_max: float = 1, saturation_std: float = 1,
                 imgfilter: float = 0, imgfilter_bands: tuple[float, ...] = (1, 1, 1, 1), imgfilter_std: float = 1,
                 noise: float = 0, cutout: float = 0, noise_std: float = 0.1, cutout_size: float = 0.5,
                 p: float | Callable[[], torch.Tensor] = 0.0, geom_pad: str = "max", sync_free: bool = False):
        super().__init__()
        args = dict(locals())
        for name in (*_MULTIPLIERS, "xint_max", "scale_std", "rotate_max", "aniso_std", "xfrac_std",
                     "brightness_std", "contrast_std", "hue_max", "saturation_std", "imgfilter_std",
                     "noise_std", "cutout_size"):
            value = float(args[name])
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"AugmentPipe: {name} must be a finite number >= 0, got {args[name]!r}")
            setattr(self, name, value)
        self.imgfilter_bands = [float(b) for b in imgfilter_bands]
        if len(self.imgfilter_bands) != 4 or any(b < 0 for b in self.imgfilter_bands):
            raise ValueError(f"AugmentPipe: imgfilter_bands must be 4 multipliers >= 0 (lowest band first), "
                             f"got {imgfilter_bands!r}")
        if geom_pad not in ("max", "tight"):
            raise ValueError(f"AugmentPipe: geom_pad must be 'max' or 'tight', got {geom_pad!r}")
        if sync_free and geom_pad == "tight":
            raise ValueError("AugmentPipe: geom_pad='tight' reads the batch's reach on the host; with sync_free "
                             "use geom_pad='max'")
        self._p_source = p if callable(p) else None
        if self._p_source is None and not 0 <= float(p):
            raise ValueError(f"AugmentPipe: p must be >= 0, got {p!r}")
        self.geom_pad = geom_pad
        self.sync_free = bool(sync_free)
        # A fixed p (follows .to(device); not saved: it is a constructor argument, like the multipliers).
        self.register_buffer("_p_fixed", torch.tensor(0.0 if self._p_source else float(p), dtype=torch.float32),
                             persistent=False)
        # float64 constants (cast to the images' dtype where used) keep the float64 path exact
        self.register_buffer("geom_filter", geometric_filter(), persistent=False)
        self.register_buffer("band_filters", torch.as_tensor(band_filter_bank(), dtype=torch.float64),
                             persistent=False)

    @classmethod
    def from_preset(cls, name: str, **kwargs: Any) -> AugmentPipe:
        """Pipeline with the multipliers of preset `name` (see PRESETS); kwargs override any argument."""
        if name not in PRESETS:
            raise ValueError(f"Unknown augmentation preset {name!r}; choose one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **kwargs})

    def enabled(self) -> list[str]:
        """Names of the transforms with a non-zero multiplier, in pipeline order."""
        return [n for n in _MULTIPLIERS if getattr(self, n) > 0]

    def extra_repr(self) -> str:
        return f"enabled={self.enabled()}, p={float(self.p):.4f}, geom_pad={self.geom_pad!r}"

    # ------------------------------------------------------------------------------------------------
    def forward(self, images: torch.Tensor, debug_percentile: float | None = None) -> torch.Tensor:
        """Augment images [N, C, H, W] -> [N, C, H, W] (same dtype/device), differentiable in `images`.

        Args:
            images: floating-point batch; C must be 1 or 3 when a colour transform is enabled.
            debug_percentile: for tests/visualisation: if a float q in [0, 1], every enabled transform is
                applied to every sample (p ignored) with its random parameter set to its q-quantile
                (post-rotation is set to 0 so a forced rotation is a single one).
        """
        self._check(images, debug_percentile)
        if debug_percentile is None and self._p_is_zero():
            return images  # every transform is gated off: the identity, without computing it
        # Mixed precision would run the resampling convolutions in half precision: keep full precision.
        if images.device.type in ("cuda", "cpu"):
            with torch.autocast(device_type=images.device.type, enabled=False):
                return self._forward(images, debug_percentile)
        return self._forward(images, debug_percentile)

    def _forward(self, images: torch.Tensor, debug_percentile: float | None) -> torch.Tensor:
        N, C, H, W = images.shape
        dtype = torch.float64 if images.dtype == torch.float64 else torch.float32
        x = images.to(dtype)
        draws = _Draws(N, images.device, self._p_raw().to(device=images.device, dtype=torch.float32),
                       None if debug_percentile is None else float(debug_percentile))
        if self.xflip > 0 or self.rotate90 > 0 or self.xint > 0:
            x = self._blit(x, draws)
        if self.scale > 0 or self.rotate > 0 or self.aniso > 0 or self.xfrac > 0:
            x = self._geometric(x, draws)
        if any(getattr(self, n) > 0 for n in _COLOR):
            x = self._color(x, draws)
        if self.imgfilter > 0:
            x = self._filter(x, draws)
        if self.noise > 0:
            sigma = _pick(draws.gate(self.noise * draws.p, 1, 1, 1), draws.half_normal(self.noise_std, 1, 1, 1), 0)
            z = torch.randn(x.shape, device=x.device, dtype=torch.float32).to(dtype)
            x = torch.where(sigma > 0, x + z * sigma.to(dtype), x)
        if self.cutout > 0:
            x = self._cutout(x, draws)
        return x.to(images.dtype)

    @property
    def p(self) -> torch.Tensor:
        """The current probability: a float32 0-dim tensor, read-only (in-place writes raise; it is a fresh
        copy of the fixed p or of the owner's, e.g. ADA's, so writing it could not change the pipe anyway)."""
        with torch.inference_mode():  # an inference tensor: in-place updates to it raise outside this mode
            return self._p_raw().to(torch.float32, copy=True)

    def _p_raw(self) -> torch.Tensor:
        return self._p_source() if self._p_source is not None else self._p_fixed

    def _p_is_zero(self) -> bool:
        """Whether p == 0, read from the device only when p changed (no per-call host sync)."""
        if self.sync_free:
            return False
        raw = self._p_raw()
        key = (id(raw), raw._version)  # the owner's in-place writes bump _version
        if getattr(self, "_p_key", None) != key:
            self._p_key, self._p_zero = key, float(raw.to(torch.float32)) == 0.0
        return self._p_zero

    def _check(self, images: torch.Tensor, q: float | None) -> None:
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
            got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"AugmentPipe expects a floating-point tensor [N, C, H, W], got {got}"
                             + (f" of dtype {images.dtype}" if isinstance(images, torch.Tensor) else ""))
        _, C, H, W = images.shape
        spatial = self.xflip + self.rotate90 + self.xint + self.scale + self.rotate + self.aniso + self.xfrac
        if (spatial + self.imgfilter) > 0 and min(H, W) < 2:
            raise ValueError(f"AugmentPipe: spatial augmentations need images of at least 2x2 pixels, got {H}x{W}")
        if self.rotate90 > 0 and H != W:
            raise ValueError(f"AugmentPipe: rotate90 needs square images, got {H}x{W}; disable it (rotate90=0)")
        if C not in (1, 3) and any(getattr(self, n) > 0 for n in _COLOR):
            raise ValueError(f"AugmentPipe: colour transforms need 1 (grey) or 3 (RGB) channels, got {C}; "
                             "use a preset without colour (e.g. 'bg')")
        if q is not None and not (isinstance(q, (int, float)) and 0 <= q <= 1):
            raise ValueError(f"AugmentPipe: debug_percentile must be a number in [0, 1], got {q!r}")

    # ------------------------------------------------------------------------------------------------
    def _blit(self, x: torch.Tensor, d: _Draws) -> torch.Tensor:
        """x-flip, then k quarter turns, then integer translation (reflect beyond the border): exact moves."""
        N, C, H, W = x.shape
        f = k = None
        t = torch.zeros(N, 2, device=x.device)
        if self.xflip > 0:
            f = _pick(d.gate(self.xflip * d.p), d.discrete(2), 0)
        if self.rotate90 > 0:
            k = _pick(d.gate(self.rotate90 * d.p), d.discrete(4), 0)
        if self.xint > 0:
            t = d.uniform(self.xint_max, 2)
            t = _pick(d.gate(self.xint * d.p, 1), torch.round(torch.stack([t[:, 0] * W, t[:, 1] * H], dim=1)), 0)
        # Output pixel (u, v) in doubled centred coordinates (u = 2x - (W-1)) reads the input at
        # flip^-1 rot^-1 (u - 2 tx, v - 2 ty); doubling keeps every coordinate an integer.
        active = (t != 0).any(1)
        for moved in (f, k):
            if moved is not None:
                active = active | (moved != 0)
        if _none_active(active, self.sync_free):
            return x
        ti = t.long()
        u = (2 * torch.arange(W, device=x.device) - (W - 1))[None, None, :] - 2 * ti[:, 0, None, None]
        v = (2 * torch.arange(H, device=x.device) - (H - 1))[None, :, None] - 2 * ti[:, 1, None, None]
        if k is not None:
            ki = k.long()
            cos = ((1 - ki) * (ki % 2 == 0))[:, None, None]  # cos(k pi / 2) for k = 0..3
            sin = ((2 - ki) * (ki % 2 == 1))[:, None, None]  # sin(k pi / 2)
            u, v = cos * u - sin * v, sin * u + cos * v
        if f is not None:
            u = u * (1 - 2 * f.long())[:, None, None]
        src_x = reflect_index(torch.div(u + (W - 1), 2, rounding_mode="floor"), W)
        src_y = reflect_index(torch.div(v + (H - 1), 2, rounding_mode="floor"), H)
        index = (src_y * W + src_x).reshape(N, 1, H * W).expand(N, C, H * W)
        return x.reshape(N, C, H * W).gather(2, index).reshape(N, C, H, W)

    # ------------------------------------------------------------------------------------------------
    def _geometric(self, x: torch.Tensor, d: _Draws) -> torch.Tensor:
        """Build G_inv (output pixel -> input pixel, centred coordinates) and resample once."""
        N, C, H, W = x.shape
        G = M.eye(N, 3, device=x.device)
        active = torch.zeros(N, dtype=torch.bool, device=x.device)
        if self.scale > 0:
            s = _pick(d.gate(self.scale * d.p), torch.exp2(d.normal(self.scale_std)), 1)
            G, active = G @ M.scale2d(1 / s, 1 / s), active | (s != 1)
        p_rot = 1 - torch.sqrt((1 - self.rotate * d.p).clamp(0, 1))
        if self.rotate > 0:
            theta = _pick(d.gate(p_rot), d.uniform(math.pi * self.rotate_max), 0)
            G, active = G @ M.rotate2d(-theta), active | (theta != 0)
        if self.aniso > 0:
            s = _pick(d.gate(self.aniso * d.p), torch.exp2(d.normal(self.aniso_std)), 1)
            G, active = G @ M.scale2d(1 / s, s), active | (s != 1)
        if self.rotate > 0:
            theta = _pick(d.gate(p_rot), d.uniform(math.pi * self.rotate_max), 0)
            if d.q is not None:
                theta = torch.zeros_like(theta)
            G, active = G @ M.rotate2d(-theta), active | (theta != 0)
        if self.xfrac > 0:
            t = _pick(d.gate(self.xfrac * d.p, 1), d.normal(self.xfrac_std, 2), 0)
            G, active = G @ M.translate2d(-t[:, 0] * W, -t[:, 1] * H), active | (t != 0).any(1)
        if _none_active(active, self.sync_free):
            return x
        y = resample(x, G.to(x.dtype), self.geom_filter, pad_mode=self.geom_pad)
        return torch.where(active[:, None, None, None], y, x)

    # ------------------------------------------------------------------------------------------------
    def _color(self, x: torch.Tensor, d: _Draws) -> torch.Tensor:
        """C = saturation @ hue @ lumaflip @ contrast @ brightness on homogeneous RGB; grey as (g, g, g)."""
        N, C, H, W = x.shape
        Cm = M.eye(N, 4, device=x.device)
        active = torch.zeros(N, dtype=torch.bool, device=x.device)
        if self.brightness > 0:
            b = _pick(d.gate(self.brightness * d.p), d.normal(self.brightness_std), 0)
            Cm, active = M.translate3d(b, b, b) @ Cm, active | (b != 0)
        if self.contrast > 0:
            c = _pick(d.gate(self.contrast * d.p), torch.exp2(d.normal(self.contrast_std)), 1)
            Cm, active = M.scale3d(c, c, c) @ Cm, active | (c != 1)
        if self.lumaflip > 0:
            i = _pick(d.gate(self.lumaflip * d.p), d.discrete(2), 0)
            Cm, active = M.luma_flip(i) @ Cm, active | (i != 0)
        if self.hue > 0:
            theta = _pick(d.gate(self.hue * d.p), d.uniform(math.pi * self.hue_max), 0)
            Cm, active = M.rotate_about_luma(theta) @ Cm, active | (theta != 0)
        if self.saturation > 0:
            s = _pick(d.gate(self.saturation * d.p), torch.exp2(d.normal(self.saturation_std)), 1)
            Cm, active = M.saturate(s) @ Cm, active | (s != 1)
        if _none_active(active, self.sync_free):
            return x
        Cm = Cm.to(x.dtype)
        flat = x.reshape(N, C, H * W)
        if C == 3:
            y = Cm[:, :3, :3] @ flat + Cm[:, :3, 3:]
        else:  # grey g -> (g, g, g) -> C -> mean of the three channels
            gain = Cm[:, :3, :3].sum(dim=2).mean(dim=1)[:, None, None]
            y = flat * gain + Cm[:, :3, 3].mean(dim=1)[:, None, None]
        return torch.where(active[:, None, None, None], y.reshape(N, C, H, W), x)

    # ------------------------------------------------------------------------------------------------
    def _filter(self, x: torch.Tensor, d: _Draws) -> torch.Tensor:
        """Amplify 4 octave bands by log-normal gains, normalised so expected image power is unchanged."""
        N, C, H, W = x.shape
        bands = self.band_filters.to(device=x.device, dtype=x.dtype)
        expected = torch.empty(len(BAND_EXPECTED_POWER), device=x.device)
        for i, e in enumerate(BAND_EXPECTED_POWER):  # filled on the device: no host->device copy (sync)
            expected[i] = e
        g = torch.ones(N, len(self.imgfilter_bands), device=x.device)
        active = torch.zeros(N, dtype=torch.bool, device=x.device)
        for i, band_mult in enumerate(self.imgfilter_bands):
            ti = _pick(d.gate(self.imgfilter * band_mult * d.p), torch.exp2(d.normal(self.imgfilter_std)), 1)
            if d.q is not None and band_mult == 0:
                ti = torch.ones_like(ti)
            t = torch.ones_like(g)
            t[:, i] = ti
            g = g * t / (expected * t.square()).sum(dim=1, keepdim=True).sqrt()
            active = active | (ti != 1)
        if _none_active(active, self.sync_free):
            return x
        taps = bands.shape[1]
        f = g.to(x.dtype) @ bands  # [N, taps] one zero-phase 1-D filter per sample
        f = f[:, None, :].expand(N, C, taps).reshape(N * C, 1, 1, taps)
        pad = taps // 2
        y = reflect_pad(x, (pad, pad, pad, pad)).reshape(1, N * C, H + 2 * pad, W + 2 * pad)
        y = torch.nn.functional.conv2d(y, f, groups=N * C)
        y = torch.nn.functional.conv2d(y, f.transpose(2, 3), groups=N * C)
        return torch.where(active[:, None, None, None], y.reshape(N, C, H, W), x)

    # ------------------------------------------------------------------------------------------------
    def _cutout(self, x: torch.Tensor, d: _Draws) -> torch.Tensor:
        """Zero a square of side cutout_size (relative) centred at a uniform random point."""
        N, C, H, W = x.shape
        size = _pick(d.gate(self.cutout * d.p, 1), torch.full((N, 1), self.cutout_size, device=x.device), 0)
        centre = d.unit(2)
        cx, cy = centre[:, 0, None, None], centre[:, 1, None, None]
        px = ((torch.arange(W, device=x.device) + 0.5) / W)[None, None, :]
        py = ((torch.arange(H, device=x.device) + 0.5) / H)[None, :, None]
        half = size[:, :, None] / 2
        inside = ((px - cx).abs() < half) & ((py - cy).abs() < half)  # [N, H, W]
        return torch.where(inside[:, None], torch.zeros_like(x), x)


# ----------------------------------------------------------------------------------------------------
def resample(x: torch.Tensor, G_inv: torch.Tensor, f: torch.Tensor, *, pad_mode: str = "max") -> torch.Tensor:
    """Warp x [N, C, H, W] by per-sample G_inv [N, 3, 3] (output pixel -> input pixel, in pixel units with
    the origin at the image centre) with reflect padding and 2x oversampling through the 1-D filter f.

    Pipeline: reflect-pad, upsample 2x with f, bilinear grid_sample (zeros outside), downsample 2x with
    the mirrored f, crop. Upsampling with f and downsampling with its mirror is the identity for an
    orthonormal wavelet low-pass, so integer moves are exact up to rounding. Returns [N, C, H, W].
    """
    N, C, H, W = x.shape
    q = f.shape[0] // 4  # original-resolution margin covering the filter's reach
    dev, dt = x.device, x.dtype
    f = f.to(device=dev, dtype=dt)
    if pad_mode == "max":
        px0 = px1 = W - 1
        py0 = py1 = H - 1
    elif pad_mode == "tight":
        hx, hy = W / 2 + q, H / 2 + q
        corners = torch.tensor([[-hx, -hy, 1], [hx, -hy, 1], [hx, hy, 1], [-hx, hy, 1]], device=dev, dtype=dt)
        reach = (G_inv @ corners.t())[:, :2, :].permute(1, 0, 2).reshape(2, -1)  # [xy, N * 4]
        lo, hi = (-reach).amax(dim=1), reach.amax(dim=1)
        need = torch.stack([lo[0], hi[0], lo[1], hi[1]]) - torch.tensor(
            [(W - 1) / 2, (W - 1) / 2, (H - 1) / 2, (H - 1) / 2], device=dev, dtype=dt) + 2 * q
        lim = torch.tensor([W - 1, W - 1, H - 1, H - 1], device=dev, dtype=dt)
        px0, px1, py0, py1 = (int(v) for v in torch.minimum(need.ceil().clamp(min=0), lim).tolist())
    else:
        raise ValueError(f"resample: pad_mode must be 'max' or 'tight', got {pad_mode!r}")
    xp = reflect_pad(x, (px0, px1, py0, py1))
    Hp, Wp = xp.shape[-2:]
    up = upsample2x(xp, f)
    # Coordinates: `up` sample j sits at padded position j / 2 (zero insertion puts input i at 2i and the
    # filter's delay is ~0), i.e. a quarter pixel off the pixel-centre convention of affine_grid /
    # grid_sample (align_corners=False); the same holds for the oversampled output before decimation.
    # With m the normalised output coordinate (covering the image plus q pixels per side):
    #   output centred position = m * (size + 2q) / 2 + 1/4,
    #   normalised input coordinate = (centred padded position - 1/4) * 2 / padded size.
    def diag(a: float, b: float) -> torch.Tensor:
        return M.scale2d(torch.full((1,), a, device=dev, dtype=dt), torch.full((1,), b, device=dev, dtype=dt))

    def move(a: float, b: float) -> torch.Tensor:
        return M.translate2d(torch.full((1,), a, device=dev, dtype=dt), torch.full((1,), b, device=dev, dtype=dt))

    theta = (diag(2 / Wp, 2 / Hp) @ move((px0 - px1) / 2 - 0.25, (py0 - py1) / 2 - 0.25)
             @ G_inv @ move(0.25, 0.25) @ diag((W + 2 * q) / 2, (H + 2 * q) / 2))
    out_shape = [N, C, 2 * (H + 2 * q), 2 * (W + 2 * q)]
    grid = torch.nn.functional.affine_grid(theta[:, :2, :], out_shape, align_corners=False)
    y = grid_sample_bilinear(up, grid)
    return downsample2x(y, f, crop=2 * q)


# Polyphase forms of flowergan.ops.upsample2d / downsample2d for the even-length 1-D filters used here:
# strided (transposed) convolutions skip the inserted zeros and the discarded outputs (same values;
# checked against flowergan.ops in the tests) and are several times cheaper, forward and backward.
# Two layouts of the same convolutions: on the CPU a depthwise (grouped) convolution over channels-last
# images, whose forward+backward through up and down ran 3-6x faster there than one input channel with the
# channels folded into the batch (oneDNN handles a single channel poorly); elsewhere the folded form.
def _layout(x: torch.Tensor, grouped: bool | None) -> tuple[torch.Tensor, int]:
    """x [N, C, H, W] as the convolutions take it: (channels-last x, C groups) or ([N*C, 1, H, W], 1 group)."""
    N, C, H, W = x.shape
    if grouped is None:
        grouped = x.device.type == "cpu"
    if grouped:
        return x.contiguous(memory_format=torch.channels_last), C
    return x.reshape(N * C, 1, H, W), 1


def upsample2x(x: torch.Tensor, f: torch.Tensor, grouped: bool | None = None) -> torch.Tensor:
    """== upsample2d(x, f, up=2) for a 1-D even-length filter f: [N, C, H, W] -> [N, C, 2H, 2W].
    `grouped`: the depthwise channels-last layout (None: on the CPU)."""
    N, C, H, W = x.shape
    k = f.shape[0]
    pad = k - 1 - (k + 1) // 2
    w = (f * 2).to(x.dtype)  # gain 2 per axis keeps the DC level
    y, g = _layout(x, grouped)
    y = torch.nn.functional.conv_transpose2d(y, w.reshape(1, 1, 1, k).expand(g, 1, 1, k), stride=(1, 2),
                                             padding=(0, pad), groups=g)
    y = torch.nn.functional.conv_transpose2d(y, w.reshape(1, 1, k, 1).expand(g, 1, k, 1), stride=(2, 1),
                                             padding=(pad, 0), groups=g)
    return y.reshape(N, C, 2 * H, 2 * W)  # a view either way (channels-last stays channels-last)


def downsample2x(x: torch.Tensor, f: torch.Tensor, crop: int = 0, grouped: bool | None = None) -> torch.Tensor:
    """== downsample2d(x, f, down=2, padding=-crop, flip_filter=True) for a 1-D even-length f [k], crop >= k/2 - 1.

    [N, C, H, W] -> [N, C, (H - 2 crop) / 2, (W - 2 crop) / 2] for even H, W. `grouped`: as in `upsample2x`.
    """
    N, C, H, W = x.shape
    k = f.shape[0]
    skip = crop - (k - 1) // 2
    if skip < 0:
        raise ValueError(f"downsample2x: crop={crop} too small for a {k}-tap filter (needs >= {(k - 1) // 2})")
    w = f.to(x.dtype)
    y, g = _layout(x[:, :, skip:H - skip, skip:W - skip], grouped)
    y = torch.nn.functional.conv2d(y, w.reshape(1, 1, 1, k).expand(g, 1, 1, k), stride=(1, 2), groups=g)
    y = torch.nn.functional.conv2d(y, w.reshape(1, 1, k, 1).expand(g, 1, k, 1), stride=(2, 1), groups=g)
    return y.reshape(N, C, y.shape[-2], y.shape[-1])


def geometric_filter(dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The normalised 1-D sym6 filter [12] used by `resample` (sums to 1)."""
    f = torch.as_tensor(np.asarray(SYM6), dtype=torch.float64)
    return (f / f.sum()).to(dtype)
