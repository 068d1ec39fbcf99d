"""scripts/: setup_env.sh installs the extra it is asked for and takes the CPU build of torch where pip has no
configuration of its own (a dry run prints the pip commands); the demo's real-beside-generated picture."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CPU_INDEX = "--index-url https://download.pytorch.org/whl/cpu"


def _dry_run(extra: str, **env_changes: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k != "TORCH_INDEX_URL"}
    env.update({"SETUP_DRY_RUN": "1", "PIP_CONFIG_FILE": os.devnull})
    env.update({k: v for k, v in env_changes.items() if v is not None})
    p = subprocess.run(["bash", "scripts/setup_env.sh", extra], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return [ln[2:] for ln in p.stdout.splitlines() if ln.startswith("+ ")]


def _torch_line(cmds: list[str]) -> str:
    return next(c for c in cmds if "torch==2.13.0" in c)


@pytest.mark.skipif(sys.platform != "linux", reason="the CPU index is chosen on Linux only")
def test_unconfigured_pip_takes_the_cpu_build_of_torch():
    cmds = _dry_run("demo")
    assert _torch_line(cmds).endswith(CPU_INDEX)
    assert any(c.endswith("-e .[demo]") for c in cmds) and not any(".[test]" in c for c in cmds)
    assert not any(" -q " in c for c in cmds if "pip install" in c and "--upgrade pip" not in c)  # progress shown


def test_configured_pip_keeps_its_own_sources():
    assert CPU_INDEX not in _torch_line(_dry_run("test", PIP_FIND_LINKS="/opt/wheels"))
    assert _torch_line(_dry_run("test", TORCH_INDEX_URL="file:///mirror")).endswith("--index-url file:///mirror")
    assert any(c.endswith("-e .[test]") for c in _dry_run("test", PIP_FIND_LINKS="/opt/wheels"))


def test_an_unknown_extra_is_refused():
    p = subprocess.run(["bash", "scripts/setup_env.sh", "everything"], cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, SETUP_DRY_RUN="1"))
    assert p.returncode == 2 and "usage" in p.stderr


def test_demo_extra_is_part_of_the_test_extra():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(extras["demo"]) <= set(extras["test"]) and any(d.startswith("matplotlib") for d in extras["demo"])


def test_side_by_side_shows_both_images_unchanged(tmp_path):
    rs = np.random.RandomState(0)
    real, gen = (rs.randint(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(2))
    Image.fromarray(real).save(tmp_path / "r.png")
    Image.fromarray(gen).save(tmp_path / "g.png")
    p = subprocess.run([sys.executable, "scripts/side_by_side.py", str(tmp_path / "r.png"), str(tmp_path / "g.png"),
                        str(tmp_path / "o.png")], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    out = np.asarray(Image.open(tmp_path / "o.png"))
    assert out.shape == (20 + 64, 64 + 16 + 64, 3)
    assert np.array_equal(out[20:, :64], real) and np.array_equal(out[20:, 80:], gen)
    assert (out[20:, 64:80] == 255).all() and (out[:20] < 255).any()  # the gap is white, the captions drawn
