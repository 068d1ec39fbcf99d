"""bench/precision_race.py, the GPU script's fp16-against-fp32 learning stage (issue #12): its runs, packing and
comparison table, run here on the CPU as bench/gpu.sh's smoke mode would (FID itself needs the Inception file)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "precision_race.py"


def _module():
    spec = importlib.util.spec_from_file_location("precision_race", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_table_compares_each_seed_and_shows_the_seed_spread():
    rows = [("auto-s0", 8, 150.0), ("auto-s1", 8, 160.0), ("off-s0", 8, 148.0), ("off-s1", 8, 166.0),
            ("auto-s0", 40, 120.0), ("off-s0", 40, 125.5)]
    t = _module().table([{"run": r, "kimg": k, "fid": f} for r, k, f in rows]).splitlines()
    assert t[0] == "| kimg | auto-s0 | auto-s1 | off-s0 | off-s1 | auto - off per seed | seed spread auto / off |"
    assert t[2] == "| 8 | 150.0 | 160.0 | 148.0 | 166.0 | +2.0, -6.0 | 10.0 / 18.0 |"
    assert t[3] == "| 40 | 120.0 | - | 125.5 | - | -5.5 | - / - |"  # a point one seed did not reach


def _run(*args, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow
def test_train_packs_every_snapshot_of_both_precisions(tmp_path):
    data = tmp_path / "flowers.zip"
    subprocess.run([sys.executable, "-m", "flowergan", "prepare", "synthetic", "--out", str(data), "--count", "32",
                    "--resolution", "32", "--seed", "0"], cwd=REPO, check=True, capture_output=True)
    out = tmp_path / "out"
    r = _run("train", "--device", "cpu", "--kimg", "0.032", "--snap", "0.016", "--seeds", "0", "--seconds", "240",
             "--data", str(data), "--work", str(tmp_path / "work"), "--out", str(out))
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.splitlines()[-1])
    assert {k: (v["rc"], v["snapshots"], v["stopped_at_deadline"]) for k, v in summary["runs"].items()} == {
        "auto-s0": (0, 2, False), "off-s0": (0, 2, False)}
    from flowergan.networks.store import load_model_dir

    for name in ("auto-s0", "off-s0"):
        run = out / name
        assert json.loads((run / "config.json").read_text())["train"]["seed"] == 0 and (run / "train.log").is_file()
        snaps = sorted(p.name for p in (run / "checkpoints").iterdir())
        assert snaps == ["snapshot-0000000016", "snapshot-0000000032"]
        d = load_model_dir(run / "checkpoints" / snaps[-1], which=("G_ema",))
        assert set(d) >= {"G_ema", "config"} and d["config"].resolution == 32
        assert all(p.dtype == torch.float32 for p in d["G_ema"].parameters())  # loaded as fp32 ...
        with safe_open(run / "checkpoints" / snaps[-1] / "weights.safetensors", "pt") as f:  # ... stored in fp16
            assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}
    # scoring asks only for points every run reached, before any Inception work
    bad = _run("score", str(out), "--data", str(data), "--kimg", "0.048")
    assert bad.returncode != 0 and "not reached by every run; common snapshots: [0.016, 0.032]" in bad.stderr
