"""flowergan.bounds (the one table of limits on sizes from outside) and the CLI's failure classification."""

from __future__ import annotations

import errno
import pickle
import time

import pytest
from surface_kit import address_space_cap

from flowergan import bounds
from flowergan.cli.errors import BAD_INPUT, FAILURE, classify
from flowergan.errors import BadInput, BoundsError, MissingDependency
from flowergan.inference.latents import parse_seeds, parse_styles


@pytest.fixture(autouse=True)
def _defaults(monkeypatch):
    for lim in bounds.LIMITS.values():
        monkeypatch.delenv(lim.env, raising=False)


def test_ranges_are_counted_before_they_are_expanded():
    t0 = time.perf_counter()
    with address_space_cap(128):
        for spec in ("0-4294967295", "0-99999,0-99999", "1," * 40_000 + "0-99999"):
            with pytest.raises(BoundsError, match="FLOWERGAN_MAX_SEEDS"):
                parse_seeds(spec)
        with pytest.raises(ValueError, match=r"in \[0, 7\]"):
            parse_styles("0-20000000", 8)
        with pytest.raises(BoundsError, match="5000 digits"):
            parse_seeds("9" * 5000)
    assert time.perf_counter() - t0 < 2
    assert parse_seeds("0-99999")[-1] == 99_999  # exactly at the limit is fine
    assert parse_seeds("3,1-2,3") == [3, 1, 2, 3]


def test_unicode_digits_are_not_numbers():
    for spec in ("\u0663", "1-\u0663", "\u00b2"):  # Arabic-Indic three, superscript two
        with pytest.raises(ValueError, match="cannot parse"):
            parse_seeds(spec)


def test_lists_from_python_are_bounded_too(monkeypatch):
    monkeypatch.setenv("FLOWERGAN_MAX_SEEDS", "3")
    with pytest.raises(BoundsError, match="4 seeds per command"):
        parse_seeds([1, 2, 3, 4])
    assert parse_seeds([1, 2, 3]) == [1, 2, 3]


def test_environment_overrides_are_validated(monkeypatch):
    monkeypatch.setenv("FLOWERGAN_MAX_FRAMES", "12")
    assert bounds.limit("frames") == 12
    for bad in ("0", "-3", "1e6", "x", "9" * 40):
        monkeypatch.setenv("FLOWERGAN_MAX_FRAMES", bad)
        with pytest.raises(BoundsError, match="FLOWERGAN_MAX_FRAMES"):
            bounds.limit("frames")


def test_check_float_refuses_non_finite_and_out_of_range():
    for v in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(BoundsError, match="not a finite number"):
            bounds.check_float(v, "--trunc", -1, 2)
    with pytest.raises(BoundsError, match=r"use a number in \[-1, 2\]"):
        bounds.check_float(2.5, "--trunc", -1, 2)
    with pytest.raises(BoundsError, match="must be a number"):
        bounds.check_float("0.5", "psi")
    assert bounds.check_float(-1, "--trunc", -1, 2) == -1.0


def test_check_memory_names_the_budget(monkeypatch):
    monkeypatch.setenv("FLOWERGAN_MAX_MEMORY_MB", "10")
    bounds.check_memory(10 * 2**20, "--grid", "a grid")
    with pytest.raises(BoundsError, match=r"--grid: a grid would take 11 MB .* limit is 10 MB .*MEMORY_MB"):
        bounds.check_memory(11 * 2**20, "--grid", "a grid")


def _oserror(cls, code, name="out/x.png"):
    e = cls(code, "msg")
    e.filename = name
    return e


@pytest.mark.parametrize("exc, code, word", [
    (BoundsError("--frames: too many"), BAD_INPUT, "--frames"),
    (BadInput("x"), BAD_INPUT, "x"),
    (ValueError("class 3: out of range"), BAD_INPUT, "class 3"),
    (pickle.UnpicklingError("refused"), BAD_INPUT, "refused"),
    (_oserror(FileNotFoundError, errno.ENOENT), BAD_INPUT, "no such file"),
    (_oserror(FileExistsError, errno.EEXIST), BAD_INPUT, "--overwrite"),
    (_oserror(PermissionError, errno.EACCES), FAILURE, "permission denied"),
    (_oserror(OSError, errno.ENOSPC), FAILURE, "disk is full"),
    (_oserror(OSError, errno.EROFS), FAILURE, "read-only"),
    (TimeoutError("timed out"), FAILURE, "TimeoutError: timed out"),
    (MemoryError(), FAILURE, "out of memory"),
    (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 256000000000 bytes"),
     FAILURE, "out of memory"),
    (AssertionError("Torch not compiled with CUDA enabled"), FAILURE, "--device cpu"),
    (ModuleNotFoundError("No module named 'matplotlib'", name="matplotlib"), FAILURE, "flowergan[plot]"),
    (MissingDependency("pip install x"), FAILURE, "pip install x"),
    (RuntimeError("training diverged"), FAILURE, "training diverged"),
    (KeyError("G.weight"), FAILURE, "internal error"),
])
def test_classification(exc, code, word):
    got, msg = classify(exc)
    assert got == code and word in msg and "\n" not in msg, msg


def test_safetensors_errors_are_bad_input(tmp_path):
    from safetensors.torch import load_file

    (tmp_path / "w.safetensors").write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{")
    with pytest.raises(Exception) as info:
        load_file(str(tmp_path / "w.safetensors"))
    assert classify(info.value)[0] == BAD_INPUT


def test_python_api_bounds_walks_too():
    from testkit import make_tiny

    from flowergan.inference import Pipeline

    pipe = Pipeline(make_tiny()[1])
    with address_space_cap(256), pytest.raises(BoundsError, match="interpolate frames: 1,000,000,001 .*FRAMES"):
        pipe.interpolate([1, 2], frames=10**9)
