"""The training loader (issue #12): lazy reads give the in-memory path's images with bounded memory, the
cache choice follows the dataset's size, and the checkpointed sampler position makes resume exact."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

from flowergan.benchmarking.data import write_smooth_zip
from flowergan.data.dataset import ImageDataset, InfiniteSampler
from flowergan.data.loader import BatchLoader, choose_cache


@pytest.fixture(scope="module")
def zip128(tmp_path_factory):
    return write_smooth_zip(tmp_path_factory.mktemp("ld") / "ds.zip", 48, 128, seed=2)


def _batches(ds, n, workers=0, state=None, batch=8):
    s = InfiniteSampler(len(ds), seed=7)
    if state is not None:
        s.load_state_dict(state)
    loader = BatchLoader(ds, s, batch, torch.device("cpu"), workers=workers)
    out = [loader.next() for _ in range(n)]
    return out, loader


def test_lazy_reads_give_the_in_memory_images(zip128):
    mem, _ = _batches(ImageDataset(zip128, xflip=True, cache="memory"), 7)
    lazy, _ = _batches(ImageDataset(zip128, xflip=True, cache=None), 7, workers=2)
    for (a, la), (b, lb) in zip(mem, lazy):
        assert a.dtype == torch.uint8 and a.shape == (8, 3, 128, 128)
        assert torch.equal(a, b) and torch.equal(la, lb)
    # and they are the sampler's items, read one by one
    ds, s = ImageDataset(zip128, xflip=True), InfiniteSampler(96, seed=7)
    idx = s.take(8)
    assert torch.equal(mem[0][0], torch.from_numpy(np.stack([ds[int(i)][0] for i in idx])))


def test_lazy_memory_stays_bounded(zip128):
    """Reading the whole dataset twice lazily holds only a few batches, not the dataset (3.5 MB decoded)."""
    ds = ImageDataset(zip128, cache=None)
    batch_bytes = 8 * 3 * 128 * 128
    s = InfiniteSampler(len(ds), seed=0)
    loader = BatchLoader(ds, s, 8, torch.device("cpu"), workers=0)
    tracemalloc.start()
    try:
        for _ in range(12):  # 96 images: the dataset twice
            loader.next()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 6 * batch_bytes < ds.decoded_bytes * 2
    # the memory cache does hold it all
    tracemalloc.start()
    try:
        ImageDataset(zip128, cache="memory")
        _, peak_mem = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_mem >= ds.decoded_bytes


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_from_the_loader_state_is_exact(zip128, workers):
    ds = ImageDataset(zip128, xflip=True, cache=None)
    straight, _ = _batches(ds, 9, workers=workers)
    first, loader = _batches(ds, 4, workers=workers)
    state = loader.sampler_state()  # taken while later batches are already being prepared
    assert state["pos"] == 32 % 96 and state["epoch"] == 0
    rest, _ = _batches(ds, 5, workers=workers, state=state)
    for (a, _), (b, _) in zip(straight, first + rest):
        assert torch.equal(a, b)


def test_cache_choice_follows_size():
    gb = 2**30
    assert choose_cache(1 * gb, ram=16 * gb) == "memory"
    assert choose_cache(220 * gb, ram=128 * gb) is None  # 70k images at 1024: lazy from the zip
    assert choose_cache(220 * gb, "memory", ram=128 * gb) == "memory"  # the flag overrides
    assert choose_cache(1, "lazy") is None and choose_cache(1, "mmap") == "mmap"
    with pytest.raises(ValueError, match="data cache 'ram'"):
        choose_cache(1, "ram")


def test_trainer_resume_with_lazy_data_and_workers_is_exact(tmp_path):
    """A run reading lazily through 2 worker processes, split by a checkpoint taken while the next batch is
    already prepared, ends with the same weights as the straight run."""
    from flowergan.config import preset
    from flowergan.networks.run_folder import list_checkpoints
    from flowergan.networks.store import load_model_dir
    from flowergan.training.config import TrainConfig
    from flowergan.training.loop import Trainer, train
    from flowergan.training.plan import plan_training

    cfg = preset("tiny").replace(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
    z = write_smooth_zip(tmp_path / "ds16.zip", 20, 16, seed=4)

    def run(out, kimg, resume=None):
        out.mkdir(exist_ok=True)
        ds = ImageDataset(z, xflip=True, cache=None)
        tcfg = TrainConfig(batch=4, kimg=kimg, snap=0.008, r1_interval=2, pl_interval=2, aug="ada", ada_interval=1,
                           ada_kimg=1, p=0.1, seed=3, data_workers=2, data_cache="lazy")
        t = Trainer(plan_training(cfg, tcfg, device="cpu", resume=resume), out, ds, device=torch.device("cpu"))
        train(t, progress=False)
        return t

    run(tmp_path / "a", 0.016)
    run(tmp_path / "b", 0.008)
    run(tmp_path / "b", 0.016, resume=list_checkpoints(tmp_path / "b")[-1])
    wa = load_model_dir(list_checkpoints(tmp_path / "a")[-1])
    wb = load_model_dir(list_checkpoints(tmp_path / "b")[-1])
    for name in ("G", "G_ema", "D"):
        sa, sb = wa[name].state_dict(), wb[name].state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), name
