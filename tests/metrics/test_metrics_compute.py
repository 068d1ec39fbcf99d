"""`compute()` end to end with injected feature networks and protocol-only generators; PPL against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from metrics_testkit import MeanColor, ReplayG, constant_images, use_reader, write_folder

import flowergan.metrics.features as features
import flowergan.metrics.registry as registry
from flowergan.metrics import compute, scalars
from flowergan.metrics.ppl import perceptual_path_length

OPEN_DATASET = features.open_dataset  # before any test replaces it
COLORS = np.random.RandomState(0).randint(20, 230, size=(10, 3))


@pytest.fixture
def data(tmp_path, monkeypatch):
    use_reader(monkeypatch)
    monkeypatch.setenv("FLOWERGAN_CACHE", str(tmp_path / "cache"))
    return write_folder(tmp_path / "real", constant_images(COLORS))


def test_replayed_dataset_gives_zero_fid_exact_kid_and_full_pr(data):
    det = MeanColor()
    G = ReplayG(constant_images(COLORS))
    res = compute(G, "fid,kid,pr", data, num_gen=10, inception=det, vgg16=det, progress=False, kid_subsets=2)
    assert list(res) == ["fid", "kid", "pr"]
    assert abs(res["fid"]["value"]) < 1e-6
    # identical feature sets with subsets as large as the sets: KID = 2 (sum K - m tr K) / (m^2 (m - 1))
    x = COLORS.astype(np.float64)
    k = (x @ x.T / 3 + 1) ** 3
    assert res["kid"]["value"] == pytest.approx(2 * (k.sum() - 10 * np.trace(k)) / (100 * 9), rel=1e-6)
    assert res["pr"]["value"] == {"precision": 1.0, "recall": 1.0}
    rec = res["fid"]
    assert rec["num_gen"] == 10 and rec["num_real"] == 10 and rec["detector"] == "mean-color" and rec["seconds"] >= 0
    assert scalars(res) == {"fid": rec["value"], "kid": res["kid"]["value"], "pr_precision": 1.0, "pr_recall": 1.0}


def test_shifted_colors_give_fid_of_the_shift(data):
    # Same covariance, mean moved by (16, 8, -8): FID = |shift|^2 = 256 + 64 + 64 exactly.
    G = ReplayG(constant_images(COLORS + np.array([16, 8, -8])))
    got = []
    res = compute(G, ["fid", "kid"], data, num_gen=10, inception=MeanColor(), progress=False, on_result=got.append)
    assert res["fid"]["value"] == pytest.approx(384.0, rel=1e-6)
    x, y = COLORS.astype(np.float64), COLORS + np.array([16.0, 8.0, -8.0])
    kern = lambda u, v: (u @ v.T / 3 + 1) ** 3
    off = ~np.eye(10, dtype=bool)
    mmd2_u = kern(x, x)[off].mean() + kern(y, y)[off].mean() - 2 * kern(x, y).mean()  # full subsets: exact
    assert res["kid"]["value"] == pytest.approx(mmd2_u, rel=1e-6)
    assert [r["metric"] for r in got] == ["fid", "kid"]


def test_generated_count_and_dataset_cache(data, tmp_path):
    det = MeanColor(sha256="ab" * 32)  # a sha256 attribute makes the real statistics cacheable
    compute(ReplayG(constant_images(COLORS)), "fid", data, num_gen=7, inception=det, progress=False, batch_size=4)
    assert det.seen == 10 + 7
    assert len(list((tmp_path / "cache" / "metrics").glob("*.npz"))) == 1
    res = compute(ReplayG(constant_images(COLORS)), "fid", data, num_gen=7, inception=det, progress=False)
    assert det.seen == 10 + 7 + 7  # real features came from the cache
    assert res["fid"]["num_real"] == 10
    write_folder(data, constant_images(np.random.RandomState(1).randint(0, 255, (11, 3))))  # changed: new key
    compute(ReplayG(constant_images(COLORS)), "fid", data, num_gen=7, inception=det, progress=False)
    assert det.seen == 10 + 7 + 7 + 11 + 7
    compute(ReplayG(constant_images(COLORS)), "fid", data, num_gen=7, inception=det, progress=False, num_real=5)
    assert det.seen == 10 + 7 + 7 + 11 + 7 + 5 + 7  # another number of real images is another key


class _LabelledSet:
    """In-memory dataset with the ImageDataset contract and one-hot labels."""

    def __init__(self, n: int, label_dim: int):
        self.images = constant_images(COLORS[:n]).transpose(0, 3, 1, 2)
        self.labels = np.eye(max(label_dim, 1), dtype=np.float32)[np.arange(n) % max(label_dim, 1)][:, :label_dim]
        self.label_dim, self.resolution = label_dim, 8

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], self.labels[i]


def test_conditional_generator_gets_dataset_labels(tmp_path, monkeypatch):
    sets = {}
    monkeypatch.setattr(registry, "open_dataset", lambda p, use_labels=False: sets.setdefault(
        use_labels, _LabelledSet(6, 3 if use_labels else 0)))
    G = ReplayG(constant_images(COLORS[:6]), c_dim=3)
    compute(G, "fid", tmp_path, num_gen=12, inception=MeanColor(), progress=False, batch_size=5)
    c = torch.cat(G.calls)
    assert c.shape == (12, 3) and torch.all(c.sum(1) == 1) and torch.all((c == 0) | (c == 1))
    monkeypatch.setattr(registry, "open_dataset", lambda p, use_labels=False: _LabelledSet(6, 0))
    with pytest.raises(ValueError, match="labels of size 3"):
        compute(ReplayG(constant_images(COLORS[:6]), c_dim=3), "fid", tmp_path, num_gen=4, inception=MeanColor())


def test_bad_requests_have_clear_errors(data):
    G = ReplayG(constant_images(COLORS))
    with pytest.raises(ValueError, match="unknown metric 'fidd'.*fid"):
        compute(G, "fidd", data, num_gen=4, inception=MeanColor())
    with pytest.raises(ValueError, match="--data"):
        compute(G, "fid", None, num_gen=4, inception=MeanColor())
    with pytest.raises(ValueError, match="G.mapping"):
        compute(G, "ppl_wend", None, num_gen=4, lpips=lambda x: x.flatten(1))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        OPEN_DATASET(data / "nope")


# ---------------------------------------------------------------- PPL


class LinearG:
    """G(z) = a * z as a 3x8x8 image (mapping = identity, one w); records the noise_mode it is called with."""

    def __init__(self, a: float):
        self.a, self.z_dim, self.c_dim, self.modes = a, 3 * 8 * 8, 0, []

    def mapping(self, z, c):
        return z[:, None, :]

    def synthesis(self, ws, noise_mode="random"):
        self.modes.append(noise_mode)
        return self.a * ws[:, 0].reshape(-1, 3, 8, 8)

    def __call__(self, z, c, noise_mode="random"):
        return self.synthesis(self.mapping(z, c), noise_mode=noise_mode)


def _flat(img):  # "LPIPS" = squared L2 distance in [0, 255] pixel units
    return img.flatten(1)


def test_ppl_w_end_closed_form():
    # t = 0: w(eps) - w(0) = eps (w1 - w0), so each length is (127.5 a)^2 |w1 - w0|^2, and |w1 - w0|^2 ~ 2 chi2_d:
    # mean 2 d. The 1%-99% trimmed mean of 400 samples is within ~1% of it.
    a, d = 0.3, 192
    G = LinearG(a)
    ppl = perceptual_path_length(G, _flat, 400, space="w", sampling="end", crop=False, batch_size=50,
                                 progress=False)
    assert ppl == pytest.approx((127.5 * a) ** 2 * 2 * d, rel=0.03)
    assert set(G.modes) == {"const"}


def test_ppl_z_end_closed_form():
    # Slerp moves along the great circle at angular speed theta = angle(z0, z1), so each length is
    # (127.5 a)^2 theta^2; in d = 192 dimensions E[theta^2] = pi^2 / 4 + O(1/d).
    a, d = 10.0, 192
    ppl = perceptual_path_length(LinearG(a), _flat, 400, space="z", sampling="end", crop=False, batch_size=50,
                                 progress=False)
    assert ppl == pytest.approx((127.5 * a) ** 2 * (math.pi ** 2 / 4 + 1 / d), rel=0.02)


def test_ppl_registry_crop_and_noise_buffers_restored(tmp_path):
    class ModuleG(torch.nn.Module):
        z_dim, c_dim = 3 * 16 * 16, 0

        def __init__(self):
            super().__init__()
            self.register_buffer("noise_const", torch.full([1, 3, 16, 16], 0.25))
            self.seen = []

        def forward(self, z, c, noise_mode="random"):
            self.seen.append(self.noise_const.clone())
            return 5.0 * z.reshape(-1, 3, 16, 16) + self.noise_const

    G = ModuleG()
    shapes = []
    res = compute(G, "ppl", None, num_gen=8, batch_size=8, lpips=lambda x: shapes.append(x.shape) or x.flatten(1),
                  progress=False)
    assert res["ppl_zfull"]["value"] > 0 and res["ppl_zfull"]["num_real"] is None
    # PPL batch = batch_size // 4 = 2 pairs (t, t + eps), centre crop rows 6:14, cols 4:12 of 16
    assert shapes[0] == (2 * 2, 3, 8, 8)
    assert torch.all(G.noise_const == 0.25)  # randomised per batch during PPL, restored afterwards
    assert not torch.all(G.seen[0] == 0.25)
