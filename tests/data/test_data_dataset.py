"""ImageDataset (shapes, labels, x-flip, caches, sharding, errors) and InfiniteSampler (epochs, ranks, resume).

Datasets here are written directly with zipfile + PIL (data_testkit), independent of flowergan's writer."""

from __future__ import annotations

import os
import pickle
import zipfile

import numpy as np
import pytest
from data_testkit import make_dataset_zip

from flowergan.data.dataset import ImageDataset, InfiniteSampler
from flowergan.data.errors import DataError

N = 10


def _images(n=N, size=8):
    """Image i: value 10*i everywhere, marker 255 at column 0 of row 0 (so a flip is visible), channel c + i."""
    out = []
    for i in range(n):
        a = np.full((size, size, 3), 10 * i, np.uint8)
        a[..., 1] += 1
        a[0, 0] = 255
        out.append(a)
    return out


@pytest.fixture
def zipped(tmp_path):
    return make_dataset_zip(tmp_path / "ds.zip", _images(), [i % 3 for i in range(N)]), _images()


def test_items_shapes_and_one_hot_labels(zipped):
    path, imgs = zipped
    ds = ImageDataset(path, use_labels=True)
    assert len(ds) == N and ds.image_shape == (3, 8, 8) and ds.resolution == 8 and ds.num_channels == 3
    assert ds.has_labels and ds.label_dim == 3 and ds.name == "ds"
    for i in range(N):
        img, lab = ds[i]
        assert img.dtype == np.uint8 and (img == imgs[i].transpose(2, 0, 1)).all()
        assert lab.dtype == np.float32 and lab.tolist() == [float(k == i % 3) for k in range(3)]
    plain = ImageDataset(path)
    assert plain.label_dim == 0 and plain[3][1].shape == (0,) and not plain.has_labels and plain.labels_available


def test_xflip_doubles_with_mirrored_second_half(zipped):
    path, _ = zipped
    ds = ImageDataset(path, use_labels=True, xflip=True)
    assert len(ds) == 2 * N
    for i in range(N):
        a, la = ds[i]
        b, lb = ds[N + i]
        assert (b == a[:, :, ::-1]).all() and (la == lb).all()
        assert b[:, 0, -1].tolist() == [255, 255, 255] and a[:, 0, 0].tolist() == [255, 255, 255]
    with pytest.raises(IndexError):
        ds[2 * N]


@pytest.mark.parametrize("cache", [None, "memory", "mmap"])
def test_cache_modes_agree_and_get_batch_matches_items(zipped, tmp_path, cache):
    path, _ = zipped
    ds = ImageDataset(path, use_labels=True, xflip=True, cache=cache, cache_dir=tmp_path / "cache")
    idx = np.array([0, 13, 5, 19, 10, 3, 3])
    imgs, labels = ds.get_batch(idx)
    assert imgs.shape == (7, 3, 8, 8) and imgs.dtype == np.uint8 and labels.shape == (7, 3)
    for k, i in enumerate(idx):
        assert (imgs[k] == ds[i][0]).all() and (labels[k] == ds[i][1]).all()
    ref = ImageDataset(path, use_labels=True, xflip=True)
    assert all((ds[i][0] == ref[i][0]).all() for i in range(2 * N))
    imgs[:] = 0  # the batch is a copy: the cache is untouched
    assert (ds[0][0] == ref[0][0]).all()
    if cache == "mmap":
        files = list((tmp_path / "cache").glob("ds-*.npy"))
        assert files == [ds.cache_path()]
        assert np.load(files[0]).shape == (N, 3, 8, 8)
        again = ImageDataset(path, cache="mmap", cache_dir=tmp_path / "cache")
        assert again.cache_path() == ds.cache_path()
        os.utime(path, ns=(1, 1))  # the dataset changed: a new cache key
        assert ImageDataset(path, cache="mmap", cache_dir=tmp_path / "cache").cache_path() != ds.cache_path()


