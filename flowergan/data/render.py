"""Rasterise procedural flower scenes in numpy/PIL: backgrounds, stems and leaves, petal layers, discs, stamens.

Canvases are float32 [S, S, 3] in [0, 1]; coordinates are normalised to [-1, 1] (x right, y down). A flower head
lives in its own frame (u, v) in units of its radius: image point = centre + rho * R(beta) diag(1, k) R(-beta) (u, v),
k < 1 foreshortens (tilts) it. Petal edges are anti-aliased analytically: alpha = clip(d / pixel + 1/2, 0, 1) with d
the signed distance to the edge across the petal.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

TAU = 2 * math.pi


@dataclass
class Layer:
    """A ring of `n` petals. Shapes: half-width W h(t), h = t^p (1-t)^q / max; see module docstring."""

    n: int
    length: float
    overlap: float  # angular half-width relative to half the sector (>1 overlaps the neighbours)
    p: float
    q: float
    base: np.ndarray  # colour at the petal base [3]
    tip: np.ndarray  # colour at the tip [3]
    offset: float  # angle of petal 0
    rng_jit: np.ndarray  # [n, 4] in [-1, 1]: angle, length, width, brightness jitter
    a0: float = 0.05  # where petals start (fraction of the radius)
    notch: float = 0.0  # heart-shaped tip depth
    fringe: tuple[int, float] = (0, 0.0)  # (teeth, depth) of a toothed tip
    ruffle: float = 0.0
    gamma: float = 1.0  # base -> tip colour ramp
    throat: float = 0.0
    throat_col: np.ndarray | None = None
    edge_col: np.ndarray | None = None
    picotee: float = 0.0  # edge colour strength
    vein: tuple[float, int] = (0.0, 0)  # (strength, count)
    cup: float = 0.25  # darkening towards the sides (a cupped petal)
    spots: float = 0.0
    spot_col: np.ndarray | None = None


@dataclass
class Head:
    layers: list[Layer]
    disc_r: float
    disc_in: np.ndarray
    disc_out: np.ndarray
    disc_kind: str  # "florets", "bud", "pod", "plain"
    stamens: list[tuple[float, float, float]] = field(default_factory=list)  # (angle, radius, size) local units
    stamen_col: tuple[int, int, int] = (230, 200, 60)
    filaments: bool = False


@dataclass
class Pose:
    cx: float
    cy: float
    rho: float  # radius in normalised units (1 = half the image)
    k: float  # foreshortening, 1 = facing the camera
    beta: float  # tilt direction
    light: tuple[float, float] = (-0.12, -0.12)  # brightness gradient across the head (u, v per radius)

    def to_image(self, u: float, v: float, S: int) -> tuple[float, float]:
        """Local flower coordinates -> pixel coordinates on an S x S canvas."""
        cb, sb = math.cos(self.beta), math.sin(self.beta)
        d1, d2 = u * cb + v * sb, (-u * sb + v * cb) * self.k
        x = self.cx + self.rho * (d1 * cb - d2 * sb)
        y = self.cy + self.rho * (d1 * sb + d2 * cb)
        return (x + 1) / 2 * S, (y + 1) / 2 * S


@lru_cache(maxsize=8)
def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres in [-1, 1]: X grows to the right, Y downwards. Shapes [S, S]."""
    c = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
    return np.broadcast_to(c[None, :], (size, size)), np.broadcast_to(c[:, None], (size, size))


@lru_cache(maxsize=1)
def noise_tex() -> np.ndarray:
    """A fixed 64x64 uniform-noise texture for petal grain and spots (the same for every image)."""
    return np.random.default_rng(12345).random((64, 64), dtype=np.float32)


def hsv(h: float, s: float, v: float) -> np.ndarray:
    """Colour from hue in degrees, saturation and value in [0, 1] -> float32 RGB [3]."""
    return np.array(colorsys.hsv_to_rgb((h % 360) / 360.0, min(max(s, 0), 1), min(max(v, 0), 1)), np.float32)


