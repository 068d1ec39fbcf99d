"""The metric registry and `compute()`, the one entry point the CLI and the trainer call."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .detectors import describe, resolve_inception, resolve_lpips, resolve_vgg16_features
from .distances import frechet_distance, kernel_inception_distance, precision_recall
from .features import dataset_features, generator_features, open_dataset, sample_labels
from .ppl import perceptual_path_length

log = logging.getLogger(__name__)

__all__ = ["METRICS", "MetricSpec", "compute", "fid_between", "scalars", "MIN_IMAGES_UNBIASED", "SAMPLE_SET_SKIPS"]

MIN_IMAGES_UNBIASED = 2000  # below this FID (and KID's subsets) say more about the count than about the images
SAMPLE_SET_SKIPS = ("grid.png",)  # files in a folder of samples that are not samples (`generate --grid` writes it)
_warned: set[tuple[str, int]] = set()


def warn_few_images(n: int, what: str) -> bool:
    """Log once per (what, n) that FID from `n` < 2,000 images is biased (it falls as n grows, so values from
    different n are not comparable) and far from the papers' 50,000. Returns True when it warned."""
    if n >= MIN_IMAGES_UNBIASED or (what, n) in _warned:
        return False
    _warned.add((what, n))
    log.warning("warning: %s has %d images: FID from fewer than %d is strongly biased upwards and only comparable "
                "with FID from the same count (papers use 50,000)", what, n, MIN_IMAGES_UNBIASED)
    return True


@dataclass(frozen=True)
class MetricSpec:
    """A registered metric: which feature network it uses and what it needs."""

    name: str
    network: str  # "inception", "vgg16" (features) or "lpips"
    needs_data: bool
    max_real: int | None  # official cap on real images (None: the whole dataset)
    description: str
    ppl: tuple[str, str, bool] | None = None  # (space, sampling, crop) for PPL variants


METRICS: dict[str, MetricSpec] = {
    "fid": MetricSpec("fid", "inception", True, None,
                      "Frechet Inception distance, pool3 features (official fid50k_full with --num 50000)"),
    "kid": MetricSpec("kid", "inception", True, 1_000_000,
                      "Kernel Inception distance, 100 subsets of <= 1000 (official kid50k_full; papers show x1e3)"),
    "pr": MetricSpec("pr", "vgg16", True, 200_000,
                     "Improved precision and recall, VGG16 features, k=3 (official pr50k3_full)"),
    "ppl_zfull": MetricSpec("ppl_zfull", "lpips", False, None, "PPL in Z, t ~ U(0,1), crop (works with G(z, c) only)",
                            ("z", "full", True)),
    "ppl_wfull": MetricSpec("ppl_wfull", "lpips", False, None, "PPL in W, t ~ U(0,1), crop", ("w", "full", True)),
    "ppl_zend": MetricSpec("ppl_zend", "lpips", False, None, "PPL in Z, t = 0, crop", ("z", "end", True)),
    "ppl_wend": MetricSpec("ppl_wend", "lpips", False, None, "PPL in W, t = 0, crop", ("w", "end", True)),
    "ppl2_wend": MetricSpec("ppl2_wend", "lpips", False, None, "PPL in W, t = 0, no crop (StyleGAN2 paper)",
                            ("w", "end", False)),
}
ALIASES = {"ppl": "ppl_zfull"}


def _parse(metrics: str | Sequence[str]) -> list[str]:
    names = [m.strip().lower() for m in (metrics.split(",") if isinstance(metrics, str) else metrics)]
    out = []
    for n in names:
        if not n:
            continue
        n = ALIASES.get(n, n)
        if n not in METRICS:
            raise ValueError(f"unknown metric {n!r}; available: {', '.join(sorted(METRICS) + sorted(ALIASES))}")
        if n not in out:
            out.append(n)
    if not out:
        raise ValueError("no metric given; available: " + ", ".join(sorted(METRICS) + sorted(ALIASES)))
    return out


