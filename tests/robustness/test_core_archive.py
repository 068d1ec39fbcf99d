"""Hostile dataset sources: zip and tar bombs, too many files, truncated tars, duplicate zip names, symbolic-link
loops and dangling links, absurd class labels. Each is bounded before reading and reported, nothing lost."""

from __future__ import annotations

import io
import json
import os
import tarfile
import zipfile

import numpy as np
import pytest
from core_kit import run_capped
from PIL import Image

from flowergan.data.errors import DataError
from flowergan.data.prepare import prepare_dataset

R = 16
MiB = 2**20


def png(colour, size=(20, 20)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def _zeros_member(zf: zipfile.ZipFile, name: str, size: int) -> None:
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with zf.open(info, "w", force_zip64=True) as f:
        chunk = bytes(16 * MiB)
        for _ in range(size // len(chunk)):
            f.write(chunk)


def _nothing_written(tmp_path, out="out.zip"):
    return not (tmp_path / out).exists() and not list(tmp_path.glob(f".{out}*"))


def test_zip_bomb_members_are_not_read_and_are_reported(tmp_path):
    """A ~1 MB zip holding a 1 GiB member (over the size limit) and a 64 MiB one (1000x, over the ratio limit):
    prepare, capped at 1 GB of address space, skips both with the reason and writes the real photos."""
    src = tmp_path / "bomb.zip"
    with zipfile.ZipFile(src, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for i, c in enumerate([(200, 0, 0), (0, 200, 0), (0, 0, 200)]):
            zf.writestr(f"ok{i}.png", png(c))
        _zeros_member(zf, "huge.png", 1024 * MiB)
        _zeros_member(zf, "dense.png", 64 * MiB)
    assert src.stat().st_size < 2 * MiB
    out = tmp_path / "out.zip"
    res = run_capped(f"from flowergan.data.prepare import prepare_dataset\nimport json\n"
                     f"s = prepare_dataset({str(src)!r}, {str(out)!r}, resolution={R}, workers=1, progress=False)\n"
                     f"print(json.dumps(s['ignored']))", mem_mb=1024, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    ignored = dict((d["file"], d["reason"]) for d in json.loads(res.stdout.strip().splitlines()[-1]))
    assert "over the 256 MB limit for one file" in ignored["huge.png"]
    assert "decompression bomb" in ignored["dense.png"] and "FLOWERGAN_ARCHIVE_MAX_RATIO" in ignored["dense.png"]
    assert len(zipfile.ZipFile(out).namelist()) == 3 + 1  # three photos + dataset.json


def test_tar_bomb_is_refused_while_listing(tmp_path):
    src = tmp_path / "bomb.tgz"
    with tarfile.open(src, "w:gz") as tf:
        for i in range(2):
            info = tarfile.TarInfo(f"z{i}.png")
            info.size = 48 * MiB
            tf.addfile(info, io.BytesIO(bytes(info.size)))
    with pytest.raises(DataError, match=r"decompress to more than .*x, over the 200x limit\): a decompression bomb"):
        prepare_dataset(src, tmp_path / "out.zip", resolution=R, workers=1, progress=False)
    assert _nothing_written(tmp_path)


def test_file_count_and_total_size_limits(tmp_path, monkeypatch):
    src = tmp_path / "many.zip"
    with zipfile.ZipFile(src, "w") as zf:
        for i in range(5):
            zf.writestr(f"p{i}.png", png((i * 40, 0, 0)))
    monkeypatch.setenv("FLOWERGAN_ARCHIVE_MAX_FILES", "4")
    with pytest.raises(DataError,
                       match=r"more than 4 files in the archive; raise the limit with FLOWERGAN_ARCHIVE_MAX_FILES"):
        prepare_dataset(src, tmp_path / "out.zip", resolution=R, workers=1, progress=False)
    monkeypatch.delenv("FLOWERGAN_ARCHIVE_MAX_FILES")
    monkeypatch.setenv("FLOWERGAN_ARCHIVE_MAX_TOTAL_GB", str(100 / 2**30))  # 100 bytes
    with pytest.raises(DataError,
                       match=r"decompress to more than .* GB; raise the limit with FLOWERGAN_ARCHIVE_MAX_TOTAL_GB"):
        prepare_dataset(src, tmp_path / "out.zip", resolution=R, workers=1, progress=False)
    assert _nothing_written(tmp_path)


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9])
def test_truncated_tgz_is_an_error(tmp_path, keep):
    src = tmp_path / "photos.tgz"
    rng = np.random.default_rng(0)
    with tarfile.open(src, "w:gz") as tf:
        for i in range(10):
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(buf, "PNG")
            info = tarfile.TarInfo(f"img{i}.png")
            info.size = len(buf.getvalue())
            tf.addfile(info, io.BytesIO(buf.getvalue()))
    cut = tmp_path / "cut.tgz"
    cut.write_bytes(src.read_bytes()[: int(src.stat().st_size * keep)])
    with pytest.raises(DataError, match=r"truncated or corrupt .*Re-download it"):
        prepare_dataset(cut, tmp_path / "out.zip", resolution=R, workers=1, progress=False)
    assert _nothing_written(tmp_path)


def test_duplicate_zip_member_reports_the_copy_it_used(tmp_path):
    src = tmp_path / "dup.zip"
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(src, "w") as zf:
        zf.writestr("flower.png", png((250, 0, 0)))   # first copy: red
        zf.writestr("flower.png", png((0, 0, 250)))   # second copy: blue
    s = prepare_dataset(src, tmp_path / "out.zip", resolution=R, workers=1, progress=False)
    (dup,) = [d for d in s["ignored"] if d["file"] == "flower.png"]
    assert "this later copy is ignored, the first copy of the name is the one used" in dup["reason"]
    assert s["images"] == [["00000/img00000000.png", "flower.png"]]
    img = np.asarray(Image.open(io.BytesIO(zipfile.ZipFile(tmp_path / "out.zip").read("00000/img00000000.png"))))
    assert img[..., 0].min() > 200 and img[..., 2].max() < 50, "the red (first) copy was used, as reported"


def test_symlink_loops_dangling_links_and_special_files_appear_in_the_summary(tmp_path):
    src = tmp_path / "photos"
    (src / "sub").mkdir(parents=True)
    (src / "ok.png").write_bytes(png((10, 200, 10)))
    (tmp_path / "elsewhere").mkdir()
    os.symlink(src / "ok.png", src / "link-to-ok.png")            # a link to a photo: used
    os.symlink(tmp_path / "missing.png", src / "dangling.png")
    os.symlink(src / "loop2.png", src / "loop1.png")
    os.symlink(src / "loop1.png", src / "loop2.png")
    os.symlink(src, src / "sub" / "back-to-top")                   # a folder loop
    os.symlink(tmp_path / "elsewhere", src / "other")              # a folder elsewhere: not followed
    os.mkfifo(src / "pipe.png")
    s = prepare_dataset(src, tmp_path / "out.zip", resolution=R, workers=1, progress=False)
    ignored = {d["file"]: d["reason"] for d in s["ignored"]}
    assert "dangling symbolic link" in ignored["dangling.png"]
    assert "symbolic link loop" in ignored["loop1.png"] and "symbolic link loop" in ignored["loop2.png"]
    assert "symbolic link loop" in ignored["sub/back-to-top/"]
    assert "symbolic link to a folder (not followed" in ignored["other/"]
    assert "not a regular file" in ignored["pipe.png"]
    assert sorted(n for _, n in s["images"]) == ["link-to-ok.png", "ok.png"]
    assert s["counts"]["ignored"] == len(s["ignored"]) == 6


def test_absurd_class_label_is_refused_before_allocating(tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    for i in range(3):
        (src / f"p{i}.png").write_bytes(png((i * 80, 0, 0)))
    labels = tmp_path / "labels.csv"
    labels.write_text("file,class\np0.png,0\np1.png,1\np2.png,99999999999\n")
    with pytest.raises(DataError, match=r"class 99999999999 means 100,000,000,000 classes.*FLOWERGAN_MAX_CLASSES"):
        prepare_dataset(src, tmp_path / "out.zip", resolution=R, labels=labels, workers=1, progress=False)
    assert _nothing_written(tmp_path)


def test_training_reader_refuses_an_absurd_class_label(tmp_path):
    """`train --cond` on a dataset.json holding class 99999999999 (would be a 1.1 TiB one-hot table)."""
    from flowergan.data.dataset import ImageDataset

    path = tmp_path / "d.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(2):
            zf.writestr(f"00000/img{i:08d}.png", png((0, 90, 0), (R, R)))
        zf.writestr("dataset.json", json.dumps({"labels": [["00000/img00000000.png", 0],
                                                           ["00000/img00000001.png", 99999999999]]}))
    with pytest.raises(DataError, match=r"class 99999999999 .*over the limit of 100,000"):
        ImageDataset(path, use_labels=True)



def test_zip_directory_count_is_checked_before_opening(tmp_path, monkeypatch):
    """The entry count comes from the end record, before zipfile builds an object per entry."""
    import flowergan.data.sources as sources

    src = tmp_path / "many.zip"
    with zipfile.ZipFile(src, "w") as zf:
        for i in range(6):
            zf.writestr(f"p{i}.png", png((i * 40, 0, 0)))
    monkeypatch.setenv("FLOWERGAN_ARCHIVE_MAX_FILES", "5")
    opened = []
    monkeypatch.setattr(sources.zipfile, "ZipFile", lambda *a, **k: opened.append(a))
    with pytest.raises(DataError, match="more than 5 files in the archive"):
        sources.open_source(src)
    assert opened == []


def test_training_reader_refuses_a_bomb_member(tmp_path):
    """`train --data` on a zip not made by prepare, holding a 64 MiB member stored at 1000x: refused at open."""
    from flowergan.data.dataset import ImageDataset

    path = tmp_path / "d.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("00000/img00000000.png", png((0, 90, 0), (R, R)))
        _zeros_member(zf, "00000/img00000001.png", 64 * MiB)
    with pytest.raises(DataError,
                       match=r"member '00000/img00000001.png': decompresses .*re-create it with flowergan prepare"):
        ImageDataset(path)
