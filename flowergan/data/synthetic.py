"""Procedural flowers in numpy/PIL: varied, natural-looking, anti-aliased and deterministic per (seed, index).

Each image is a scene: a defocused background (foliage, sky, dark or garden), sometimes a blurred second flower,
a stem with leaves, and a flower head built from layers of petals. A petal is a shape in its own frame (along
`a`, across `b`) with half-width W * h(t), h(t) = t^p (1-t)^q / max, t = position along the petal, plus notched,
fringed or ruffled tips; petals overlap in a consistent cyclic order, shade towards their edges, carry veins,
throat colours and spots; the head is foreshortened (tilt) and rotated. Edges are soft analytically (signed
distance / pixel size) and the scene is drawn at 1.5-2x the target size, then reduced with Lanczos.
Families (the class labels of --labels-by-family): see FAMILIES.
"""

from __future__ import annotations

import colorsys
import logging
import math
import multiprocessing as mp
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from flowergan.data.archive import (
    DatasetZipWriter,
    archive_name,
    check_output,
    summary_path,
    write_json_atomic,
)
from flowergan.data.errors import DataError
from flowergan.data.images import encode_png
from flowergan.data.render import Head, Layer, Pose, draw_background, draw_head, draw_stamens, draw_stem
from flowergan.data.render import hsv as _hsv

log = logging.getLogger(__name__)

FAMILIES = ("daisy", "sunflower", "rose", "five-petal", "lily", "carnation", "poppy")

# Hue ranges in degrees, saturation and value ranges of petal colours.
PALETTES = {
    "white": ((0, 360), (0.0, 0.07), (0.9, 1.0)),
    "cream": ((40, 55), (0.12, 0.3), (0.93, 1.0)),
    "yellow": ((44, 58), (0.7, 1.0), (0.9, 1.0)),
    "orange": ((20, 36), (0.75, 1.0), (0.9, 1.0)),
    "red": ((-8, 6), (0.75, 0.95), (0.65, 0.9)),
    "crimson": ((335, 352), (0.75, 0.95), (0.5, 0.8)),
    "pink": ((322, 350), (0.25, 0.6), (0.88, 1.0)),
    "magenta": ((298, 325), (0.55, 0.85), (0.7, 0.95)),
    "purple": ((262, 290), (0.45, 0.75), (0.5, 0.85)),
    "blue": ((218, 245), (0.4, 0.7), (0.7, 0.95)),
    "lavender": ((250, 278), (0.18, 0.4), (0.85, 1.0)),
    "peach": ((12, 30), (0.3, 0.5), (0.95, 1.0)),
}
FAMILY_PALETTES = {
    "daisy": ["white", "white", "white", "yellow", "pink", "purple", "lavender", "orange", "magenta"],
    "sunflower": ["yellow", "yellow", "yellow", "orange", "orange", "red"],
    "rose": ["red", "crimson", "pink", "pink", "white", "yellow", "peach", "orange", "magenta"],
    "five-petal": ["pink", "white", "yellow", "purple", "blue", "red", "magenta", "lavender", "cream"],
    "lily": ["white", "pink", "orange", "yellow", "red", "peach", "magenta", "cream"],
    "carnation": ["red", "pink", "white", "crimson", "magenta", "peach"],
    "poppy": ["red", "red", "orange", "white", "pink", "yellow", "purple"],
}


def _palette_color(rng: np.random.Generator, name: str) -> np.ndarray:
    (h0, h1), (s0, s1), (v0, v1) = PALETTES[name]
    return _hsv(rng.uniform(h0, h1), rng.uniform(s0, s1), rng.uniform(v0, v1))


