"""Helpers for the web tests: a tiny random-weight Pipeline, a server in a thread, headless Chromium."""

from __future__ import annotations

import os
import shutil
import threading

import pytest
from testkit import make_tiny

from flowergan.inference import Pipeline
from flowergan.web import Limits, make_server


def tiny_pipeline(c_dim: int = 0) -> Pipeline:
    """A Pipeline around the shared random-weight `tiny` generator (see tests/testkit.py)."""
    return Pipeline(make_tiny(c_dim)[1])


class Running:
    """A server running in a background thread; `stop()` shuts it down."""

    def __init__(self, pipe: Pipeline, limits: Limits = Limits()):
        self.server = make_server(pipe, "127.0.0.1", 0, limits)
        self.url = self.server.url
        self.host, self.port = self.server.server_address[:2]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


CHROMIUM = os.environ.get("FLOWERGAN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def launch_browser():
    """Yield a headless Chromium (Playwright); skip the test when Chromium or Playwright is missing.
    Use as a fixture: `browser = pytest.fixture(scope="module")(launch_browser)`."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)) and not shutil.which("chromium"):
        pytest.skip(f"Chromium not found at {CHROMIUM}: install it with `apt-get update && apt-get install "
                    f"-y chromium` (as root) or run .ci/install-browser.sh")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as p:
        exe = CHROMIUM if os.path.isfile(CHROMIUM) else shutil.which("chromium")
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()
