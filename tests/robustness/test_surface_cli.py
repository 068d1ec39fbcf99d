"""Hostile input to the commands: every kind gets one line (what, where, how to fix), exit status 2 for bad
input or 1 for a failure of the run, no traceback (unless --debug), and nothing written."""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from surface_kit import address_space_cap, fails, files_under, run, write_tiny
from testkit import one_thread

REPO = Path(__file__).resolve().parents[2]
_one_thread = pytest.fixture(autouse=True)(one_thread)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_tiny(tmp_path_factory.mktemp("surface") / "tiny")


@pytest.fixture(autouse=True)
def _no_user_limits(monkeypatch):
    for k in list(os.environ):
        if k.startswith("FLOWERGAN_MAX_") or k == "FLOWERGAN_DEBUG":
            monkeypatch.delenv(k)


def gen(tiny, out, *extra):
    return ["generate", "--network", tiny, "--outdir", out, "--device", "cpu", *extra]


# ---- sizes from outside ---------------------------------------------------------------------------
def test_non_finite_truncation_is_refused(tiny, tmp_path):
    for bad in ("nan", "inf", "-inf"):
        fails(run(gen(tiny, tmp_path / "o", "--seeds", "1", "--trunc", bad)), 2, "--trunc", "not a finite number")
    fails(run(gen(tiny, tmp_path / "o", "--seeds", "1", "--trunc", "1e300")), 2, "--trunc", "[-1, 2]")
    fails(run(["truncation", "--network", tiny, "--seeds", "1", "--psi", "1,nan", "--out", tmp_path / "t.png",
               "--device", "cpu"]), 2, "--psi", "finite")
    assert files_under(tmp_path) == []


def test_huge_seed_range_is_refused_before_expanding(tiny, tmp_path):
    with address_space_cap(256):  # expanding 0-4294967295 would need ~150 GB
        line = fails(run(gen(tiny, tmp_path / "o", "--seeds", "0-4294967295")), 2)
    assert "--seeds" in line and "100,000" in line and "FLOWERGAN_MAX_SEEDS" in line
    assert files_under(tmp_path) == []


def test_5000_digit_seed_is_refused(tiny, tmp_path):
    line = fails(run(gen(tiny, tmp_path / "o", "--seeds", "9" * 5000)), 2, "--seeds", "5000 digits")
    assert len(line) < 300 and "[0, 4294967295]" in line
    assert files_under(tmp_path) == []


def test_limit_is_raised_or_lowered_by_its_environment_variable(tiny, tmp_path):
    fails(run(gen(tiny, tmp_path / "a", "--seeds", "0-2"), env={"FLOWERGAN_MAX_SEEDS": "2"}), 2,
          "more than 2 seeds", "FLOWERGAN_MAX_SEEDS")
    res = run(gen(tiny, tmp_path / "b", "--seeds", "0-1"), env={"FLOWERGAN_MAX_SEEDS": "2"})
    assert res.exit_code == 0, res.output
    assert [p.name for p in files_under(tmp_path)] == ["seed0000.png", "seed0001.png"]
    fails(run(gen(tiny, tmp_path / "c", "--seeds", "0"), env={"FLOWERGAN_MAX_SEEDS": "lots"}), 2,
          "FLOWERGAN_MAX_SEEDS", "positive integer")


def test_mix_rows_and_styles_ranges_are_bounded(tiny, tmp_path):
    base = ["mix", "--network", tiny, "--device", "cpu", "--out", tmp_path / "m.png"]
    fails(run(base + ["--rows", "0-999999", "--cols", "1"]), 2, "--rows", "256", "FLOWERGAN_MAX_MIX_SEEDS")
    fails(run(base + ["--rows", "1", "--cols", "0-999999"]), 2, "--cols", "256")
    with address_space_cap(256):  # "0-20000000" used to build a 20-million-entry list first
        fails(run(base + ["--rows", "1", "--cols", "2", "--styles", "0-20000000"]), 2, "indices must be in [0, 7]")
    assert files_under(tmp_path) == []


def test_interpolate_frames_and_fps_are_bounded(tiny, tmp_path):
    base = ["interpolate", "--network", tiny, "--device", "cpu", "--seeds", "1,2", "--out", tmp_path / "v.gif"]
    with address_space_cap(256):
        fails(run(base + ["--frames", "1000000000"]), 2, "--frames", "10,000", "FLOWERGAN_MAX_FRAMES")
    fails(run(base + ["--frames", "2", "--fps", "nan"]), 2, "--fps", "not a finite number")
    fails(run(base + ["--frames", "2", "--fps", "0"]), 2, "--fps", "greater than 0")
    assert files_under(tmp_path) == []


