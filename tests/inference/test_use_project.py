"""Projection: recovering a generated image, W vs W+, the target photo preparation, and the VGG16 gate."""

from __future__ import annotations

import hashlib
import logging
import time
import warnings

import numpy as np
import PIL.Image
import pytest
import torch
from testkit import official_uint8

from flowergan.inference import load_target, psnr
from flowergan.inference.perceptual import (
    ChecksumError,
    PerceptualError,
    download_vgg16,
    load_vgg16,
    pyramid_loss,
    resolve_vgg16,
)


def _generated_target(pipe, seed):
    G = pipe.G
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim))
    with torch.no_grad():
        return official_uint8(G(z, None, noise_mode="const"))[0]


def test_projection_recovers_a_generated_image(pipe, caplog):
    target = _generated_target(pipe, 7)
    start = pipe.generate([0], truncation_psi=0.0)[0]  # where the projector starts: the w_avg image
    t0 = time.perf_counter()
    with caplog.at_level(logging.WARNING):
        res = pipe.project(target, steps=200, space="w", seed=1, progress=False)
    seconds = time.perf_counter() - t0
    assert res.loss_name == "pixel-pyramid" and "fallback loss" in caplog.text  # no VGG16 here: said so
    print(f"\nprojection PSNR {res.psnr:.2f} dB (start {psnr(start, target):.2f} dB) in {seconds:.1f} s")
    assert res.psnr >= 20.0
    assert res.psnr > psnr(start, target) + 8
    assert res.psnr == pytest.approx(psnr(res.image, target))
    # W space: one vector for all layers; the saved w reproduces the image through the model itself
    assert res.w.shape == (8, 64) and np.allclose(res.w, res.w[:1])
    with torch.no_grad():
        again = official_uint8(pipe.G.synthesis(torch.from_numpy(res.w[None]), noise_mode="const"))[0]
    np.testing.assert_array_equal(again, res.image)
    assert res.w_steps.shape == (200, 8, 64) and res.losses[-1] < res.losses[0] / 5


def test_projection_w_plus_and_npz(pipe, tmp_path):
    target = _generated_target(pipe, 8)
    res = pipe.project(target, steps=20, space="w+", seed=2, progress=False, vgg16="none")
    assert res.w.shape == (8, 64) and not np.allclose(res.w, res.w[:1])  # per-layer ws
    res.save_npz(tmp_path / "w.npz")
    with np.load(tmp_path / "w.npz", allow_pickle=False) as f:
        assert f["w"].shape == (1, 8, 64) and f["w"].dtype == np.float32
        np.testing.assert_array_equal(f["w"][0], res.w)
    with pytest.raises(ValueError, match="space 'z'"):
        pipe.project(target, steps=2, space="z", progress=False)


def test_projection_is_seeded(pipe):
    target = _generated_target(pipe, 9)
    a = pipe.project(target, steps=5, seed=4, progress=False, vgg16="none")
    b = pipe.project(target, steps=5, seed=4, progress=False, vgg16="none")
    np.testing.assert_array_equal(a.w, b.w)


def test_load_target_center_crops_and_resizes(tmp_path):
    # 60x40 photo: left 10 and right 10 columns red, the middle 40x40 square blue
    arr = np.zeros([40, 60, 3], np.uint8)
    arr[:, :10] = arr[:, 50:] = (255, 0, 0)
    arr[:, 10:50] = (0, 0, 255)
    PIL.Image.fromarray(arr).save(tmp_path / "photo.png")
    t = load_target(tmp_path / "photo.png", 32)
    assert t.shape == (32, 32, 3) and t.dtype == np.uint8
    assert (t == (0, 0, 255)).all()  # only the blue square survives the crop
    g = load_target(arr, 16, channels=1)
    assert g.shape == (16, 16, 1)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_target(tmp_path / "missing.png", 32)


def test_pyramid_loss_closed_form():
    x = torch.zeros(1, 1, 16, 16)
    y = torch.full((1, 1, 16, 16), 0.5)
    # constant offset: no gradient term; MSE 0.25 at 16 and 8 px (two levels)
    assert float(pyramid_loss(x, y)) == pytest.approx(0.5)
    assert float(pyramid_loss(y, y)) == 0.0


# ---- the VGG16 (LPIPS) network: sha256 gate, download, use ------------------------------------------
class _StubLpips(torch.nn.Module):
    """Stands in for NVlabs' vgg16.pt: same call signature, simple features."""

    def forward(self, x: torch.Tensor, resize_images: bool = True, return_lpips: bool = False) -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(x / 255.0, 4).flatten(1)


@pytest.fixture()
def stub_vgg(tmp_path):
    path = tmp_path / "stub_vgg16.pt"
    with warnings.catch_warnings():  # recent torch marks TorchScript deprecated; it still works
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(_StubLpips()).save(str(path))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_untrusted_torchscript_is_refused(stub_vgg):
    path, sha = stub_vgg
    with pytest.raises(ChecksumError, match=f"sha256 {sha} is not a known VGG16 checksum.*--vgg16-sha256"):
        load_vgg16(path)
    with pytest.raises(ChecksumError, match=f"but {'00ff' * 16} was given"):
        load_vgg16(path, sha256="00ff" * 16)
    with pytest.raises(PerceptualError, match="not a sha256"):  # issue #26: a short one is not checked, refused
        load_vgg16(path, sha256="00ff")


def test_trusted_torchscript_is_used_for_projection(pipe, stub_vgg, monkeypatch):
    path, sha = stub_vgg
    assert load_vgg16(path, sha256=sha) is not None  # vouched for by the caller
    monkeypatch.setenv("FLOWERGAN_TRUSTED_SHA256", f"{sha}:nvlabs-vgg16")
    target = _generated_target(pipe, 3)
    res = pipe.project(target, steps=30, seed=0, progress=False, vgg16=str(path))
    assert res.loss_name == "lpips-vgg16" and res.losses[-1] < res.losses[0]


def test_auto_mode_uses_env_or_falls_back(stub_vgg, monkeypatch, caplog):
    path, sha = stub_vgg
    with caplog.at_level(logging.WARNING):
        assert resolve_vgg16(None) is None
    assert "fallback loss" in caplog.text and "--vgg16 download" in caplog.text
    assert resolve_vgg16("none") is None
    monkeypatch.setenv("FLOWERGAN_VGG16", str(path))
    with pytest.raises(ChecksumError):  # an explicitly configured file is never silently skipped
        resolve_vgg16(None)
    monkeypatch.setenv("FLOWERGAN_TRUSTED_SHA256", sha)
    assert resolve_vgg16(None) is not None


def test_download_checks_sha256(http_dir, stub_vgg, tmp_path):
    root, base = http_dir
    path, sha = stub_vgg
    (root / "vgg16.pt").write_bytes(path.read_bytes())
    dest = tmp_path / "cache" / "vgg16.pt"
    with pytest.raises(ChecksumError, match="nothing was saved"):
        download_vgg16(f"{base}/vgg16.pt", dest, sha256="0" * 64, progress=False)
    assert not dest.exists() and not list(dest.parent.glob("*.part"))
    got = download_vgg16(f"{base}/vgg16.pt", dest, sha256=sha, progress=False)
    assert got == dest and dest.read_bytes() == path.read_bytes()
    assert load_vgg16(dest, sha256=sha) is not None
