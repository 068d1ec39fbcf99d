"""flowergan.infra: the one implementation of the cache folder, atomic writes, float -> uint8 and grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from testkit import official_uint8

from flowergan import infra


def test_to_uint8_is_the_official_conversion_for_tensors_and_arrays():
    x = torch.linspace(-1.3, 1.3, 2 * 3 * 5 * 7).reshape(2, 3, 5, 7)
    want = official_uint8(x)  # written out independently in the tests
    assert infra.to_uint8(x).dtype == np.uint8 and (infra.to_uint8(x) == want).all()
    assert (infra.to_uint8(x.numpy()) == want).all()
    assert (infra.to_uint8_nchw(x).permute(0, 2, 3, 1).numpy() == want).all()
    assert infra.to_uint8(torch.tensor([[[[-1.0, 0.0, 1.0]]]])).ravel().tolist() == [0, 128, 255]
    with pytest.raises(ValueError, match=r"expected images \[N, C, H, W\]"):
        infra.to_uint8(torch.zeros(3, 4, 4))


def test_make_grid_tiles_row_by_row_with_padding():
    imgs = np.stack([np.full([2, 3, 1], i, np.uint8) for i in range(1, 4)])  # 3 tiles of 2x3
    g = infra.make_grid(imgs, cols=2, pad=1, bg=9)
    assert g.shape == (2 * 2 + 1, 2 * 3 + 1, 1)
    assert (g[:2, :3] == 1).all() and (g[:2, 4:] == 2).all() and (g[3:, :3] == 3).all()
    assert (g[2] == 9).all() and (g[:, 3] == 9).all() and (g[3:, 4:] == 9).all()
    grid = infra.make_grid(np.zeros([5, 2, 2, 3], np.uint8))
    assert grid.shape == (2 * 2, 3 * 2, 3)  # 3 = ceil(sqrt(5)) columns, 2 rows


def test_atomic_write_replaces_whole_or_keeps_the_old_file(tmp_path):
    p = tmp_path / "sub" / "a.json"
    infra.atomic_write_text(p, "old")

    def fail(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        infra.atomic_write(p, fail)
    assert p.read_text() == "old" and sorted(x.name for x in p.parent.iterdir()) == ["a.json"]
    infra.atomic_write_bytes(p, b"new")
    assert p.read_bytes() == b"new" and sorted(x.name for x in p.parent.iterdir()) == ["a.json"]


def test_atomic_dir_replaces_a_folder_only_when_complete(tmp_path):
    out = tmp_path / "model"
    with infra.atomic_dir(out) as d:
        (d / "x").write_text("1")
    with pytest.raises(RuntimeError, match="boom"), infra.atomic_dir(out) as d:
        (d / "x").write_text("2")
        raise RuntimeError("boom")
    assert (out / "x").read_text() == "1" and [p.name for p in tmp_path.iterdir()] == ["model"]
    with infra.atomic_dir(out) as d:
        (d / "y").write_text("3")
    assert sorted(p.name for p in out.iterdir()) == ["y"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_process_alive_tells_a_running_writer_from_a_finished_one(monkeypatch):
    """The check both stale-temp cleaners (dataset zips, exports) use: a finished process is gone; this one, and
    one we may not signal, count as alive (their files are kept)."""
    import os
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its pid names no process now
    assert infra.process_alive(os.getpid()) and not infra.process_alive(child.pid)

    def refused(pid, sig):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "kill", refused)
    assert infra.process_alive(child.pid)


def test_cache_dir_and_file_digest(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWERGAN_CACHE", str(tmp_path / "c"))
    assert infra.cache_dir() == tmp_path / "c" and not (tmp_path / "c").exists()
    assert infra.cache_dir("detectors", create=True).is_dir()
    monkeypatch.delenv("FLOWERGAN_CACHE")
    assert infra.cache_dir("datasets") == Path.home() / ".cache" / "flowergan" / "datasets"
    assert infra.file_digest(infra.atomic_write_bytes(tmp_path / "b", b"abc")) == \
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # sha256("abc"), FIPS 180-2


def test_infra_imports_no_other_flowergan_module():
    import ast

    tree = ast.parse(Path(infra.__file__).read_text())
    every = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    every |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in every if m.startswith("flowergan")}, "infra must stay importable by every area"
    top = {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    top |= {n.module for n in tree.body if isinstance(n, ast.ImportFrom) and n.module}
    heavy = {m for m in top if m.split(".")[0] in ("torch", "PIL")}
    assert not heavy, "torch only where a tensor is converted"


def test_noise_modes_are_declared_once_beside_the_model_config():
    from flowergan.config import NOISE_MODES, check_noise_mode
    from flowergan.inference import NOISE_MODES as inference_modes
    from flowergan.networks.generator import NOISE_MODES as generator_modes
    from flowergan.training.config import TrainConfig

    assert NOISE_MODES == ("const", "random", "none") and inference_modes is generator_modes is NOISE_MODES
    assert TrainConfig.__dataclass_fields__["noise_mode"].metadata["choices"] is NOISE_MODES
    assert not hasattr(infra, "NOISE_MODES")  # not an infrastructure concept
    assert check_noise_mode("const") == "const"
    with pytest.raises(ValueError, match="noise_mode 'fixed': choose one of const, random, none"):
        check_noise_mode("fixed")