def test_project_steps_and_learning_rate_are_bounded(tiny, tmp_path):
    import PIL.Image

    PIL.Image.fromarray(np.zeros([32, 32, 3], np.uint8)).save(tmp_path / "t.png")
    base = ["project", "--network", tiny, "--device", "cpu", "--target", tmp_path / "t.png", "--outdir",
            tmp_path / "p"]
    fails(run(base + ["--steps", "1000000000"]), 2, "--steps", "100,000", "FLOWERGAN_MAX_STEPS")
    fails(run(base + ["--lr", "nan"]), 2, "--lr", "not a finite number")
    fails(run(base + ["--lr", "-1"]), 2, "--lr")
    assert not (tmp_path / "p").exists()


def test_grid_memory_is_checked_before_any_image(tiny, tmp_path):
    # 200 images of 32x32x3 bytes, held twice (the images and the grid): 1.2 MB, over a 1 MB budget
    line = fails(run(gen(tiny, tmp_path / "o", "--seeds", "0-199", "--grid"), env={"FLOWERGAN_MAX_MEMORY_MB": "1"}),
                 2, "--grid", "FLOWERGAN_MAX_MEMORY_MB")
    assert "200 images" in line and "limit is 1 MB" in line
    assert files_under(tmp_path) == []


def test_projected_w_with_nan_or_too_big_is_refused(tiny, tmp_path):
    nan_w = np.full([1, 8, 64], np.nan, np.float32)
    np.savez(tmp_path / "nan.npz", w=nan_w)
    fails(run(gen(tiny, tmp_path / "o", "--projected-w", tmp_path / "nan.npz")), 2, "NaN")
    np.savez(tmp_path / "big.npz", w=np.zeros([1024, 8, 64], np.float32))  # 2 MB
    fails(run(gen(tiny, tmp_path / "o", "--projected-w", tmp_path / "big.npz"), env={"FLOWERGAN_MAX_MEMORY_MB": "1"}),
          2, "--projected-w", "MB of memory")
    header = io.BytesIO()  # an .npy header claiming 1e8 x 8 x 64 floats (205 GB) over 64 bytes of data
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**8, 8, 64)})
    with zipfile.ZipFile(tmp_path / "lie.npz", "w") as z:
        z.writestr("w.npy", header.getvalue() + bytes(64))
    with address_space_cap(256):
        fails(run(gen(tiny, tmp_path / "o", "--projected-w", tmp_path / "lie.npz")), 2, "--projected-w",
              "MB of memory")
    np.savez(tmp_path / "shape.npz", w=np.zeros([1, 3, 5], np.float32))
    fails(run(gen(tiny, tmp_path / "o", "--projected-w", tmp_path / "shape.npz")), 2, "[N, 8, 64]")
    assert not (tmp_path / "o").exists()


def test_bench_and_metrics_counts_are_bounded(tiny):
    fails(run(["bench", "--what", "generator", "--preset", "tiny", "--batch", "1000000000"]), 2, "--batch",
          "4,096", "FLOWERGAN_MAX_BATCH")
    fails(run(["metrics", "--network", tiny, "--num", "99999999999", "--device", "cpu"]), 2, "--num",
          "FLOWERGAN_MAX_IMAGES")


# ---- devices, damaged files, environment failures -------------------------------------------------
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_unavailable_is_one_line(tiny, tmp_path):
    fails(run(["generate", "--network", tiny, "--outdir", tmp_path / "o", "--seeds", "1", "--device", "cuda"]),
          2, "--device cuda", "CUDA is not available", "--device cpu")
    fails(run(["generate", "--network", tiny, "--outdir", tmp_path / "o", "--seeds", "1", "--device", "gpu0"]),
          2, "--device 'gpu0'", "not a device name")
    assert files_under(tmp_path) == []


def _damaged(tiny: Path, tmp_path: Path) -> dict[str, Path]:
    cases = {}
    for name, weights in [("truncated", (tiny / "weights.safetensors").read_bytes()[:100]), ("empty", b"")]:
        d = tmp_path / name
        d.mkdir(parents=True)
        (d / "config.json").write_bytes((tiny / "config.json").read_bytes())
        (d / "weights.safetensors").write_bytes(weights)
        cases[name] = d
    d = tmp_path / "garbled"
    d.mkdir(parents=True)
    (d / "weights.safetensors").write_bytes((tiny / "weights.safetensors").read_bytes())
    (d / "config.json").write_text('{"format": "flowergan-model", "model": {')
    cases["garbled"] = d
    (tmp_path / "garbage.pkl").write_bytes(b"garbage\n")
    cases["pickle"] = tmp_path / "garbage.pkl"
    return cases


def test_damaged_models_name_the_file(tiny, tmp_path):
    for path in _damaged(tiny, tmp_path / "models").values():
        fails(run(gen(path, tmp_path / "o", "--seeds", "1")), 2, str(path))
        fails(run(["info", "--network", path]), 2, str(path))
    fails(run(["import-official", tmp_path / "models" / "garbage.pkl", tmp_path / "imported"]), 2, "garbage.pkl")
    assert not (tmp_path / "o").exists() and not (tmp_path / "imported").exists()


