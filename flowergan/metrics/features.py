"""Feature extraction for the metrics: real images from a dataset (with a statistics cache) and images
from a generator seen only through its protocol (`G.z_dim`, `G.c_dim`, `G(z, c)` -> [N, C, H, W] in [-1, 1]).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flowergan.infra import atomic_write, to_uint8_nchw

from .download import cache_dir

log = logging.getLogger(__name__)

__all__ = ["FeatureStats", "as_rgb", "dataset_features", "dataset_fingerprint", "generator_features",
           "open_dataset", "sample_labels", "to_uint8"]

CACHE_VERSION = 1


class FeatureStats:
    """Running feature statistics as in the official code: all features and/or mean and (biased) covariance.

    Mean and covariance are accumulated in float64: mu = sum(x) / n, sigma = sum(x x^T) / n - mu mu^T.
    """

    def __init__(self, capture_all: bool = False, capture_mean_cov: bool = False, max_items: int | None = None):
        self.capture_all, self.capture_mean_cov, self.max_items = capture_all, capture_mean_cov, max_items
        self.num_items = 0
        self.num_features: int | None = None
        self.all_features: list[np.ndarray] = []
        self.raw_mean: np.ndarray | None = None
        self.raw_cov: np.ndarray | None = None

    def is_full(self) -> bool:
        return self.max_items is not None and self.num_items >= self.max_items

    def append(self, x: np.ndarray | torch.Tensor) -> None:
        """Add features `[N, D]` (items beyond `max_items` are dropped)."""
        if isinstance(x, torch.Tensor):
            x = x.detach().to(torch.float32).cpu().numpy()
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"features must be [N, D], got shape {x.shape}")
        if self.num_features is None:
            self.num_features = x.shape[1]
            if self.capture_mean_cov:
                self.raw_mean = np.zeros([x.shape[1]], dtype=np.float64)
                self.raw_cov = np.zeros([x.shape[1], x.shape[1]], dtype=np.float64)
        elif x.shape[1] != self.num_features:
            raise ValueError(f"features have {x.shape[1]} dimensions, earlier ones had {self.num_features}")
        if self.max_items is not None and self.num_items + x.shape[0] > self.max_items:
            x = x[: max(self.max_items - self.num_items, 0)]
        self.num_items += x.shape[0]
        if self.capture_all:
            self.all_features.append(x)
        if self.capture_mean_cov:
            x64 = x.astype(np.float64)
            self.raw_mean += x64.sum(axis=0)
            self.raw_cov += x64.T @ x64

    def get_all(self) -> np.ndarray:
        """All features `[N, D]` (float32)."""
        if not self.capture_all:
            raise ValueError("these statistics did not keep the features (capture_all=False)")
        if not self.all_features:
            return np.zeros([0, self.num_features or 0], dtype=np.float32)
        return np.concatenate(self.all_features, axis=0)

    def get_mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        """(mu `[D]`, sigma `[D, D]`), float64."""
        if self.num_items == 0:
            raise ValueError("no features were collected")
        if not self.capture_mean_cov:
            x = self.get_all().astype(np.float64)
            mean = x.mean(axis=0)
            return mean, x.T @ x / x.shape[0] - np.outer(mean, mean)
        mean = self.raw_mean / self.num_items
        return mean, self.raw_cov / self.num_items - np.outer(mean, mean)

    def save(self, path: str | os.PathLike) -> None:
        """Write to an .npz (atomically); loading never unpickles."""
        arrays: dict[str, np.ndarray] = {"num_items": np.array(self.num_items)}
        if self.capture_all:
            arrays["features"] = self.get_all()
        if self.capture_mean_cov:
            arrays["mu"], arrays["sigma"] = self.get_mean_cov()
        atomic_write(path, lambda tmp: np.savez(tmp, **arrays))  # the temp name keeps the .npz suffix

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureStats:
        with np.load(path, allow_pickle=False) as z:
            has_all, has_mc = "features" in z.files, "mu" in z.files
            st = cls(capture_all=has_all, capture_mean_cov=has_mc)
            st.num_items = int(z["num_items"])
            if has_all:
                st.all_features = [z["features"]]
                st.num_features = z["features"].shape[1]
            if has_mc:
                mu, sigma = z["mu"], z["sigma"]
                st.num_features = mu.shape[0]
                st.raw_mean = mu * st.num_items
                st.raw_cov = (sigma + np.outer(mu, mu)) * st.num_items
        return st


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """Generator output `[N, C, H, W]` in [-1, 1] -> uint8 `[N, C, H, W]`, exactly as the official code converts."""
    return to_uint8_nchw(img)


def as_rgb(images: torch.Tensor) -> torch.Tensor:
    """`[N, C, H, W]` with C = 1 or 3 -> `[N, 3, H, W]` (grayscale repeated, as the official code does)."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images [N, 1 or 3, H, W], got shape {tuple(images.shape)}")
    return images.repeat(1, 3, 1, 1) if images.shape[1] == 1 else images


