"""Shared fixtures: golden file paths, deterministic torch, slow-test opt-in, a local HTTP server."""

from __future__ import annotations

import functools
import http.server
import os
import threading
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


@pytest.fixture
def http_dir(tmp_path):
    """(root, url): an http.server on 127.0.0.1 serving the new folder tmp_path/www, for download tests."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