def test_folder_that_is_no_model_says_what_was_expected(tmp_path):
    """A folder with no model, run or pickle: the resolver's own message (what was expected), the flag in front
    once (it was "a file: no such file or folder", which is wrong for a folder that exists)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    for args in (gen(empty, tmp_path / "o", "--seeds", "1"), ["info", "--network", empty]):
        line = fails(run(args), 2, f"--network {empty}: not a flowergan model folder", "a training run folder")
        assert line.count(str(empty)) == 1, line
    assert not (tmp_path / "o").exists()


def _fail_writes(monkeypatch, err: OSError):
    import flowergan.inference.images as images

    def refuse(data_self, *a, **k):
        raise err

    monkeypatch.setattr(images.Path, "write_bytes", refuse)


@pytest.mark.parametrize("err, words", [
    (OSError(errno.ENOSPC, "No space left on device"), ["disk is full", "write somewhere else"]),
    (OSError(errno.EROFS, "Read-only file system"), ["read-only", "somewhere else"]),
    (PermissionError(errno.EACCES, "Permission denied"), ["permission denied"]),
])
def test_output_failures_are_runtime_errors(tiny, tmp_path, monkeypatch, err, words):
    _fail_writes(monkeypatch, err)  # raised without a file name, as a write() on a full disk does
    fails(run(gen(tiny, tmp_path / "o", "--seeds", "1")), 1, "seed0001.png", *words)
    assert files_under(tmp_path) == []  # the temp file is gone too


def test_missing_package_names_the_install(tmp_path, monkeypatch):
    import flowergan.metrics

    def missing(*a, **k):
        raise ModuleNotFoundError("No module named 'scipy'", name="scipy")

    monkeypatch.setattr(flowergan.metrics, "fid_between", missing)
    (tmp_path / "a").mkdir()
    fails(run(["fid", tmp_path / "a", tmp_path / "a", "--device", "cpu"]), 1, "scipy", "pip install scipy")


def test_library_validation_errors_are_bad_input_everywhere(tiny, tmp_path):
    fails(run(["prepare", "synthetic", "--out", tmp_path / "d.zip", "--resolution", "3", "--count", "2"]), 2,
          "--resolution 3", "power of two")
    fails(run(["metrics", "--network", tiny, "--metrics", "nope", "--num", "2", "--device", "cpu"]), 2,
          "unknown metric 'nope'")
    assert files_under(tmp_path) == []


def test_train_is_covered_by_the_same_wrapper(tmp_path):
    ckpt = tmp_path / "run" / "checkpoints" / "ck"
    ckpt.mkdir(parents=True)
    (ckpt / "train_state.json").write_text("{}")
    (tmp_path / "run" / "config.json").write_text("{not json")
    before = files_under(tmp_path)
    fails(run(["train", "--resume", ckpt, "--out", tmp_path / "runs"]), 2)
    assert files_under(tmp_path) == before and not (tmp_path / "runs").exists()


def test_train_batch_is_bounded_before_the_run_folder(tmp_path):
    (tmp_path / "data").mkdir()
    fails(run(["train", "--data", tmp_path / "data", "--preset", "tiny", "--batch", "1000000000", "--out",
               tmp_path / "runs"]), 2, "--batch", "4,096", "FLOWERGAN_MAX_BATCH")
    assert not (tmp_path / "runs").exists()


def test_unexpected_error_is_one_line_pointing_at_debug(tiny, tmp_path, monkeypatch):
    import flowergan.networks.summary as summary

    def boom(*a, **k):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(summary, "summarize", boom)
    fails(run(["info", "--preset", "tiny"]), 1, "internal error", "ZeroDivisionError", "--debug", "FLOWERGAN_DEBUG=1")
    res = run(["--debug", "info", "--preset", "tiny"])
    assert isinstance(res.exception, ZeroDivisionError)  # --debug lets the original exception through
    res = run(["info", "--preset", "tiny"], env={"FLOWERGAN_DEBUG": "1"})
    assert isinstance(res.exception, ZeroDivisionError)


def test_real_process_prints_no_traceback_unless_debug(tiny, tmp_path):
    bad = _damaged(tiny, tmp_path / "m")["truncated"]
    cmd = [sys.executable, "-m", "flowergan", "info", "--network", str(bad)]
    env = {k: v for k, v in os.environ.items() if k != "FLOWERGAN_DEBUG"} | {"PYTHONPATH": str(REPO)}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr and p.stdout == ""
    assert p.stderr.strip().startswith("Error: --network") and len(p.stderr.strip().splitlines()) == 1, p.stderr
    p = subprocess.run(cmd[:3] + ["--debug"] + cmd[3:], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 1 and "Traceback" in p.stderr
    p = subprocess.run(cmd, capture_output=True, text=True, env=env | {"FLOWERGAN_DEBUG": "1"}, timeout=120)
    assert p.returncode == 1 and "Traceback" in p.stderr
