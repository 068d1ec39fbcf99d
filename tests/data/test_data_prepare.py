"""`prepare`: every nasty input case, transforms, Oxford labels, atomic output, reproducibility, CLI, SIGKILL."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from data_testkit import BLUE, GREEN, RED, make_dataset_zip, make_nasty_folder, make_oxford_tgz
from PIL import Image

from flowergan.data.archive import archive_name
from flowergan.data.errors import DataError
from flowergan.data.prepare import prepare_dataset

R = 32


def _png(z: zipfile.ZipFile, name: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(z.read(name))))


def _by_source(summary: dict) -> dict[str, str]:
    return {src: arc for arc, src in summary["images"]}


@pytest.fixture
def nasty(tmp_path):
    src = tmp_path / "photos"
    return src, make_nasty_folder(src)


def test_nasty_folder_each_case_converted_or_skipped_with_reason(nasty, tmp_path):
    src, expected = nasty
    out = tmp_path / "ds.zip"
    s = prepare_dataset(src, out, resolution=R, workers=1, progress=False)

    ok = {n for n, e in expected.items() if e == "ok"}
    assert set(_by_source(s)) == ok
    skipped = {d["file"]: d["reason"] for d in s["skipped"]}
    ignored = {d["file"]: d["reason"] for d in s["ignored"]}
    for name, outcome in expected.items():
        if outcome == "ok":
            continue
        reason = skipped.get(name) or ignored.get(name)
        assert reason is not None, f"{name} is neither written nor reported"
        assert outcome.lower() in reason.lower(), (name, reason)
    assert set(skipped) == {"truncated.jpg", "corrupt.jpg", "empty.jpg", "notes.png", "page.jpg", "icon.png"}
    assert set(ignored) == {"readme.txt", ".DS_Store", "._good.jpg"}
    c = s["counts"]
    assert (c["written"], c["skipped"], c["ignored"]) == (len(ok), 6, 3)
    assert c["exif_rotated"] == 1 and c["cmyk"] == 1 and c["palette"] == 1 and c["alpha"] == 1
    assert c["16_bit"] == 2 and c["grayscale"] == 1 and c["upscaled"] == 1
    assert s["upscaled"] == [{"file": "tiny.png", "size": [30, 24]}]

    # the summary on disk is the returned one; the zip holds exactly the written images + dataset.json
    assert json.loads((tmp_path / "ds.zip.summary.json").read_text())["images"] == s["images"]
    z = zipfile.ZipFile(out)
    names = set(z.namelist())
    assert names == {a for a, _ in s["images"]} | {"dataset.json"}
    assert json.loads(z.read("dataset.json")) == {"labels": None}
    m = _by_source(s)
    for arc in m.values():
        img = Image.open(io.BytesIO(z.read(arc)))
        assert img.size == (R, R) and img.mode == "RGB"

    rot = _png(z, m["rotated.jpg"]).astype(int)  # displayed: blue on the left, red on the right
    assert np.abs(rot[:, :12].mean((0, 1)) - BLUE).max() < 25
    assert np.abs(rot[:, -12:].mean((0, 1)) - RED).max() < 25
    assert (_png(z, m["gray.png"]) == 77).all()
    assert (_png(z, m["gray16.png"]) == round(40000 / 65535 * 255)).all()  # scaled, not clipped to 255
    assert (_png(z, m["rgb16.png"]) == (255, 0, 128)).all()
    assert np.abs(_png(z, m["cmyk.jpg"]).astype(int) - (255, 0, 0)).max() <= 12
    pal = _png(z, m["palette.png"]).astype(int)
    assert np.abs(pal[:12].mean((0, 1)) - RED).max() < 3 and np.abs(pal[-12:].mean((0, 1)) - BLUE).max() < 3
    rgba = _png(z, m["rgba.png"]).astype(int)  # transparent left half composited on white
    assert (rgba[:, :12] == 255).all() and np.abs(rgba[:, -12:] - GREEN).max() <= 2
    assert (_png(z, m["tiny.png"]) == 128).all()
    assert m["a/photo.jpg"] != m["b/photo.jpg"]
    assert not (_png(z, m["a/photo.jpg"]) == _png(z, m["b/photo.jpg"])).all()


def test_rerun_and_worker_count_give_identical_bytes(nasty, tmp_path):
    src, _ = nasty
    a = prepare_dataset(src, tmp_path / "a.zip", resolution=R, workers=1, progress=False)
    prepare_dataset(src, tmp_path / "b.zip", resolution=R, workers=1, progress=False)
    prepare_dataset(src, tmp_path / "c.zip", resolution=R, workers=2, progress=False)
    za, zb, zc = (zipfile.ZipFile(tmp_path / f"{k}.zip") for k in "abc")
    for arc, _ in a["images"]:
        assert za.read(arc) == zb.read(arc) == zc.read(arc)
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes() == (tmp_path / "c.zip").read_bytes()


def _bands(tmp_path: Path) -> Path:
    """200 x 100 image with vertical bands green | red | blue | green, 50 px each."""
    a = np.zeros((100, 200, 3), np.uint8)
    for k, col in enumerate((GREEN, RED, BLUE, GREEN)):
        a[:, 50 * k:50 * (k + 1)] = col
    d = tmp_path / "bands"
    d.mkdir()
    Image.fromarray(a).save(d / "bands.png")
    return d


@pytest.mark.parametrize("transform", ["center-crop", "pad", "stretch"])
def test_transforms_geometry(tmp_path, transform):
    src = _bands(tmp_path)
    prepare_dataset(src, tmp_path / "o.zip", resolution=R, transform=transform, workers=1, progress=False)
    img = _png(zipfile.ZipFile(tmp_path / "o.zip"), archive_name(0)).astype(int)

    def near(region, col, tol=6):
        return np.abs(region.reshape(-1, 3) - col).max() <= tol

    if transform == "center-crop":  # the central 100 x 100: red | blue, no green
        assert near(img[:, 2:13], RED) and near(img[:, 19:30], BLUE)
    elif transform == "pad":  # 32 x 16 centred, black bars of 8 rows above and below
        assert (img[:8] == 0).all() and (img[24:] == 0).all()
        mid = img[9:23]
        assert near(mid[:, 1:6], GREEN) and near(mid[:, 10:14], RED) and near(mid[:, 18:22], BLUE)
        assert near(mid[:, 26:31], GREEN)
    else:  # four bands of 8 columns over the full height
        assert near(img[:, 1:6], GREEN) and near(img[:, 10:14], RED) and near(img[:, 18:22], BLUE)
        assert near(img[:, 26:31], GREEN)


def test_oxford_archive_with_mat_labels_gives_0_based_classes(tmp_path):
    labels = [3, 1, 102, 5, 5, 77]
    tgz, mat = make_oxford_tgz(tmp_path, labels)
    s = prepare_dataset(tgz, tmp_path / "ox.zip", resolution=R, labels=mat, workers=1, progress=False)
    z = zipfile.ZipFile(tmp_path / "ox.zip")
    got = json.loads(z.read("dataset.json"))["labels"]
    assert got == [[archive_name(i), c - 1] for i, c in enumerate(labels)]
    assert [src for _, src in s["images"]] == [f"jpg/image_{i:05d}.jpg" for i in range(1, 7)]
    assert s["labels"]["num_classes"] == 102 and s["source_kind"] == "tar"

    from flowergan.data.dataset import ImageDataset

    ds = ImageDataset(tmp_path / "ox.zip", use_labels=True)
    assert ds.label_dim == 102
    assert [int(np.argmax(ds[i][1])) for i in range(len(ds))] == [c - 1 for c in labels]


def test_labels_mismatch_is_an_error_and_writes_nothing(tmp_path):
    tgz, _ = make_oxford_tgz(tmp_path, [1, 2, 3, 4])
    import scipy.io

    mat = tmp_path / "seven.mat"
    scipy.io.savemat(str(mat), {"labels": np.array([[1, 2, 3, 4, 5, 6, 7]])})
    out = tmp_path / "o" / "bad.zip"
    with pytest.raises(DataError, match=r"7 labels but 3 of those images are missing.*image_00005"):
        prepare_dataset(tgz, out, resolution=R, labels=mat, workers=1, progress=False)
    assert not out.exists() and not (tmp_path / "o" / "bad.zip.summary.json").exists()
    assert list((tmp_path / "o").iterdir()) == []
    # a file that is not named image_NNNNN cannot be matched
    src = tmp_path / "f" / "jpg"
    src.mkdir(parents=True)
    Image.new("RGB", (40, 40)).save(src / "image_00001.jpg")
    Image.new("RGB", (40, 40)).save(src / "holiday.jpg")
    with pytest.raises(DataError, match="holiday.jpg"):
        prepare_dataset(tmp_path / "f", out, resolution=R, labels=mat, max_images=2, workers=1, progress=False)
    # --max-images takes a prefix, so a longer labels file is fine
    s = prepare_dataset(tgz, out, resolution=R, labels=mat, max_images=2, workers=1, progress=False)
    assert json.loads(zipfile.ZipFile(out).read("dataset.json"))["labels"] == [[archive_name(0), 0],
                                                                               [archive_name(1), 1]]
    assert s["counts"]["written"] == 2


def test_existing_output_is_kept_without_overwrite(nasty, tmp_path):
    src, _ = nasty
    out = tmp_path / "ds.zip"
    out.write_bytes(b"precious")
    with pytest.raises(DataError, match="already exists.*--overwrite"):
        prepare_dataset(src, out, resolution=R, workers=1, progress=False)
    assert out.read_bytes() == b"precious"
    prepare_dataset(src, out, resolution=R, workers=1, overwrite=True, progress=False)
    assert zipfile.is_zipfile(out)


def test_truncated_tgz_is_an_error_not_fewer_images(tmp_path):
    """A cut download must not silently become a smaller dataset (issue #15): an error, and nothing written."""
    tgz, _ = make_oxford_tgz(tmp_path, [1] * 12, size=(120, 100))
    cut = tmp_path / "cut.tgz"
    cut.write_bytes(tgz.read_bytes()[: tgz.stat().st_size * 2 // 3])
    with pytest.raises(DataError, match="truncated or corrupt after .* Re-download"):
        prepare_dataset(cut, tmp_path / "o.zip", resolution=R, workers=1, progress=False)
    assert not (tmp_path / "o.zip").exists() and not list(tmp_path.glob(".o.zip*"))


def test_official_zip_round_trip_keeps_labels(tmp_path):
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(5)]
    src = make_dataset_zip(tmp_path / "official.zip", imgs, [4, 0, 2, 2, 1])
    s = prepare_dataset(src, tmp_path / "small.zip", resolution=R, workers=1, progress=False)
    labels = json.loads(zipfile.ZipFile(tmp_path / "small.zip").read("dataset.json"))["labels"]
    assert [c for _, c in labels] == [4, 0, 2, 2, 1]
    assert s["labels"]["source"].endswith("dataset.json")


def test_no_images_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="no image files found"):
        prepare_dataset(tmp_path / "empty", tmp_path / "o.zip", resolution=R, progress=False)
    with pytest.raises(DataError, match="power of two"):
        prepare_dataset(tmp_path / "empty", tmp_path / "o.zip", resolution=100, progress=False)
    assert not (tmp_path / "o.zip").exists()


def test_cli_prints_every_skipped_file_and_errors_cleanly(nasty, tmp_path):
    from flowergan.cli.main import cli

    src, expected = nasty
    r = CliRunner().invoke(cli, ["prepare", str(src), "--out", str(tmp_path / "c.zip"), "--resolution", "32",
                                 "--workers", "1", "--no-progress"])
    assert r.exit_code == 0, r.output
    for name, outcome in expected.items():
        if outcome != "ok":
            assert f"{name}: " in r.output
    assert "Summary saved to" in r.output
    r = CliRunner().invoke(cli, ["prepare", str(src), "--out", str(tmp_path / "c.zip"), "--resolution", "32"])
    assert r.exit_code != 0 and "already exists" in r.output
    r = CliRunner().invoke(cli, ["prepare", "synthetic", "--out", str(tmp_path / "s.zip"), "--labels",
                                 str(tmp_path / "c.zip")])
    assert r.exit_code != 0 and "does not apply to 'synthetic'" in r.output


def test_sigkill_midway_leaves_no_output(tmp_path):
    out = tmp_path / "big.zip"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "flowergan", "prepare", "synthetic", "--out", str(out),
                             "--count", "100000", "--resolution", "32", "--workers", "1", "--no-progress"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        partial = []
        while time.time() < deadline and not partial:
            partial = [p for p in tmp_path.iterdir() if p.name.startswith(".big.zip.partial-")]
            time.sleep(0.1)
        assert partial, "prepare never started writing"
        while partial[0].stat().st_size < 20_000 and time.time() < deadline:  # some images are in
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists() and not (tmp_path / "big.zip.summary.json").exists()
    # the next run cleans up the dead run's temp file and succeeds
    from flowergan.data.synthetic import prepare_synthetic

    prepare_synthetic(out, count=3, resolution=R, workers=1, progress=False)
    assert zipfile.is_zipfile(out)
    assert [p.name for p in tmp_path.iterdir() if ".partial-" in p.name] == []


def test_a_worker_dying_costs_only_its_file(tmp_path):
    from data_testkit import crashing_convert, jpeg_bytes, noisy

    from flowergan.data.prepare import run_conversions

    good = jpeg_bytes(noisy(40, 40, 0))
    items = [(i, f"f{i}.jpg", b"CRASH" if i == 5 else good, None) for i in range(12)]
    results = []
    run_conversions(iter(items), (R, "center-crop", 16), 2, results.append, fn=crashing_convert)
    assert [r[0] for r in results] == list(range(12))  # every file reported, in order
    assert [r[2] for r in results] == [i != 5 for i in range(12)]
    assert "crashed" in results[5][3]
