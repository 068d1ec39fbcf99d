"""Shared fixtures: golden file paths, deterministic torch, slow-test opt-in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# `--amp auto` follows the CPU (bf16 where it is native): pin "no native bf16" so that every test, and every
# subprocess a test starts, resolves the same settings on every machine. Tests of the probe unset it.
os.environ["FLOWERGAN_CPU_BF16"] = "0"

REPO = Path(__file__).resolve().parents[1]
GOLDEN_DIR = Path(os.environ.get("FLOWERGAN_GOLDEN", REPO.parent / "shared" / "golden"))


def pytest_collection_modifyitems(config, items):
    run_slow = os.environ.get("FLOWERGAN_SLOW", "") not in ("", "0") or "slow" in (config.getoption("-m") or "")
    if run_slow:
        return
    skip = pytest.mark.skip(reason="slow test: run with FLOWERGAN_SLOW=1 or -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    if not (GOLDEN_DIR / "golden_public.npz").is_file():
        pytest.skip(f"golden vectors not found in {GOLDEN_DIR} (set FLOWERGAN_GOLDEN)")
    return GOLDEN_DIR
