"""Helpers for the hostile-input tests of models, files and runs: a memory-capped subprocess, fake official
pickles built from plain objects, a small finished run with two checkpoints."""

from __future__ import annotations

import os
import pickle
import resource
import shutil
import subprocess
import sys
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_capped(code: str, mem_mb: int, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `code` in a fresh Python whose address space is capped at `mem_mb` MB (RLIMIT_AS)."""
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (mem_mb * 2**20, mem_mb * 2**20))

    full_env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          preexec_fn=cap, env=full_env, cwd=REPO)


def official_pickle(init_kwargs: dict, extra_state: dict | None = None) -> bytes:
    """A pickle shaped like an official snapshot: {'G_ema': persistent object with `init_kwargs`}. The
    reconstruct function is a stand-in registered under the official module name only while pickling."""
    mod = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # never called: flowergan maps the name to its own stand-in
        raise AssertionError

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    mod._reconstruct_persistent_obj = _reconstruct_persistent_obj
    saved = {k: sys.modules.get(k) for k in ("torch_utils", "torch_utils.persistence")}
    sys.modules["torch_utils"] = types.ModuleType("torch_utils")
    sys.modules["torch_utils.persistence"] = mod

    class Persistent:
        def __init__(self, meta):
            self.meta = meta

        def __reduce__(self):
            return (_reconstruct_persistent_obj, (self.meta,))

    meta = {"type": "class", "class_name": "training.networks.Generator", "version": 4, "module_src": "",
            "state": {"_init_kwargs": init_kwargs, **(extra_state or {})}}
    try:
        return pickle.dumps({"G_ema": Persistent(meta)}, protocol=4)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def g_kwargs(**changes) -> dict:
    """Official Generator constructor arguments of a small network."""
    kw = {"z_dim": 16, "c_dim": 0, "w_dim": 16, "img_resolution": 8, "img_channels": 3,
          "mapping_kwargs": {"num_layers": 2}, "synthesis_kwargs": {"channel_base": 256, "channel_max": 32}}
    for k, v in changes.items():
        if k in ("mapping_kwargs", "synthesis_kwargs"):
            kw[k] = {**kw[k], **v}
        else:
            kw[k] = v
    return kw


SMALL_RUN = ["--preset", "tiny", "--channel-base", "256", "--channel-max", "32", "--z-dim", "16", "--w-dim", "16",
             "--batch", "4", "--no-progress"]


def checkpointed_run(root: Path) -> Path:
    """A finished ADA run (batch 4) under root/runs with checkpoints at 8 and 16 images, trained on 32 16x16 RGB
    images (root/flowers16.zip)."""
    from click.testing import CliRunner

    from flowergan.cli.main import cli
    from flowergan.data.synthetic import prepare_synthetic

    data = root / "flowers16.zip"
    prepare_synthetic(data, count=32, resolution=16, seed=0, progress=False, workers=1)
    res = CliRunner().invoke(cli, ["train", "--data", str(data), "--out", str(root / "runs"), *SMALL_RUN,
                                   "--kimg", "0.016", "--snap", "0.008"])
    assert res.exit_code == 0, res.output
    (run,) = (root / "runs").iterdir()
    return run


def copy_of(run: Path, tmp_path: Path) -> Path:
    """A fresh copy of `run` at tmp_path/runs/<its name>, for a test that damages or extends it."""
    dst = tmp_path / "runs" / run.name
    shutil.copytree(run, dst)
    return dst