def _rgb8(c: np.ndarray) -> tuple[int, int, int]:
    return tuple(int(round(float(x) * 255)) for x in np.clip(c, 0, 1))


def petal_layer(r: np.ndarray, th: np.ndarray, L: Layer, px: float) -> tuple[np.ndarray, np.ndarray]:
    """Premultiplied colour [h, w, 3] and alpha [h, w] of one ring of petals (polar coords r, th in [0, 2pi))."""
    sector = TAU / L.n
    rel = (th - L.offset) % TAU
    kf = np.floor(rel / sector + 0.5)
    hw_ang = L.overlap * sector / 2
    tstar = L.p / (L.p + L.q)
    hmax = tstar ** L.p * (1 - tstar) ** L.q
    d0 = rel - kf * sector  # angle from the nearest petal axis, in [-sector/2, sector/2)
    side = np.where(d0 >= 0, np.float32(1), np.float32(-1))
    Cn, An = _petal(r, rel, kf, L, sector, hw_ang, tstar, hmax, px)
    if L.overlap <= 0.8:  # narrow petals never reach past the sector border: one candidate is enough
        return Cn * An[..., None], An
    # wider petals also overlap the neighbour on the pixel's side; petal j+1 lies over petal j (convolute order)
    Cs, As = _petal(r, rel, kf + side, L, sector, hw_ang, tstar, hmax, px)
    front_side = (side > 0)
    Af = np.where(front_side, As, An)
    Ab = np.where(front_side, An, As)
    fs = front_side[..., None]
    Cf = np.where(fs, Cs, Cn)
    Cb = np.where(fs, Cn, Cs)
    A = Af + Ab * (1 - Af)
    P = Cf * Af[..., None] + Cb * (Ab * (1 - Af))[..., None]
    return P, A


def _petal(r, rel, j, L: Layer, sector, hw_ang, tstar, hmax, px) -> tuple[np.ndarray, np.ndarray]:
    """Colour [h, w, 3] (not premultiplied; zero where alpha is 0) and alpha [h, w] of petal number j per pixel."""
    jit = L.rng_jit
    jm = (j % L.n).astype(np.intp)
    delta = rel - (j + 0.12 * jit[jm, 0]) * sector
    a = r * np.cos(delta)
    b = r * np.sin(delta)
    Lj = L.length * (1 + 0.06 * jit[jm, 1])
    t = (a - L.a0) / (Lj - L.a0)
    W = hw_ang * (L.a0 + tstar * (Lj - L.a0)) * (1 + 0.1 * jit[jm, 2])
    bw = b / W
    m = np.ones_like(t)
    if L.notch:
        m -= L.notch * np.exp(-(bw / 0.3) ** 2)
    if L.fringe[0]:
        m -= L.fringe[1] * (0.5 - 0.5 * np.cos(TAU * L.fringe[0] * bw / 2))
    if L.ruffle:
        m *= 1 + L.ruffle * np.sin(5 * bw + 3 * jit[jm, 3])
    te = t / m
    inside = (te > 0) & (te < 1)
    tc = np.clip(te, 1e-4, 1 - 1e-4)
    h = tc ** L.p * (1 - tc) ** L.q / hmax
    if L.ruffle:
        h *= 1 + 0.5 * L.ruffle * np.sin(TAU * 2.5 * tc + 5 * jit[jm, 2])
    half = W * h
    d = half - np.abs(b)
    alpha = np.where(inside, np.clip(d / px + 0.5, 0, 1), np.float32(0))
    col = np.zeros(r.shape + (3,), np.float32)
    idx = np.flatnonzero(alpha)
    if idx.size == 0:
        return col, alpha
    # colour along the petal, then shading across it, only where the petal is
    t, a, b, d, half, jm = (x.ravel()[idx] for x in (t, a, b, d, half, jm))
    tt = np.clip(t, 0, 1)
    g = (tt ** L.gamma)[:, None]
    c = L.base * (1 - g) + L.tip * g
    if L.throat and L.throat_col is not None:
        w = (L.throat * np.clip(1 - tt / 0.4, 0, 1) ** 1.5)[:, None]
        c = c * (1 - w) + L.throat_col * w
    bn = np.clip(b / (half + 1e-6), -1, 1)
    shade = (1 - L.cup * bn * bn) * (1 + 0.07 * jit[jm, 3])
    if L.vein[0]:
        shade *= 1 - L.vein[0] * (0.5 + 0.5 * np.cos(math.pi * L.vein[1] * bn)) ** 8 * (1 - 0.6 * tt)
    tex = noise_tex()
    grain = tex[jm % 64, ((bn + 1) * 24).astype(np.intp) % 64]  # fine streaks along the petal
    shade *= 0.96 + 0.08 * grain
    rim = np.clip(1 - d / 0.04, 0, 1)
    shade *= 1 - 0.25 * rim * rim
    if L.picotee and L.edge_col is not None:
        w = (L.picotee * np.clip(1 - d / 0.07, 0, 1) * tt)[:, None]
        c = c * (1 - w) + L.edge_col * w
    if L.spots and L.spot_col is not None:
        sp = tex[(a * 23 + 5).astype(np.intp) % 64, (b * 23 + jm * 11 + 32).astype(np.intp) % 64]
        w = ((sp > 1 - 0.12 * L.spots) & (tt > 0.08) & (tt < 0.6))[:, None]
        c = np.where(w, L.spot_col, c)
    col.reshape(-1, 3)[idx] = c * shade[:, None]
    return col, alpha


