"""bench/docs_figures.py, the script behind the docs' figures, still runs: on a random-weight `tiny` model, into a
temporary folder, writing every figure at a readable size."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ["fig-mix.png", "fig-truncation.png", "fig-edit-strip.png", "fig-walk-grid.png", "fig-progress.png"]


@pytest.mark.slow
def test_docs_figures_script_writes_every_figure(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), FLOWERGAN_CACHE=str(tmp_path / "cache"))
    docs_images = {f: f.stat().st_mtime_ns for f in (ROOT / "docs" / "images").iterdir()}
    p = subprocess.run([sys.executable, "bench/docs_figures.py", "--out", str(tmp_path / "figs")], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    for name in FIGURES:
        with Image.open(tmp_path / "figs" / name) as im:
            assert min(im.size) >= 200, (name, im.size)  # labeled figures, not bare 32-px tiles
    assert {f: f.stat().st_mtime_ns for f in (ROOT / "docs" / "images").iterdir()} == docs_images  # untouched
