"""Fixtures for the ecosystem tests: a tiny random-weight model folder, one thread, a private cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from testkit import make_tiny, one_thread

from flowergan.networks.store import write_model_dir

_one_thread = pytest.fixture(autouse=True)(one_thread)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWERGAN_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    cfg, G, D = make_tiny()
    return write_model_dir(tmp_path_factory.mktemp("eco") / "tiny", cfg, {"G": G, "G_ema": G, "D": D})