def _mix(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return (a * (1 - t) + b * t).astype(np.float32)


def _layer(rng, n, length, overlap, p, q, base, tip, offset=None, **kw) -> Layer:
    jit = rng.uniform(-1, 1, size=(n, 4)).astype(np.float32)
    off = rng.uniform(0, 2 * math.pi) if offset is None else offset
    return Layer(n=n, length=length, overlap=overlap, p=p, q=q, base=base, tip=tip, offset=off, rng_jit=jit, **kw)


def _colors(rng, family):
    """(tip colour, base colour, palette name) of a family's petals, with natural gradients to the base."""
    name = FAMILY_PALETTES[family][rng.integers(len(FAMILY_PALETTES[family]))]
    tip = _palette_color(rng, name)
    if name == "white":
        base = _mix(tip, _hsv(rng.uniform(45, 90), 0.5, 0.95), rng.uniform(0.1, 0.45))
    elif rng.random() < 0.3:
        base = _mix(tip, _palette_color(rng, ["white", "yellow", "cream"][rng.integers(3)]), rng.uniform(0.4, 0.9))
    else:
        h, s, v = colorsys.rgb_to_hsv(*tip)
        base = _hsv(h * 360 + rng.uniform(-12, 12), s * rng.uniform(1.0, 1.3), v * rng.uniform(0.65, 0.95))
    return tip, base, name


def _design(rng: np.random.Generator, family: str) -> Head:
    """Random parameters of one flower head of `family`."""
    tip, base, pal = _colors(rng, family)
    U = rng.uniform
    golden = math.pi * (3 - math.sqrt(5))
    layers: list[Layer] = []
    if family == "daisy":
        n = int(rng.integers(13, 30))
        p, q = U(0.2, 0.4), U(0.15, 0.35)
        teeth = (3, U(0.0, 0.12)) if rng.random() < 0.6 else (0, 0.0)
        off = U(0, 6.3)
        for j in range(int(rng.integers(1, 3))):
            layers.append(_layer(rng, n, 1.0 - 0.08 * j, U(0.55, 0.95), p, q, base, tip, off + j * math.pi / n,
                                 a0=0.1, fringe=teeth, vein=(U(0.05, 0.15), int(rng.integers(2, 5))),
                                 cup=U(0.1, 0.3), gamma=U(0.4, 1.0)))
        disc_r = U(0.17, 0.3)
        dc = _hsv(U(35, 52), U(0.8, 1.0), U(0.8, 1.0))
        return Head(layers, disc_r, dc, _hsv(U(28, 40), 0.9, U(0.6, 0.8)), "florets")
    if family == "sunflower":
        n = int(rng.integers(18, 32))
        for j in range(2):
            layers.append(_layer(rng, n, 1.0 - 0.1 * j, U(0.7, 1.0), U(0.4, 0.55), U(0.8, 1.2),
                                 _mix(base, tip, 0.3), tip, a0=0.2, vein=(U(0.1, 0.25), int(rng.integers(3, 6))),
                                 cup=U(0.2, 0.4), ruffle=U(0, 0.08)))
        disc_r = U(0.3, 0.45)
        return Head(layers, disc_r, _hsv(U(20, 35), U(0.6, 0.9), U(0.1, 0.25)),
                    _hsv(U(25, 40), U(0.7, 0.9), U(0.35, 0.55)), "florets")
    if family == "rose":
        nl = int(rng.integers(4, 7))
        dark = _hsv(*[c * f for c, f in zip(colorsys.rgb_to_hsv(*tip), (360, 1.05, 0.55))])
        off = U(0, 6.3)
        for j in range(nl):
            f = j / (nl - 1)
            layers.append(_layer(rng, 5, 1.0 * (0.3 / 1.0) ** f, U(1.3, 1.7), U(0.45, 0.6), U(0.35, 0.5),
                                 _mix(tip, dark, 0.3 + 0.5 * f), _mix(tip, dark, 0.6 * f), off + j * golden,
                                 a0=0.0, cup=U(0.3, 0.5), ruffle=U(0, 0.05), throat=0.35,
                                 throat_col=dark, gamma=0.8, picotee=0.25 if rng.random() < 0.5 else 0.0,
                                 edge_col=_mix(tip, np.ones(3, np.float32), 0.4)))
        return Head(layers, 0.07, dark * 0.8, dark, "bud")
    if family == "five-petal":
        n = int(rng.choice([5, 5, 5, 4, 6]))
        eye = _palette_color(rng, ["white", "yellow", "cream"][rng.integers(3)]) if rng.random() < 0.5 else \
            _mix(tip, np.zeros(3, np.float32), U(0.2, 0.5))
        layers.append(_layer(rng, n, 1.0, U(1.0, 1.45), U(0.65, 0.95), U(0.3, 0.45), base, tip, a0=0.04,
                             notch=U(0.1, 0.3) if rng.random() < 0.5 else 0.0,
                             vein=(U(0.08, 0.25), int(rng.integers(5, 10))), cup=U(0.15, 0.3),
                             throat=U(0.3, 0.8), throat_col=eye, ruffle=U(0, 0.06), gamma=U(0.6, 1.2)))
        disc_r = U(0.07, 0.13)
        dc = [_hsv(U(50, 90), U(0.4, 0.8), U(0.7, 0.95)), _hsv(U(40, 55), 0.9, 0.95), _hsv(0, 0, U(0.1, 0.3))]
        dcol = dc[rng.integers(3)]
        k = int(rng.integers(10, 26))
        st = [(U(0, 6.3), disc_r * U(1.1, 1.9), U(0.018, 0.03)) for _ in range(k)]
        return Head(layers, disc_r, dcol, _mix(dcol, np.zeros(3, np.float32), 0.3), "plain", st,
                    stamen_col=(240, 215, 70) if rng.random() < 0.7 else (245, 245, 235))
    if family == "lily":
        spots = U(0.25, 0.6) if rng.random() < 0.6 else 0.0
        spot_col = _mix(tip, np.array([0.25, 0.0, 0.1], np.float32), 0.75)
        off = U(0, 6.3)
        n_per = int(rng.choice([3, 3, 3, 4]))
        for j in range(2):
            layers.append(_layer(rng, n_per, 1.0 - 0.06 * j, U(0.4, 0.65) * 3 / n_per, U(0.4, 0.55), U(0.9, 1.3),
                                 base, tip, off + j * math.pi / n_per, a0=0.03, vein=(U(0.15, 0.3), 1),
                                 cup=U(0.3, 0.5), spots=spots, spot_col=spot_col, ruffle=U(0, 0.08),
                                 throat=U(0.2, 0.6), throat_col=_hsv(U(50, 90), 0.5, 0.9), gamma=U(0.5, 1.0)))
        st = [(off + U(0, 6.3), U(0.45, 0.7), U(0.03, 0.05)) for _ in range(6)]
        return Head(layers, 0.06, _hsv(90, 0.5, 0.7), _hsv(90, 0.5, 0.5), "plain", st,
                    stamen_col=(150, 70, 30) if rng.random() < 0.6 else (230, 160, 40), filaments=True)
    if family == "carnation":
        nl = int(rng.integers(3, 6))
        teeth = (int(rng.integers(7, 13)), U(0.03, 0.07))
        pic = U(0.4, 0.9) if rng.random() < 0.3 else 0.0
        edge = _palette_color(rng, ["white", "red", "crimson"][rng.integers(3)])
        dark = _mix(tip, np.zeros(3, np.float32), 0.35)
        off = U(0, 6.3)
        for j in range(nl):
            f = j / (nl - 1)
            layers.append(_layer(rng, int(rng.integers(6, 10)), 1.0 * (0.4 ** f), U(1.3, 1.6),
                                 U(0.7, 0.9), U(0.15, 0.25), _mix(tip, dark, 0.4 * f + 0.3), _mix(tip, dark, 0.4 * f),
                                 off + j * golden, a0=0.0, fringe=teeth, ruffle=U(0.12, 0.25), cup=U(0.2, 0.4),
                                 picotee=pic, edge_col=edge, vein=(U(0.05, 0.15), int(rng.integers(3, 6)))))
        return Head(layers, 0.05, dark, dark, "bud")
    # poppy
    n = int(rng.choice([4, 4, 5, 6]))
    blotch = rng.random() < 0.6
    off = U(0, 6.3)
    for j in range(2 if n == 4 else 1):
        layers.append(_layer(rng, n, 1.0 - 0.08 * j, U(1.3, 1.7), U(0.55, 0.75), U(0.22, 0.35), base, tip,
                             off + j * math.pi / n, a0=0.02, ruffle=U(0.05, 0.15), cup=U(0.2, 0.4),
                             throat=U(0.4, 0.8) if blotch else 0.0, throat_col=_hsv(U(280, 330), 0.5, 0.08),
                             vein=(U(0.05, 0.15), int(rng.integers(6, 12))), gamma=U(0.4, 0.9),
                             fringe=(int(rng.integers(2, 5)), U(0.05, 0.12)) if rng.random() < 0.3 else (0, 0.0)))
    disc_r = U(0.1, 0.17)
    k = int(rng.integers(25, 60))
    st = [(U(0, 6.3), disc_r * U(1.15, 1.9), U(0.012, 0.022)) for _ in range(k)]
    return Head(layers, disc_r, _hsv(U(70, 100), U(0.3, 0.6), U(0.4, 0.7)), _hsv(90, 0.4, 0.35), "pod", st,
                stamen_col=(30, 20, 30) if blotch else (230, 200, 60))


def supersampling(resolution: int) -> float:
    """Drawing scale: 2x the target up to 32 px, 1.5x above (edges are also soft analytically, so a larger
    scale looked the same while costing 1.5-1.7x the time)."""
    return 2.0 if resolution <= 32 else 1.5


def _pose(rng: np.random.Generator, rho: tuple[float, float], spread: float) -> Pose:
    U = rng.uniform
    k = U(0.55, 1.0) if rng.random() < 0.7 else 1.0
    a, g = U(0, 2 * math.pi), U(0.05, 0.2)
    return Pose(cx=U(-spread, spread), cy=U(-spread, spread), rho=U(*rho), k=k, beta=U(0, 2 * math.pi),
                light=(g * math.cos(a), g * math.sin(a)))


def render_flower(seed: int, index: int, resolution: int, family: int | None = None) -> tuple[np.ndarray, int]:
    """One procedural flower photo, uint8 [resolution, resolution, 3], and its family index (FAMILIES).

    Deterministic in (seed, index): the random stream is SeedSequence([seed, index]), so results do not depend on
    the order or the process images are drawn in.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, index]))
    fam = int(rng.integers(len(FAMILIES))) if family is None else int(family)
    S = int(round(resolution * supersampling(resolution)))
    img = draw_background(rng, S)
    if rng.random() < 0.3:  # a second, defocused flower behind
        far = _pose(rng, (0.25, 0.45), 0.8)
        canvas = np.asarray(img, np.float32) / 255
        draw_head(canvas, _design(rng, FAMILIES[int(rng.integers(len(FAMILIES)))]), far)
        img = Image.fromarray((np.clip(canvas, 0, 1) * 255 + 0.5).astype(np.uint8))
        img = img.filter(ImageFilter.GaussianBlur(S * 0.012))
    head = _design(rng, FAMILIES[fam])
    pose = _pose(rng, (0.45, 1.0), 0.25)
    draw_stem(img, rng, pose)
    canvas = np.asarray(img, np.float32) / 255
    draw_head(canvas, head, pose)
    img = Image.fromarray((np.clip(canvas, 0, 1) * 255 + 0.5).astype(np.uint8))
    draw_stamens(img, head, pose)
    img = img.resize((resolution, resolution), Image.Resampling.LANCZOS)
    out = np.asarray(img, np.float32) / 255
    X = (np.arange(resolution, dtype=np.float32) + 0.5) / resolution * 2 - 1
    vignette = 1 - rng.uniform(0, 0.3) * (X[None, :] ** 2 + X[:, None] ** 2) / 2
    grade = rng.normal(1.0, 0.03, 3).astype(np.float32) * rng.uniform(0.9, 1.08)
    out = out * vignette[..., None] * grade + rng.normal(0, 0.008, out.shape).astype(np.float32)
    return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8), fam


def _render_png(job: tuple[int, int, int]) -> tuple[int, bytes, int]:
    """Worker task: (seed, index, resolution) -> (index, PNG bytes, family)."""
    seed, index, resolution = job
    arr, fam = render_flower(seed, index, resolution)
    return index, encode_png(Image.fromarray(arr)), fam


def prepare_synthetic(out: str | os.PathLike, *, count: int = 1000, resolution: int = 128, seed: int = 0,
                      labels_by_family: bool = False, workers: int | None = None, overwrite: bool = False,
                      progress: bool = True) -> dict[str, Any]:
    """Render `count` procedural flowers into the dataset zip `out` (official layout), in parallel.

    Image i is render_flower(seed, i, resolution), so the zip is byte-identical for any worker count.
    labels_by_family: class = index in FAMILIES (7 classes). Returns the summary (also saved beside `out`).
    """
    from tqdm import tqdm

    from flowergan.data.prepare import check_resolution, default_workers

    t0 = time.perf_counter()
    check_resolution(resolution)
    if count < 1:
        raise DataError(f"--count {count}: need at least one image")
    out_path = check_output(out, overwrite)
    nworkers = max(1, min(workers or default_workers(), count))
    jobs = ((seed, i, resolution) for i in range(count))
    families: list[int] = []
    with DatasetZipWriter(out_path, overwrite) as writer, \
            tqdm(total=count, unit="img", desc="synthetic", disable=not progress, leave=False) as bar:
        if nworkers == 1:
            results = map(_render_png, jobs)
            pool = None
        else:
            pool = mp.get_context("spawn").Pool(nworkers)
            results = pool.imap(_render_png, jobs, chunksize=8)
        try:
            for index, png, fam in results:
                writer.add(archive_name(index), png)
                families.append(fam)
                bar.update(1)
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
        labels = [[archive_name(i), f] for i, f in enumerate(families)] if labels_by_family else None
        writer.commit(labels, class_names=list(FAMILIES) if labels_by_family else None)
    seconds = time.perf_counter() - t0
    per_family = {name: families.count(i) for i, name in enumerate(FAMILIES)}
    summary = {
        "output": str(out_path), "source": "synthetic", "count": count, "resolution": resolution, "seed": seed,
        "labels": {"by": "family", "classes": list(FAMILIES), "per_class": per_family} if labels_by_family else None,
        "families": per_family, "workers": nworkers, "seconds": round(seconds, 3),
        "images_per_s": round(count / seconds, 1),
    }
    write_json_atomic(summary_path(out_path), summary)
    log.debug("wrote %s: %d procedural flowers at %dx%d (%.1f img/s)", out_path, count, resolution, resolution,
             count / seconds)
    return summary


def save_grid(path: str | os.PathLike, *, count: int = 64, resolution: int = 128, seed: int = 0,
              columns: int = 8) -> Path:
    """Save a PNG grid of the first `count` flowers of `seed` (as prepare_synthetic would render them)."""
    rows = -(-count // columns)
    grid_img = np.zeros((rows * resolution, columns * resolution, 3), np.uint8)
    for i in range(count):
        r, c = divmod(i, columns)
        grid_img[r * resolution:(r + 1) * resolution, c * resolution:(c + 1) * resolution] = \
            render_flower(seed, i, resolution)[0]
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid_img).save(p, optimize=True)
    return p