def _cap(specs: list[MetricSpec], num_real: int | None) -> int | None:
    if num_real is not None:
        return num_real
    caps = [s.max_real for s in specs]
    return None if any(c is None for c in caps) else max(caps)


def compute(G: Any, metrics: str | Sequence[str], data_path: str | os.PathLike | None = None,
            num_gen: int = 50000, device: torch.device | str = "cpu", *, num_real: int | None = None,
            batch_size: int = 32, inception: Any = None, vgg16: Any = None, lpips: Any = None,
            allow_download: bool | None = None, cache: bool = True, seed: int = 0, G_kwargs: dict | None = None,
            progress: bool = True, kid_subsets: int = 100, pr_k: int = 3,
            on_result: Callable[[dict], None] | None = None) -> dict[str, dict]:
    """Compute several metrics of a generator against a dataset; returns `{name: record}`.

    `G`: anything with `z_dim`, `c_dim` and `G(z, c) -> [N, C, H, W]` in [-1, 1], already on `device`
    (PPL in W also uses `G.mapping` / `G.synthesis`). `metrics`: names or a comma list (see `METRICS`).
    `num_gen`: generated images (PPL: samples); `num_real`: real images (default: the official cap,
    i.e. the whole dataset for FID). `inception` / `vgg16` / `lpips`: a TorchScript path or an injected
    callable (`uint8 [N,3,H,W] -> [N,D]`; LPIPS: `float [N,3,H,W] in [0,255] -> [N,D]`); None finds
    them (see `detectors`). Generated features are shared between FID and KID.

    Each record: `{"metric", "value", "num_gen", "num_real", "detector", "seconds"}`; "value" is a
    float, or `{"precision": p, "recall": r}` for "pr". `on_result` is called with each record as
    soon as it is ready.
    """
    names = _parse(metrics)
    specs = [METRICS[n] for n in names]
    if num_gen < 1:
        raise ValueError(f"num_gen must be >= 1, got {num_gen}")
    if data_path is None and any(s.needs_data for s in specs):
        raise ValueError(f"metrics {', '.join(s.name for s in specs if s.needs_data)} compare with real images: "
                         "pass the dataset (data_path / --data)")
    if any(s.name in ("fid", "kid") for s in specs):
        warn_few_images(num_gen, "the generated set")
    conditional = int(getattr(G, "c_dim", 0)) > 0
    ds = ds_labels = None
    if data_path is not None:
        ds = open_dataset(data_path)
        ds_labels = open_dataset(data_path, use_labels=True) if conditional else None
    labels = sample_labels(G, ds_labels, num_gen, seed) if conditional else None
    results: dict[str, dict] = {}

    def emit(name: str, value: Any, num_real_used: int | None, det: Any, t0: float) -> None:
        rec = {"metric": name, "value": value, "num_gen": num_gen, "num_real": num_real_used,
               "detector": describe(det), "seconds": round(time.perf_counter() - t0, 3)}
        results[name] = rec
        if on_result is not None:
            on_result(rec)

    for network in ("inception", "vgg16"):
        group = [s for s in specs if s.network == network]
        if not group:
            continue
        t0 = time.perf_counter()
        if network == "inception":
            det = resolve_inception(inception, device, allow_download, progress)
        else:
            det = resolve_vgg16_features(vgg16, device, allow_download, progress)
        want_all = any(s.name in ("kid", "pr") for s in group)
        want_mc = any(s.name == "fid" for s in group)
        real = dataset_features(data_path, det, max_items=_cap(group, num_real), capture_all=want_all,
                                capture_mean_cov=want_mc, batch_size=batch_size, cache=cache, progress=progress,
                                dataset=ds)
        gen = generator_features(G, det, num_gen, batch_size=batch_size, device=device, labels=labels, seed=seed,
                                 capture_all=want_all, capture_mean_cov=want_mc, G_kwargs=G_kwargs,
                                 progress=progress)
        for s in group:
            if s.name == "fid":
                value: Any = frechet_distance(*real.get_mean_cov(), *gen.get_mean_cov())
            elif s.name == "kid":
                value = kernel_inception_distance(real.get_all(), gen.get_all(), num_subsets=kid_subsets, seed=seed)
            else:
                p, r = precision_recall(real.get_all(), gen.get_all(), k=pr_k, device=device)
                value = {"precision": p, "recall": r}
            emit(s.name, value, real.num_items, det, t0)

    ppl_specs = [s for s in specs if s.network == "lpips"]
    if ppl_specs:
        net = resolve_lpips(lpips if lpips is not None else vgg16, device, allow_download, progress)
        for s in ppl_specs:
            t0 = time.perf_counter()
            space, sampling, crop = s.ppl
            value = perceptual_path_length(G, net, num_gen, space=space, sampling=sampling, crop=crop,
                                           batch_size=max(1, batch_size // 4), device=device, labels=labels,
                                           seed=seed, progress=progress)
            emit(s.name, value, None, net, t0)
    return {n: results[n] for n in names}


def scalars(results: dict[str, dict]) -> dict[str, float]:
    """Flatten `compute()` records to `{name: float}` ("pr" gives "pr_precision" and "pr_recall")."""
    out: dict[str, float] = {}
    for name, rec in results.items():
        if isinstance(rec["value"], dict):
            out.update({f"{name}_{k}": float(v) for k, v in rec["value"].items()})
        else:
            out[name] = float(rec["value"])
    return out


def fid_between(path_a: str | os.PathLike, path_b: str | os.PathLike, num: int | None = None, *,
                detector: Any = None, device: torch.device | str = "cpu", batch_size: int = 32, cache: bool = True,
                allow_download: bool | None = None, progress: bool = True) -> dict:
    """FID between two image sets (folders or dataset zips), each limited to its first `num` images.

    Returns `{"metric": "fid", "value", "num_a", "num_b", "detector", "seconds"}`.
    """
    t0 = time.perf_counter()
    sets = [open_image_set(p, num) for p in (path_a, path_b)]  # both checked before any feature extraction
    det = resolve_inception(detector, device, allow_download, progress)
    stats = [dataset_features(p, det, max_items=num, batch_size=batch_size, cache=cache, progress=progress,
                              dataset=ds) for p, ds in zip((path_a, path_b), sets)]
    value = frechet_distance(*stats[0].get_mean_cov(), *stats[1].get_mean_cov())
    if not np.isfinite(value):
        log.warning("FID is not finite (%s): too few images for the feature dimension?", value)
    return {"metric": "fid", "value": value, "num_a": stats[0].num_items, "num_b": stats[1].num_items,
            "detector": describe(det), "seconds": round(time.perf_counter() - t0, 3)}


def open_image_set(path: str | os.PathLike, num: int | None = None) -> Any:
    """An image set for `fid_between`, checked whole before any feature is extracted: it exists, is a folder or a
    dataset zip of same-size square images (header check of every file), holds at least 2 images (of which the
    first `num` are used); fewer than 2,000 gets a warning. A folder's `grid.png` (written by `generate --grid`)
    is not one of its images."""
    from flowergan.data.dataset import ImageDataset
    from flowergan.data.errors import DataError

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{path}: does not exist; give a folder of images or a dataset zip")
    try:
        ds = ImageDataset(p, skip_names=SAMPLE_SET_SKIPS if p.is_dir() else ())
    except DataError as e:
        msg = str(e).split(" Re-create it:")[0].split(" Create one with:")[0]
        if "must have the same size" in msg or "must be square" in msg:
            msg += ("; FID reads each set as images of one size: move the other files out of the folder "
                    "(the two sets may differ in size)")
        raise DataError(msg) from None
    n = len(ds) if num is None else min(len(ds), num)
    if n < 2:
        raise DataError(f"{path}: FID needs at least 2 images, found {n}")
    warn_few_images(n, str(path))
    return ds
