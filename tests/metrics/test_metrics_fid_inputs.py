"""`flowergan fid` checks both image sets before any feature is extracted, leaves out generate's grid.png,
never suggests re-preparing a dataset, and warns that FID from fewer than 2,000 images is biased (issue #26)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from click.testing import CliRunner
from metrics_testkit import constant_images, save_fake_pool3, write_folder
from PIL import Image

import flowergan.metrics.detectors as detectors
import flowergan.metrics.registry as registry
from flowergan.cli.main import cli
from flowergan.metrics.detectors import DetectorInfo
from flowergan.metrics.download import sha256_file

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

COLORS = np.random.RandomState(0).randint(20, 230, size=(10, 3))
SHIFT = np.array([16, 8, -8])


@pytest.fixture
def sets(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWERGAN_CACHE", str(tmp_path / "cache"))
    for var in ("FLOWERGAN_INCEPTION", "FLOWERGAN_TRUSTED_SHA256", "FLOWERGAN_ALLOW_DOWNLOAD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(detectors, "_fid_helper_file", lambda: None)
    monkeypatch.setattr(registry, "_warned", set())
    a = write_folder(tmp_path / "a", constant_images(COLORS))
    b = write_folder(tmp_path / "b", constant_images(COLORS + SHIFT))
    det = save_fake_pool3(tmp_path / "fake_pool3.pt")
    monkeypatch.setitem(detectors.KNOWN_DETECTORS, sha256_file(det), DetectorInfo("fake-pool3", "pool3-299", "test"))
    return a, b, det


def _fid(*args):
    return CliRunner().invoke(cli, ["fid", *map(str, args), "--device", "cpu"])


def test_a_grid_png_beside_the_samples_is_not_a_sample(sets):
    a, b, det = sets
    Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(b / "grid.png")  # what `generate --grid` adds
    res = _fid(a, b, "--detector", det)
    assert res.exit_code == 0, res.output
    rec = json.loads(res.stdout.strip().splitlines()[-2])
    assert rec["num_b"] == 10
    assert rec["value"] == pytest.approx(float(np.sum((SHIFT / 128.0) ** 2)), rel=1e-4)  # as without the grid


def test_an_odd_image_is_refused_before_the_reals_are_read(sets, monkeypatch):
    a, b, det = sets
    Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(b / "extra.png")
    extracted = []
    real = registry.dataset_features
    monkeypatch.setattr(registry, "dataset_features", lambda *x, **k: extracted.append(x) or real(*x, **k))
    loaded = []
    monkeypatch.setattr(registry, "resolve_inception", lambda *x, **k: loaded.append(x))
    res = _fid(a, b, "--detector", det)
    assert res.exit_code == 2, res.output
    msg = res.output.strip().splitlines()[-1]
    assert "extra.png is 24x24" in msg and "move the other files out of the folder" in msg
    assert "prepare" not in msg and "--resolution" not in msg  # re-preparing is not the fix
    assert extracted == [] and loaded == []  # nothing was extracted, the detector not even loaded


def test_too_few_images_or_none_are_refused_first(sets, tmp_path):
    a, b, det = sets
    one = write_folder(tmp_path / "one", constant_images(COLORS[:1]))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images")
    for other, want in ((one, "at least 2 images, found 1"), (empty, "contains no images")):
        res = _fid(a, other, "--detector", det)
        assert res.exit_code == 2 and want in res.output, res.output
    res = _fid(a, a, "--num", "1", "--detector", det)
    assert res.exit_code == 2, res.output


def test_fewer_than_2000_images_warns_that_fid_is_biased(sets, caplog):
    a, b, det = sets
    with caplog.at_level(logging.WARNING, logger="flowergan.metrics.registry"):
        res = _fid(a, b, "--detector", det)
    assert res.exit_code == 0, res.output
    warned = [r.getMessage() for r in caplog.records if "biased" in r.getMessage()]
    assert len(warned) == 2 and all("10 images" in w and "2000" in w for w in warned), warned


def test_warn_few_images_threshold_and_once():
    registry._warned.clear()
    assert registry.warn_few_images(1999, "x") and not registry.warn_few_images(1999, "x")
    assert not registry.warn_few_images(2000, "y")


def test_metrics_with_few_generated_images_warns(sets, monkeypatch, caplog):
    """The trainer's `--metrics-num 100` goes through compute(): FID and KID warn there, PPL does not."""
    a, b, det = sets

    def stop(*args, **kwargs):
        raise RuntimeError("stop")

    monkeypatch.setattr(registry, "resolve_inception", stop)
    monkeypatch.setattr(registry, "resolve_lpips", stop)
    G = type("G", (), {"z_dim": 4, "c_dim": 0})()
    with caplog.at_level(logging.WARNING, logger="flowergan.metrics.registry"):
        with pytest.raises(RuntimeError):
            registry.compute(G, "ppl", None, 100)
        assert not [r for r in caplog.records if "biased" in r.getMessage()]
        with pytest.raises(RuntimeError):
            registry.compute(G, "fid", a, 100)
    assert [r for r in caplog.records if "the generated set has 100 images" in r.getMessage()]
