"""Fixtures for the use-area tests: a tiny random-weight model on disk and its Pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest
from testkit import make_tiny, one_thread

from flowergan.networks.store import write_model_dir


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Never touch the user's cache or trust settings."""
    monkeypatch.setenv("FLOWERGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FLOWERGAN_VGG16", raising=False)
    monkeypatch.delenv("FLOWERGAN_TRUSTED_SHA256", raising=False)


_one_thread = pytest.fixture(autouse=True)(one_thread)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    cfg, G, D = make_tiny()
    return write_model_dir(tmp_path_factory.mktemp("use") / "tiny", cfg, {"G": G, "G_ema": G, "D": D})


@pytest.fixture(scope="session")
def cond_dir(tmp_path_factory) -> Path:
    cfg, G, D = make_tiny(c_dim=3, seed=1)
    return write_model_dir(tmp_path_factory.mktemp("use") / "cond", cfg, {"G": G, "G_ema": G, "D": D})


@pytest.fixture(scope="session")
def pipe(tiny_dir):
    import flowergan

    return flowergan.load(tiny_dir, device="cpu")