def open_dataset(path: str | os.PathLike, use_labels: bool = False) -> Any:
    """The real images: `flowergan.data.dataset.ImageDataset` (folder or official-layout zip)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"dataset {path} does not exist: pass a folder of images or a dataset zip "
                                f"(see `flowergan prepare --help`)")
    from flowergan.data.dataset import ImageDataset

    return ImageDataset(str(path), use_labels=use_labels)


def dataset_fingerprint(path: str | os.PathLike) -> dict[str, Any]:
    """What identifies a dataset's content for the cache: absolute path, total size, latest mtime, file count."""
    p = Path(path).resolve()
    if p.is_dir():
        size, mtime, count = 0, p.stat().st_mtime_ns, 0
        for root, _dirs, files in os.walk(p):
            for name in files:
                st = os.stat(os.path.join(root, name))
                size, mtime, count = size + st.st_size, max(mtime, st.st_mtime_ns), count + 1
        return {"path": str(p), "size": size, "mtime_ns": mtime, "files": count}
    st = p.stat()
    return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _cache_file(path: str | os.PathLike, num: int, resolution: Any, detector_id: str, what: str) -> Path:
    key = dict(dataset_fingerprint(path), num=num, resolution=resolution, detector=detector_id,
               version=CACHE_VERSION)
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return cache_dir("metrics") / f"{Path(path).name}-{num}-{digest}-{what}.npz"


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not enabled, leave=False)


def dataset_features(path: str | os.PathLike, detector: Callable, *, max_items: int | None = None,
                     capture_all: bool = False, capture_mean_cov: bool = True, batch_size: int = 32,
                     cache: bool = True, progress: bool = True, dataset: Any = None) -> FeatureStats:
    """Features of the first `max_items` images of a dataset (all when None), in dataset order.

    `detector`: callable `uint8 [N, 3, H, W] -> [N, D]`. With `cache` and a detector that has a
    `sha256` attribute, the result is kept under `<cache>/metrics/`, keyed by dataset path, size,
    mtime, item count, resolution and detector; a later call with the same key reads it back.
    """
    ds = dataset if dataset is not None else open_dataset(path)
    num = len(ds) if max_items is None else min(len(ds), max_items)
    if num == 0:
        raise ValueError(f"dataset {path} has no images")
    det_id = getattr(detector, "sha256", None)
    files: dict[str, Path] = {}
    if cache and det_id:
        res = getattr(ds, "resolution", None)
        files = {w: _cache_file(path, num, res, det_id, w) for w in ("all", "stats")}
        for what in (("all",) if capture_all else ("stats", "all")):
            if files[what].is_file():
                log.info("using cached dataset features %s", files[what])
                return FeatureStats.load(files[what])
    stats = FeatureStats(capture_all=capture_all, capture_mean_cov=capture_mean_cov, max_items=num)
    with _progress(num, f"features {Path(path).name}", progress) as bar:
        for start in range(0, num, batch_size):
            idx = range(start, min(start + batch_size, num))
            if hasattr(ds, "get_batch"):  # ImageDataset's vectorised accessor
                images = torch.from_numpy(np.ascontiguousarray(ds.get_batch(list(idx))[0]))
            else:
                images = torch.from_numpy(np.stack([np.asarray(ds[i][0]) for i in idx]))
            stats.append(detector(as_rgb(images)))
            bar.update(len(idx))
    if files:
        stats.save(files["all" if capture_all else "stats"])
    return stats


def sample_labels(G: Any, dataset: Any, num: int, seed: int = 0) -> np.ndarray | None:
    """`num` labels drawn (uniformly, with replacement) from a labelled dataset for a conditional G.

    None if `G.c_dim == 0`.
    """
    c_dim = int(getattr(G, "c_dim", 0))
    if c_dim == 0:
        return None
    if dataset is None:
        raise ValueError(f"the generator is conditional (c_dim={c_dim}): pass a dataset with labels (--data) "
                         "so labels can be sampled from it")
    if getattr(dataset, "label_dim", 0) != c_dim:
        raise ValueError(f"the generator needs labels of size {c_dim}, the dataset gives "
                         f"{getattr(dataset, 'label_dim', 0)}: open it with labels (use_labels=True) or use the "
                         "dataset the network was trained on")
    rng = np.random.RandomState(seed)
    idx = rng.randint(len(dataset), size=num)
    return np.stack([np.asarray(dataset[int(i)][1], dtype=np.float32) for i in idx])


def generator_features(G: Any, detector: Callable, num: int, *, batch_size: int = 32,
                       device: torch.device | str = "cpu", labels: np.ndarray | None = None, seed: int = 0,
                       capture_all: bool = False, capture_mean_cov: bool = True,
                       G_kwargs: dict | None = None, progress: bool = True) -> FeatureStats:
    """Features of `num` images `G(z, c)` with z ~ N(0, I) (seeded, drawn on the CPU) and c from `labels`.

    `labels`: `[L, c_dim]` rows cycled through (see `sample_labels`), or None for an unconditional G.
    G must already live on `device`. Images are converted with `to_uint8` before the detector.
    """
    if num < 1:
        raise ValueError(f"number of generated images must be >= 1, got {num}")
    z_dim, c_dim = int(G.z_dim), int(getattr(G, "c_dim", 0))
    if c_dim > 0 and labels is None:
        raise ValueError(f"the generator is conditional (c_dim={c_dim}) but no labels were given")
    gen = torch.Generator().manual_seed(seed)
    stats = FeatureStats(capture_all=capture_all, capture_mean_cov=capture_mean_cov, max_items=num)
    with _progress(num, "features generated", progress) as bar, torch.no_grad():
        for start in range(0, num, batch_size):
            b = min(batch_size, num - start)
            z = torch.randn([b, z_dim], generator=gen).to(device)
            if c_dim > 0:
                c = torch.from_numpy(labels[np.arange(start, start + b) % len(labels)]).to(device)
            else:
                c = torch.zeros([b, 0], device=device)
            img = G(z, c, **(G_kwargs or {}))
            stats.append(detector(as_rgb(to_uint8(img))))
            bar.update(b)
    return stats