def _disc(r: np.ndarray, th: np.ndarray, head: Head, px: float) -> tuple[np.ndarray, np.ndarray]:
    """Premultiplied colour and alpha of the flower's centre."""
    R = head.disc_r
    dr = np.clip(r / R, 0, 1)
    alpha = np.clip((R - r) / px + 0.5, 0, 1).astype(np.float32)
    g = (dr * dr)[..., None]
    col = head.disc_in * (1 - g) + head.disc_out * g
    if head.disc_kind == "florets":
        pat = np.cos(21 * th + TAU * 3.0 * dr) * np.cos(34 * th - TAU * 4.5 * dr)
        shade = 0.8 + 0.25 * pat
        ring = np.clip((dr - 0.78) / 0.22, 0, 1)
        shade = shade * (1 + 0.5 * ring * (pat > 0.3))
    elif head.disc_kind == "bud":
        shade = 0.75 + 0.25 * np.cos(3 * th + 14 * dr)
    elif head.disc_kind == "pod":
        shade = (1 - 0.5 * np.abs(np.cos(5 * th)) ** 12 * (dr < 0.75)) * (1.1 - 0.3 * dr)
    else:
        shade = 1.1 - 0.35 * dr
    col = col * shade[..., None]
    return col * alpha[..., None], alpha


