"""Round 3: every input file goes through one bounded reader (flowergan/readers.py): regular files only, size
checked before a byte is read, the FLOWERGAN_MAX_* variable named. CLI, Python API, and what both share."""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hostile3_kit import png_claiming, sparse_file
from surface_kit import address_space_cap, fails, files_under, run, write_tiny

from flowergan.errors import BadInput, BoundsError
from flowergan.readers import load_image, read_bytes, read_json, read_latents

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture
def fifo(tmp_path):
    p = tmp_path / "pipe.json"
    os.mkfifo(p)
    return p


def _cli(args: list, timeout: float = 60) -> subprocess.CompletedProcess:
    """`flowergan ARGS` in its own process (a hang is a timeout, not a stuck test run)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "flowergan", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO)


def _one_line(p: subprocess.CompletedProcess, code: int, *words: str) -> str:
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr, p.stderr
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1, p.stderr
    for w in words:
        assert w in errors[0], (w, errors[0])
    return errors[0]


# ---- the readers themselves (Python API) ----------------------------------------------------------
def test_readers_refuse_pipes_devices_and_folders_without_reading(fifo, tmp_path):
    # a FIFO would block open() forever and /dev/zero never ends: both are refused from stat alone
    for path, kind in ((fifo, "named pipe"), ("/dev/zero", "device"), (tmp_path, "is a folder")):
        for read in (lambda p: read_json(p, "config"), lambda p: read_bytes(p, "file", "json_mb"),
                     lambda p: read_latents(p), lambda p: load_image(p, "photo")):
            with pytest.raises(BadInput, match=kind):
                read(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_json(tmp_path / "missing.json", "config")


def test_size_is_checked_before_reading_and_names_the_variable(tmp_path, monkeypatch):
    big = sparse_file(tmp_path / "big.json", 2**30)           # 1 GiB apparent, a few bytes on disk
    with address_space_cap(200):                               # reading it would need 1 GiB
        with pytest.raises(BoundsError, match="FLOWERGAN_MAX_JSON_MB") as e:
            read_json(big, "config")
    assert "1,024.0 MB" in str(e.value) and "16 MB" in str(e.value)
    link = tmp_path / "link.json"                              # a link is followed, then its target is checked
    link.symlink_to(big)
    with pytest.raises(BoundsError, match="FLOWERGAN_MAX_JSON_MB"):
        read_json(link, "config")
    small = tmp_path / "small.json"
    small.write_text('{"a": [' + "1," * 400_000 + '1]}')      # 0.8 MB
    assert len(read_json(small, "config")["a"]) == 400_001
    monkeypatch.setenv("FLOWERGAN_MAX_JSON_MB", "0")
    with pytest.raises(BoundsError, match="must be a positive integer"):
        read_json(small, "config")
    monkeypatch.setenv("FLOWERGAN_MAX_JSON_MB", "1")
    (tmp_path / "two.json").write_text(" " * (2 << 20) + "{}")
    with pytest.raises(BoundsError, match="over the limit of 1 MB"):
        read_json(tmp_path / "two.json", "config")


def test_image_pixels_are_checked_from_the_header(tmp_path, monkeypatch):
    (tmp_path / "bomb.png").write_bytes(png_claiming(100_000, 100_000))
    with address_space_cap(300):                               # decoding it would need 30 GB
        with pytest.raises(BoundsError, match=r"10,000,000,000 pixels.*100,000,000"):
            load_image(tmp_path / "bomb.png", "photo")
        with pytest.raises(BoundsError, match="FLOWERGAN_MAX_IMAGE_PIXELS"):
            load_image(png_claiming(12_000, 12_000), "photo")  # under Pillow's own refusal, over ours
    import PIL.Image

    PIL.Image.new("RGB", (40, 30), (1, 2, 3)).save(tmp_path / "ok.png")
    assert load_image(tmp_path / "ok.png", "photo").size == (40, 30)
    monkeypatch.setenv("FLOWERGAN_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(BoundsError, match="40x30 = 1,200 pixels"):
        load_image(tmp_path / "ok.png", "photo")


def test_a_pickle_length_claim_past_the_end_is_a_bounded_refusal(tmp_path):
    from flowergan.compat.official import RefusedPickleError, read_official_pickle

    p = tmp_path / "claim.pkl"       # BINBYTES8 claiming 2^40 bytes, then 3 bytes: it used to be "out of memory"
    p.write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + b"abc")
    with address_space_cap(500):
        with pytest.raises(RefusedPickleError, match="1,099,511,627,776 bytes is claimed"):
            read_official_pickle(p)
    fails(run(["info", "--network", p]), 2, "1,099,511,627,776 bytes is claimed")
    p.write_bytes(pickle.dumps({"a": b"x" * 100, "b": "y" * 300}, protocol=4))  # genuine lengths still read
    assert read_official_pickle(p) == {"a": b"x" * 100, "b": "y" * 300}


# ---- the commands -----------------------------------------------------------------------------------
def test_prepare_refuses_dev_zero_and_a_fifo_at_once(fifo, tmp_path):
    for src in ("/dev/zero", fifo):
        p = _cli(["prepare", src, "--out", tmp_path / "d.zip", "--resolution", 32], timeout=60)
        _one_line(p, 2, "not a regular file")
    assert not (tmp_path / "d.zip").exists()


def test_train_config_refuses_dev_zero_a_fifo_and_a_huge_file_before_the_run_folder(fifo, tmp_path):
    data = tmp_path / "data.zip"
    data.write_bytes(b"")
    for cfg, words in (("/dev/zero", ["--config", "device"]), (fifo, ["--config", "named pipe"]),
                       (sparse_file(tmp_path / "big.json", 2**30), ["--config", "FLOWERGAN_MAX_JSON_MB"])):
        p = _cli(["train", "--config", cfg, "--data", data, "--out", tmp_path / "runs"], timeout=60)
        _one_line(p, 2, *words)
    assert not (tmp_path / "runs").exists()


def test_model_config_linked_to_a_sparse_gib_is_refused_at_once(tiny, tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "weights.safetensors").symlink_to(tiny / "weights.safetensors")
    (model / "config.json").symlink_to(sparse_file(tmp_path / "big", 2**30))
    with address_space_cap(400):  # it used to cost 2.3 GB before "not readable JSON"
        fails(run(["generate", "--network", model, "--seeds", 0, "--outdir", tmp_path / "o", "--device", "cpu"]),
              2, "FLOWERGAN_MAX_JSON_MB")
    assert not (tmp_path / "o").exists()


def test_generate_and_edit_read_latents_with_one_reader(tiny, tmp_path):
    from flowergan.inference.directions import find_directions
    from flowergan.inference.loader import load_networks

    G = load_networks(tiny).G
    dirs = find_directions(G, "sefa", "all", num=2, samples=200)
    dirs.save(tmp_path / "d.safetensors")
    nan = tmp_path / "nan.npz"
    np.savez(nan, w=np.full([1, G.num_ws, G.w_dim], np.nan, np.float32))
    ints = tmp_path / "ints.npz"
    np.savez(ints, w=np.zeros([1, G.num_ws, G.w_dim], np.int32))
    for f, words in ((nan, ["holds NaN or infinite"]), (ints, ["int32", "floats"])):
        gen = fails(run(["generate", "--network", tiny, "--projected-w", f, "--outdir", tmp_path / "o"]), 2, *words)
        edit = fails(run(["edit", "--network", tiny, "--directions", tmp_path / "d.safetensors", "--projected-w", f,
                          "--out", tmp_path / "e.png"]), 2, *words)
        assert gen == edit  # the same reader, the same line
    assert files_under(tmp_path / "o") == [] and not (tmp_path / "e.png").exists()
    with pytest.raises(BadInput, match="holds NaN"):
        read_latents(nan, shape=(G.num_ws, G.w_dim))


def test_project_refuses_a_photo_whose_header_claims_10_gigapixels(tiny, tmp_path):
    (tmp_path / "bomb.png").write_bytes(png_claiming(100_000, 100_000))
    with address_space_cap(600):
        fails(run(["project", "--network", tiny, "--target", tmp_path / "bomb.png", "--steps", 2, "--outdir",
                   tmp_path / "p", "--device", "cpu"]), 2, "10,000,000,000 pixels")
    from flowergan.inference.images import load_target

    with pytest.raises(BoundsError, match="pixels"):
        load_target(tmp_path / "bomb.png", 32)


def test_prepare_skips_a_source_image_over_the_pixel_limit_before_decoding(monkeypatch):
    import io

    import PIL.Image

    from flowergan.data.images import SkipImage, convert_image

    buf = io.BytesIO()
    PIL.Image.new("RGB", (40, 30), (200, 10, 10)).save(buf, format="PNG")
    assert convert_image(buf.getvalue(), 16).source_size == (40, 30)
    monkeypatch.setenv("FLOWERGAN_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(SkipImage, match="40x30 pixels, over the limit of 1,000.*FLOWERGAN_MAX_IMAGE_PIXELS"):
        convert_image(buf.getvalue(), 16)


def test_serve_classes_refuses_a_fifo_or_huge_dataset_json(fifo):
    from flowergan.data.classes import read_class_names
    from flowergan.data.errors import DataError

    folder = fifo.parent / "ds"
    folder.mkdir()
    os.mkfifo(folder / "dataset.json")      # it used to be taken silently as "no class names"
    with pytest.raises(DataError, match="not a regular file"):
        read_class_names(folder)
    (folder / "dataset.json").unlink()
    sparse_file(folder / "dataset.json", 2**30)  # it used to be read whole (1 GiB) before the JSON error
    with address_space_cap(300):
        with pytest.raises(DataError, match="larger than 64 MiB"):
            read_class_names(folder)
