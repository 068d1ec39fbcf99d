"""The metrics against flowergan's own Generator (protocol compatibility) and the bench record."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from metrics_testkit import MeanColor, constant_images, use_reader, write_folder

from flowergan.benchmarking.metrics import run_bench
from flowergan.metrics import compute


def _tiny_generator():
    networks = pytest.importorskip("flowergan.networks.generator", reason="flowergan.networks is not built yet")
    torch.manual_seed(0)
    G = networks.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
                           synthesis_kwargs=dict(channel_base=64, channel_max=8))
    return G.eval().requires_grad_(False)


def test_real_generator_through_the_protocol(tmp_path, monkeypatch):
    use_reader(monkeypatch)
    monkeypatch.setenv("FLOWERGAN_CACHE", str(tmp_path / "cache"))
    data = write_folder(tmp_path / "real", constant_images(np.random.RandomState(0).randint(0, 255, (12, 3)), 16))
    G = _tiny_generator()
    noise = {n: b.clone() for n, b in G.named_buffers() if n.endswith("noise_const")}
    assert noise, "the generator has constant-noise buffers to randomise"

    def run():
        return compute(G, "fid,ppl_zfull,ppl_wend", data, num_gen=8, batch_size=8, inception=MeanColor(),
                       lpips=lambda x: x.flatten(1), progress=False, seed=3)

    first, second = run(), run()
    for name in ("fid", "ppl_zfull", "ppl_wend"):
        assert math.isfinite(first[name]["value"]) and first[name]["value"] > 0
        assert first[name]["value"] == second[name]["value"]  # seeded: same numbers twice
    for n, b in G.named_buffers():
        if n in noise:
            assert torch.equal(b, noise[n])  # PPL restored the buffers it randomised


def test_run_bench_record():
    det = MeanColor()
    (rec,) = run_bench(batch=4, num=6, resolution=32, repeats=2, warmup=1, detector=det)
    assert det.seen == 6 * 3  # 1 warm-up + 2 timed runs of 6 images in batches of 4
    assert rec["what"] == "fid" and rec["detector"] == "mean-color"
    assert rec["img_per_s"] == pytest.approx(6 / rec["sec_per_batch"])
    assert rec["config"] == {"batch": 4, "num": 6, "resolution": 32, "repeats": 2, "warmup": 1}
    assert {"peak_mem_mb", "device", "torch"} <= set(rec)