def draw_head(canvas: np.ndarray, head: Head, pose: Pose) -> None:
    """Composite a flower head onto `canvas` [S, S, 3] in place (with a soft shadow under each layer)."""
    S = canvas.shape[0]
    ext = pose.rho * max(L.length for L in head.layers) * 1.3 + 4 / S
    x0, x1 = (max(0, int((c + 1) / 2 * S)) for c in (pose.cx - ext, pose.cx + ext))
    y0, y1 = (max(0, int((c + 1) / 2 * S)) for c in (pose.cy - ext, pose.cy + ext))
    x1, y1 = min(S, x1 + 1), min(S, y1 + 1)
    if x1 <= x0 or y1 <= y0:
        return
    X, Y = grid(S)
    dx, dy = X[y0:y1, x0:x1] - pose.cx, Y[y0:y1, x0:x1] - pose.cy
    cb, sb = math.cos(pose.beta), math.sin(pose.beta)
    d1, d2 = dx * cb + dy * sb, (-dx * sb + dy * cb) / pose.k
    u, v = (d1 * cb - d2 * sb) / pose.rho, (d1 * sb + d2 * cb) / pose.rho
    r = np.hypot(u, v)
    th = np.arctan2(v, u) % TAU
    px = 2 / S / pose.rho / math.sqrt(pose.k)
    sub = canvas[y0:y1, x0:x1]
    blur = max(1.0, S * pose.rho * 0.03)
    cy0, cx0 = (pose.cy + 1) / 2 * S - y0, (pose.cx + 1) / 2 * S - x0  # head centre in window pixels
    for L in head.layers:
        e = pose.rho * L.length * 1.3 * S / 2 + 3 * blur + 2  # this layer's reach in pixels, shadow included
        ya, yb = max(0, int(cy0 - e)), max(0, int(cy0 + e) + 1)
        xa, xb = max(0, int(cx0 - e)), max(0, int(cx0 + e) + 1)
        if yb <= ya or xb <= xa:
            continue
        P, A = petal_layer(r[ya:yb, xa:xb], th[ya:yb, xa:xb], L, px)
        P *= np.clip(1 + pose.light[0] * u[ya:yb, xa:xb] + pose.light[1] * v[ya:yb, xa:xb], 0.6, 1.3)[..., None]
        sh = Image.fromarray((A * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(blur))
        sh = np.asarray(sh, np.float32) / 255
        s2 = sub[ya:yb, xa:xb]
        s2 *= (1 - 0.45 * sh * (1 - A))[..., None]
        s2[:] = P + s2 * (1 - A)[..., None]
    P, A = _disc(r, th, head, px)
    sub[:] = P + sub * (1 - A)[..., None]


def draw_stamens(img: Image.Image, head: Head, pose: Pose) -> None:
    """Stamens (anthers on optional filaments) drawn with PIL on the supersampled canvas."""
    if not head.stamens:
        return
    S = img.size[0]
    d = ImageDraw.Draw(img)
    c = pose.to_image(0, 0, S)
    fw = max(1, int(S * pose.rho * 0.012))
    for ang, rad, size in head.stamens:
        x, y = pose.to_image(rad * math.cos(ang), rad * math.sin(ang), S)
        if head.filaments:
            d.line([c, (x, y)], fill=(200, 215, 150), width=fw)
        s = size * pose.rho * S / 2
        dark = tuple(int(v * 0.6) for v in head.stamen_col)
        d.ellipse([x - s, y - s, x + s, y + s], fill=dark)
        d.ellipse([x - s * 0.75, y - s * 0.8, x + s * 0.6, y + s * 0.55], fill=head.stamen_col)


def draw_background(rng: np.random.Generator, S: int) -> Image.Image:
    """A defocused backdrop: foliage, sky, dark or garden, with blurred leaves and bokeh."""
    U = rng.uniform
    kind = rng.choice(4, p=[0.5, 0.15, 0.2, 0.15])
    k = int(rng.integers(3, 7))
    if kind == 1:  # sky
        h = U(195, 222)
        top, bottom = hsv(h, U(0.35, 0.65), U(0.7, 0.92)), hsv(h, U(0.1, 0.3), U(0.9, 1.0))
        f = np.linspace(0, 1, k)[:, None, None]
        cells = np.repeat(top * (1 - f) + bottom * f, k, axis=1) + rng.normal(0, 0.03, (k, k, 3))
    else:
        if kind == 0:
            h0, s_rng, v_rng = U(70, 135), (0.35, 0.85), (0.12, 0.55)
        elif kind == 2:
            h0, s_rng, v_rng = U(60, 150), (0.2, 0.6), (0.02, 0.14)
        else:
            h0, s_rng, v_rng = U(20, 110), (0.25, 0.6), (0.15, 0.45)
        cells = np.stack([hsv(h0 + U(-22, 22), U(*s_rng), U(*v_rng)) for _ in range(k * k)]).reshape(k, k, 3)
    small = Image.fromarray((np.clip(cells, 0, 1) * 255).astype(np.uint8))
    img = small.resize((S, S), Image.Resampling.BICUBIC)
    d = ImageDraw.Draw(img)
    if kind != 1:
        for _ in range(int(rng.integers(2, 7))):  # out-of-focus leaves
            col = _rgb8(hsv(U(75, 140), U(0.35, 0.8), U(0.1, 0.6) if kind != 2 else U(0.05, 0.2)))
            x, y, L, w, a = U(0, S), U(0, S), U(0.2, 0.6) * S, U(0.06, 0.15) * S, U(0, TAU)
            pts = _leaf_outline(x, y, a, L, w, 0.0)
            d.polygon(pts, fill=col)
        for _ in range(int(rng.integers(0, 6))):  # bokeh highlights
            x, y, s = U(0, S), U(0, S), U(0.02, 0.07) * S
            col = _rgb8(hsv(U(50, 100), U(0.1, 0.5), U(0.6, 1.0)) * (0.5 if kind == 2 else 1.0))
            d.ellipse([x - s, y - s, x + s, y + s], fill=col)
    return img.filter(ImageFilter.GaussianBlur(S * U(0.015, 0.04)))


def _leaf_outline(x: float, y: float, ang: float, length: float, width: float, bend: float,
                  steps: int = 14) -> list[tuple[float, float]]:
    ca, sa = math.cos(ang), math.sin(ang)
    left, right = [], []
    for i in range(steps + 1):
        s = i / steps
        hw = width * math.sin(math.pi * s ** 0.8) * (1 - 0.25 * s)
        cx = x + ca * s * length - sa * bend * s * s * length
        cy = y + sa * s * length + ca * bend * s * s * length
        left.append((cx - sa * hw, cy + ca * hw))
        right.append((cx + sa * hw, cy - ca * hw))
    return left + right[::-1]


def draw_stem(img: Image.Image, rng: np.random.Generator, pose: Pose) -> None:
    """A curved stem from the head's centre to below the frame, with 0-2 two-tone leaves."""
    U = rng.uniform
    S = img.size[0]
    d = ImageDraw.Draw(img)
    x0, y0 = pose.to_image(0, 0, S)
    x1, y1 = x0 + U(-0.35, 0.35) * S, S * 1.08
    if y0 >= y1:
        return
    cxp, cyp = (x0 + x1) / 2 + U(-0.2, 0.2) * S, (y0 + y1) / 2
    pts = []
    for i in range(21):
        t = i / 20
        pts.append(((1 - t) ** 2 * x0 + 2 * t * (1 - t) * cxp + t * t * x1,
                    (1 - t) ** 2 * y0 + 2 * t * (1 - t) * cyp + t * t * y1))
    green = hsv(U(80, 130), U(0.45, 0.8), U(0.3, 0.6))
    w = max(2, int(pose.rho * S * U(0.035, 0.07)))
    d.line(pts, fill=_rgb8(green * 0.75), width=w, joint="curve")
    d.line([(x + w * 0.2, y) for x, y in pts], fill=_rgb8(green * 1.15), width=max(1, w // 3), joint="curve")
    for _ in range(int(rng.choice([0, 1, 1, 2]))):
        i = int(rng.integers(6, 18))
        (xa, ya), (xb, yb) = pts[i], pts[i + 1]
        tang = math.atan2(yb - ya, xb - xa) + math.pi  # pointing up the stem
        side = rng.choice([-1, 1])
        ang = tang + side * math.radians(U(35, 75))
        L, wd = pose.rho * S * U(0.45, 0.85), U(0.16, 0.3)
        outline = _leaf_outline(xa, ya, ang, L, L * wd, side * U(0.0, 0.25))
        half = len(outline) // 2
        mid = outline[:1] + [((lx + rx) / 2, (ly + ry) / 2) for (lx, ly), (rx, ry)
                             in zip(outline[1:half], outline[-1:half:-1])] + [outline[half]]
        leaf = hsv(U(80, 130), U(0.45, 0.8), U(0.3, 0.6))
        d.polygon(outline[:half + 1] + mid[::-1], fill=_rgb8(leaf))
        d.polygon(mid + outline[half:], fill=_rgb8(leaf * 0.72))
        d.line(mid, fill=_rgb8(leaf * 1.2), width=max(1, w // 3))
