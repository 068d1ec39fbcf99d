"""Procedural flowers: deterministic per (seed, index) whatever the worker count, family labels, variety."""

from __future__ import annotations

import colorsys
import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from flowergan.data.archive import archive_name
from flowergan.data.synthetic import FAMILIES, prepare_synthetic, render_flower


def test_same_bytes_for_any_worker_count_and_matches_render(tmp_path):
    a = prepare_synthetic(tmp_path / "a.zip", count=10, resolution=32, seed=3, workers=1, progress=False)
    prepare_synthetic(tmp_path / "b.zip", count=10, resolution=32, seed=3, workers=2, progress=False)
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    z = zipfile.ZipFile(tmp_path / "a.zip")
    img = np.asarray(Image.open(io.BytesIO(z.read(archive_name(7)))))
    assert (img == render_flower(3, 7, 32)[0]).all()
    assert json.loads(z.read("dataset.json")) == {"labels": None}
    assert a["count"] == 10 and sum(a["families"].values()) == 10


def test_seed_and_index_change_the_image():
    base = render_flower(0, 0, 32)[0]
    assert (render_flower(0, 0, 32)[0] == base).all()
    assert not (render_flower(1, 0, 32)[0] == base).all()
    assert not (render_flower(0, 1, 32)[0] == base).all()


def test_labels_by_family(tmp_path):
    prepare_synthetic(tmp_path / "l.zip", count=12, resolution=32, seed=0, labels_by_family=True, workers=1,
                      progress=False)
    labels = json.loads(zipfile.ZipFile(tmp_path / "l.zip").read("dataset.json"))["labels"]
    assert [n for n, _ in labels] == [archive_name(i) for i in range(12)]
    assert [c for _, c in labels] == [render_flower(0, i, 32)[1] for i in range(12)]
    assert all(0 <= c < len(FAMILIES) for _, c in labels)
    for f in range(len(FAMILIES)):
        assert render_flower(5, 0, 32, family=f)[1] == f


@pytest.mark.parametrize("resolution", [32, 64])
def test_images_are_varied_and_not_flat(resolution):
    imgs = [render_flower(11, i, resolution, family=i % len(FAMILIES))[0] for i in range(21)]
    assert all(im.shape == (resolution, resolution, 3) and im.dtype == np.uint8 for im in imgs)
    assert all(im.std() > 12 for im in imgs)  # a scene, not a flat fill
    # the flower (centre) stands out from the backdrop (corners)
    c = resolution // 4
    contrast = [np.abs(im[c:-c, c:-c].mean((0, 1)) - np.concatenate(
        [im[:4, :4], im[:4, -4:]]).reshape(-1, 3).mean(0)).max() for im in imgs]
    assert np.median(contrast) > 25
    hues = set()
    for im in imgs:  # the dominant hue of the saturated pixels, in 30-degree bins
        px = im[c:-c, c:-c].reshape(-1, 3) / 255.0
        hsv = np.array([colorsys.rgb_to_hsv(*p) for p in px[::3]])
        sat = hsv[(hsv[:, 1] > 0.35) & (hsv[:, 2] > 0.3)]
        if len(sat):
            hues.add(int(np.median(sat[:, 0]) * 12))
    assert len(hues) >= 4
    assert len({im.tobytes() for im in imgs}) == len(imgs)
