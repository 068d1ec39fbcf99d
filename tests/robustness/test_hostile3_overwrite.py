"""Round 3: every output's companions obey --overwrite, a model's own files are never an export's target, a
failed or killed write leaves the old files and no temp file, and a full disk is exit 1 naming the file."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from surface_kit import fails, run, write_tiny

from flowergan.inference.loader import load_networks

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny(tmp_path_factory.mktemp("model") / "tiny")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _export(tiny, out, *extra):
    return run(["export", "--network", tiny, "--format", "torchscript", "--out", out, "--no-verify", *extra])


# ---- companions and the model's own files ------------------------------------------------------------
def test_export_companion_obeys_overwrite(tiny, tmp_path):
    out = tmp_path / "g.pt"
    (tmp_path / "g.pt.json").write_text("mine")          # only the companion exists
    fails(_export(tiny, out), 2, "g.pt.json already exists", "--overwrite")
    assert not out.exists() and (tmp_path / "g.pt.json").read_text() == "mine"
    res = _export(tiny, out, "--overwrite")
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "g.pt.json").read_text())["format"] == "torchscript"


def test_export_never_replaces_a_models_own_files(tiny, tmp_path):
    before = _snapshot(tiny)
    for out in (tiny / "config", tiny / "config.json", tiny / "weights.safetensors"):
        for extra in ((), ("--overwrite",)):
            fails(_export(tiny, out, *extra), 2, "would replace a file of the model")
    assert _snapshot(tiny) == before
    assert load_networks(tiny).G is not None  # the model still loads


def test_directions_does_not_replace_the_default_file_silently(tiny, tmp_path):
    import shutil

    model = tmp_path / "m"
    shutil.copytree(tiny, model)
    args = ["directions", "--network", model, "--num", 2, "--samples", 200]
    assert run(args).exit_code == 0
    default = model / "directions" / "sefa-all.safetensors"
    before = _snapshot(default.parent)
    fails(run(args + ["--seed", 1]), 2, "sefa-all.safetensors already exists", "flowergan serve", "--overwrite")
    assert _snapshot(default.parent) == before
    res = run(args + ["--seed", 1, "--overwrite"])
    assert res.exit_code == 0, res.output
    assert json.loads(default.with_suffix(".json").read_text())["seed"] == 1
    other = tmp_path / "other.safetensors"
    other.with_suffix(".json").write_text("{}")             # only the companion exists
    fails(run(args + ["--out", other]), 2, "other.json already exists")
    assert not other.exists()


# ---- failed writes ----------------------------------------------------------------------------------
def test_full_disk_during_export_keeps_the_old_files_and_leaves_no_temp(tiny, tmp_path, monkeypatch):
    import flowergan.export.writers as writers

    out = tmp_path / "g.pt"
    assert _export(tiny, out).exit_code == 0
    before = _snapshot(tmp_path)

    def full(module, args, G, spec, fmt, tmp):
        Path(tmp).write_bytes(b"half a file")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writers, "_write_graph", full)
    fails(_export(tiny, out, "--overwrite", "--truncation-psi", "0.5"), 1, str(out), "the disk is full",
          "free some space")
    assert _snapshot(tmp_path) == before                     # old pair intact, no temp file


def test_export_checks_free_space_before_writing(tiny, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 4096, 4096))
    fails(_export(tiny, tmp_path / "g.pt"), 1, "MB are free", "Nothing was written")
    assert list(tmp_path.iterdir()) == []


def test_export_removes_temp_files_left_by_a_dead_writer(tiny, tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = [tmp_path / f".g.{pid}-deadbeef.tmp.pt", tmp_path / f".g.pt.{pid}-deadbeef.tmp.json"]
    for p in stale:
        p.write_bytes(b"left by kill -9")
    assert _export(tiny, tmp_path / "g.pt").exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.pt", "g.pt.json"]


# ---- kill -9 during export --overwrite -----------------------------------------------------------------
def _pair_is_consistent(out: Path, G) -> float:
    """The file and its FILE.json belong together: the file's images equal the generator's at the json's psi."""
    info = json.loads(out.with_name(out.name + ".json").read_text())
    psi = info["truncation_psi"]
    m = torch.jit.load(str(out))
    z = torch.from_numpy(np.random.RandomState(3).randn(1, G.z_dim)).float()
    with torch.no_grad():
        ref = G(z, None, truncation_psi=psi, noise_mode="const").clamp(-1, 1)
        got = m(z)
    assert float((got - ref).abs().max()) < 1e-4, (psi, float((got - ref).abs().max()))
    return psi


@pytest.mark.slow
def test_kill_9_during_export_overwrite_loses_nothing(tiny, tmp_path):
    """Kill `export --overwrite` at random moments (import, load, trace, write, rename): each time the old
    FILE and FILE.json are there, whole and belonging together (or the new pair, whole); the next export removes
    the killed one's temp files."""
    G = load_networks(tiny).G.eval()
    out = tmp_path / "g.pt"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "flowergan", "export", "--network", str(tiny), "--format", "torchscript",
           "--out", str(out), "--no-verify", "--overwrite"]
    t0 = time.perf_counter()
    subprocess.run(cmd + ["--truncation-psi", "0.5"], check=True, env=env, capture_output=True)
    full = time.perf_counter() - t0
    assert _pair_is_consistent(out, G) == 0.5
    rng = random.Random(0)
    kills = 0
    for i in range(5):
        psi = 0.6 + 0.1 * i
        p = subprocess.Popen(cmd + ["--truncation-psi", str(psi)], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 1.0) * full)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait()
        assert _pair_is_consistent(out, G) in (0.5 + 0.1 * k for k in range(i + 2))  # an old or the new pair
    assert kills >= 3
    subprocess.run(cmd + ["--truncation-psi", "0.9"], check=True, env=env, capture_output=True)
    assert abs(_pair_is_consistent(out, G) - 0.9) < 1e-9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.pt", "g.pt.json"]  # no temp file left
