"""`flowergan export --format onnx` prints its own lines only (the exporter's internals are captured, shown with
--debug), and a dynamic batch axis is named "batch" in the file (the exporter would call it e.g. 's68')."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[2]


def _export(tiny_dir, out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    env.pop("FLOWERGAN_DEBUG", None)
    cmd = [sys.executable, "-m", "flowergan", *extra, "export", "--network", str(tiny_dir), "--format", "onnx",
           "--out", str(out), "--batch", "dynamic"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    return p


def _dims(path: Path) -> dict[str, list]:
    import onnx

    g = onnx.load(str(path)).graph
    return {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in [*g.input, *g.output]}


def test_onnx_export_prints_only_its_own_lines_and_names_the_batch_axis(tiny_dir, tmp_path):
    out = tmp_path / "tiny.onnx"
    p = _export(tiny_dir, out)
    lines = [ln for ln in (p.stdout + p.stderr).splitlines() if ln.strip()]
    # ours: the network loaded, what was written, its interface, the check
    assert len(lines) <= 5, "\n".join(lines)
    assert any(ln.startswith("network: ") for ln in lines) and any(ln.startswith("checked: max |onnx") for ln in lines)
    assert not any("torchvision" in ln or "initializer" in ln or "onnxscript" in ln for ln in lines), lines
    assert _dims(out) == {"z": ["batch", 64], "img": ["batch", 3, 32, 32]}


@pytest.mark.slow
def test_debug_shows_the_exporter_output(tiny_dir, tmp_path):
    quiet = _export(tiny_dir, tmp_path / "a.onnx")
    loud = _export(tiny_dir, tmp_path / "b.onnx", "--debug")
    assert len((loud.stdout + loud.stderr).splitlines()) > len((quiet.stdout + quiet.stderr).splitlines()) + 5