def test_shards_are_disjoint_strided_and_cover_everything(zipped, tmp_path):
    path, imgs = zipped
    seen = []
    for rank in range(3):
        ds = ImageDataset(path, shard=(rank, 3), cache="mmap", cache_dir=tmp_path / "c")
        values = [int(ds[i][0][0, 4, 4]) // 10 for i in range(len(ds))]
        assert values == list(range(rank, N, 3))
        seen += values
    assert sorted(seen) == list(range(N))
    with pytest.raises(ValueError):
        ImageDataset(path, shard=(3, 3))


def test_max_size_is_a_fixed_sorted_subset(zipped):
    path, _ = zipped
    a = ImageDataset(path, max_size=4)
    b = ImageDataset(path, max_size=4)
    va = [int(a[i][0][0, 4, 4]) for i in range(4)]
    assert len(a) == 4 and va == [int(b[i][0][0, 4, 4]) for i in range(4)] and va == sorted(va)


def test_plain_folder_reads_like_the_zip(zipped, tmp_path):
    path, _ = zipped
    folder = tmp_path / "folder"
    zipfile.ZipFile(path).extractall(folder)
    a, b = ImageDataset(path, use_labels=True), ImageDataset(folder, use_labels=True)
    assert len(a) == len(b) and a.label_dim == b.label_dim == 3
    assert all((a[i][0] == b[i][0]).all() and (a[i][1] == b[i][1]).all() for i in range(N))


@pytest.mark.parametrize("cache", [None, "mmap"])
def test_pickles_for_dataloader_workers(zipped, tmp_path, cache):
    path, _ = zipped
    ds = ImageDataset(path, use_labels=True, cache=cache, cache_dir=tmp_path / "c")
    ds[0]
    back = pickle.loads(pickle.dumps(ds))
    assert all((back[i][0] == ds[i][0]).all() for i in range(N))


def test_clear_errors_for_bad_datasets(tmp_path):
    with pytest.raises(DataError, match="neither a zip nor a folder"):
        ImageDataset(tmp_path / "missing.zip")
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("dataset.json", '{"labels": null}')
    with pytest.raises(DataError, match="contains no images"):
        ImageDataset(empty)
    imgs = _images(4)
    imgs[2] = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(DataError, match=r"img00000002.png is 16x16.*same size"):
        ImageDataset(make_dataset_zip(tmp_path / "mixed.zip", imgs, None))
    with pytest.raises(DataError, match="square"):
        ImageDataset(make_dataset_zip(tmp_path / "wide.zip", [np.zeros((8, 12, 3), np.uint8)], None))
    mismatch = make_dataset_zip(tmp_path / "lab.zip", _images(4), [0, 1, 2, 0])
    with zipfile.ZipFile(mismatch, "a") as zf:  # one more image, no label for it
        zf.writestr("00000/img00000009.png", zipfile.ZipFile(mismatch).read("00000/img00000000.png"))
    with pytest.raises(DataError, match=r"1 image\(s\) have no label.*img00000009"):
        ImageDataset(mismatch, use_labels=True)


def test_grayscale_dataset_has_one_channel(tmp_path):
    imgs = [np.full((8, 8), 7 * i, np.uint8) for i in range(3)]
    ds = ImageDataset(make_dataset_zip(tmp_path / "g.zip", imgs, None), use_labels=True)
    assert ds.image_shape == (1, 8, 8) and (ds[2][0] == 14).all()
    assert not ds.has_labels and not ds.labels_available and ds.label_dim == 0 and ds.get_batch([1])[1].shape == (1, 0)


def test_sampler_epochs_are_seeded_permutations():
    s = InfiniteSampler(10, seed=3)
    e0, e1 = s.take(10), s.take(10)
    assert sorted(e0) == sorted(e1) == list(range(10)) and list(e0) != list(e1)
    assert list(InfiniteSampler(10, seed=3).take(20)) == list(e0) + list(e1)
    assert list(InfiniteSampler(10, seed=4).take(10)) != list(e0)
    assert list(InfiniteSampler(10, shuffle=False).take(13)) == list(range(10)) + [0, 1, 2]
    it = iter(InfiniteSampler(5, shuffle=False))
    assert [next(it) for _ in range(6)] == [0, 1, 2, 3, 4, 0]


def test_sampler_ranks_split_each_epoch():
    parts = [InfiniteSampler(10, rank=r, world=3, seed=1) for r in range(3)]
    epoch = [p.take(4) for p in parts]  # ceil(10 / 3) = 4 each; 2 padded repeats
    allv = np.concatenate(epoch)
    assert set(allv.tolist()) == set(range(10)) and len(allv) == 12
    assert all(p.state_dict()["epoch"] == 1 and p.state_dict()["pos"] == 0 for p in parts)


def test_sampler_state_resumes_exactly():
    a = InfiniteSampler(7, rank=1, world=2, seed=9)
    a.take(11)
    state = a.state_dict()
    rest = a.take(15)
    b = InfiniteSampler(7, rank=1, world=2, seed=9)
    b.load_state_dict(state)
    assert list(b.take(15)) == list(rest)
    with pytest.raises(ValueError, match="n=7"):
        InfiniteSampler(8, rank=1, world=2, seed=9).load_state_dict(state)
