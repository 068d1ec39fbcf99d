"""Training reader for official-layout datasets (zip or folder): uint8 [C, H, W] images, one-hot labels, x-flips,
memory / memory-mapped caches, sharding, a vectorised batch accessor and a resumable infinite sampler.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from flowergan import infra
from flowergan.data.errors import DataError
from flowergan.data.images import is_image_name
from flowergan.data.limits import ArchiveLimits, check_class_count

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """$FLOWERGAN_CACHE/datasets, else ~/.cache/flowergan/datasets (memory-mapped image caches)."""
    return infra.cache_dir("datasets")


def _decode(data: bytes, name: str) -> np.ndarray:
    """PNG/JPEG bytes -> uint8 [C, H, W] (C = 1 for grayscale, else 3)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.mode not in ("L", "RGB"):
                im = im.convert("RGB")
            a = np.asarray(im)
    except Exception as e:
        raise DataError(f"cannot decode image {name} ({e}); re-create the dataset with flowergan prepare") from None
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


class ImageDataset:
    """Images of an official-layout dataset: a .zip or a folder of images with an optional dataset.json.

    ds[i] -> (uint8 image [C, H, W], float32 label [label_dim]); with xflip, indices n..2n-1 give image i-n
    mirrored left-right. cache: None (decode on every access), "memory" (one uint8 array [n, C, H, W] of this
    shard) or "mmap" (the whole dataset decoded once into a .npy under `cache_dir`, keyed by path+mtime+size,
    shared by all processes). max_size keeps a fixed random subset (seed `random_seed`, sorted order);
    shard=(rank, world) keeps every world-th of those, starting at rank. Usable with torch's DataLoader
    (prefer num_workers=0 with a cache: get_batch is vectorised). `skip_names`: file names (relative, '/'-separated)
    that are not images of the set, e.g. the grid.png that `flowergan generate --grid` writes beside the samples.
    """

    def __init__(self, path: str | os.PathLike, *, use_labels: bool = False, xflip: bool = False,
                 cache: str | None = None, max_size: int | None = None,
                 shard: tuple[int, int] | None = None, cache_dir: str | os.PathLike | None = None,
                 random_seed: int = 0, progress: bool = True, skip_names: tuple[str, ...] = ()):
        self.path = Path(path).expanduser()
        self.name = self.path.stem if self.path.suffix.lower() == ".zip" else self.path.name
        self.xflip = bool(xflip)
        if cache not in (None, "memory", "mmap"):
            raise ValueError(f"cache={cache!r}: use None, 'memory' or 'mmap'")
        self.cache_mode = cache
        self._cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self._progress = progress
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid = -1
        if self.path.is_dir():
            self._type = "dir"
            self._all = sorted(str(p.relative_to(self.path)).replace(os.sep, "/") for p in self.path.rglob("*")
                               if p.is_file() and not any(part.startswith(".") for part in p.relative_to(
                                   self.path).parts))
        elif self.path.is_file() and zipfile.is_zipfile(self.path):
            self._type = "zip"
            limits = ArchiveLimits.from_env()
            limits.check_zip_directory(self.path)
            infos = [i for i in self._get_zip().infolist() if not i.is_dir()]
            limits.check_zip_members(infos, f"dataset {self.path}")
            self._all = sorted(i.filename for i in infos)
        else:
            raise DataError(f"dataset {self.path} is neither a zip nor a folder. Create one with: flowergan "
                            f"prepare SOURCE --out {self.path.with_suffix('.zip').name} --resolution 128")
        self._fnames = [n for n in self._all if is_image_name(n) and n not in skip_names]
        if not self._fnames:
            raise DataError(f"dataset {self.path} contains no images (.png/.jpg); create it with flowergan prepare")
        raw_labels = self._load_raw_labels()
        self.labels_available = raw_labels is not None  # dataset.json has labels (whatever use_labels says)
        self.class_names: list[str] | None = None  # dataset.json's "class_names" (one per class), when present
        if self.labels_available:
            from flowergan.data.classes import read_class_names

            try:
                names = read_class_names(self.path)
            except DataError as e:  # the names are optional: a bad list must not stop training
                log.warning("%s; ignoring the class names", e)
                names = None
            if names is not None and len(names) == raw_labels.shape[1]:
                self.class_names = names
        self._raw_labels = raw_labels if raw_labels is not None else np.zeros((len(self._fnames), 0), np.float32)

        idx = np.arange(len(self._fnames), dtype=np.int64)
        if max_size is not None and max_size < idx.size:
            rs = np.random.RandomState(random_seed)
            rs.shuffle(idx)
            idx = np.sort(idx[:max_size])
        if shard is not None:
            rank, world = int(shard[0]), int(shard[1])
            if world < 1 or not 0 <= rank < world:
                raise ValueError(f"shard={shard}: need 0 <= rank < world_size")
            idx = idx[rank::world]
        if idx.size == 0:
            raise DataError(f"dataset {self.path}: shard {shard} of {len(self._fnames)} images is empty")
        self._raw_idx = idx
        self._use_labels = bool(use_labels) and self.labels_available
        self.has_labels = self._use_labels  # as in the official code: labels are delivered (label_dim > 0)
        if use_labels and not self.labels_available:
            log.warning("%s has no labels (dataset.json says null or is missing); label_dim is 0", self.path)

        first = self._load_raw(int(idx[0]))
        self.image_shape = tuple(int(s) for s in first.shape)  # [C, H, W]
        c, h, w = self.image_shape
        if h != w:
            raise DataError(f"dataset {self.path}: images must be square, {self._fnames[idx[0]]} is {w}x{h}. "
                            f"Re-create it: flowergan prepare SOURCE --out X.zip --resolution {max(h, w)}")
        self.num_channels, self.resolution = c, h
        self._check_all_sizes()
        self._cache: np.ndarray | None = None
        self._cache_offset = False  # True when the cache holds all raw images (mmap), else this subset
        if cache is not None:
            self._build_cache()

    # --- properties -------------------------------------------------------------------------------------
    @property
    def label_dim(self) -> int:
        return int(self._raw_labels.shape[1]) if self._use_labels else 0

    def __len__(self) -> int:
        return self._raw_idx.size * (2 if self.xflip else 1)

    # --- loading ----------------------------------------------------------------------------------------
    def _get_zip(self) -> zipfile.ZipFile:
        if self._zip is None or self._zip_pid != os.getpid():  # one handle per process (fork-safe)
            self._zip = zipfile.ZipFile(self.path)
            self._zip_pid = os.getpid()
        return self._zip

    def _read(self, fname: str) -> bytes:
        if self._type == "zip":
            return self._get_zip().read(fname)
        return (self.path / fname).read_bytes()

    def _open(self, fname: str):
        return self._get_zip().open(fname) if self._type == "zip" else open(self.path / fname, "rb")

    def _load_raw_labels(self) -> np.ndarray | None:
        if "dataset.json" not in self._all:
            return None
        try:
            meta = json.loads(self._read("dataset.json"))
        except (ValueError, UnicodeDecodeError) as e:
            raise DataError(f"{self.path}: dataset.json is not valid JSON ({e})") from None
        labels = meta.get("labels") if isinstance(meta, dict) else None
        if labels is None:
            return None
        table = {str(n).replace("\\", "/"): v for n, v in labels}
        missing = [f for f in self._fnames if f not in table]
        extra = sorted(set(table) - set(self._fnames))
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"{len(missing)} image(s) have no label (e.g. {', '.join(missing[:3])})")
            if extra:
                parts.append(f"{len(extra)} label(s) name missing images (e.g. {', '.join(extra[:3])})")
            raise DataError(f"dataset {self.path}: dataset.json labels do not match the images: "
                            f"{'; '.join(parts)}. Re-create the dataset with flowergan prepare.")
        values = [table[f] for f in self._fnames]
        arr = np.array(values)
        if arr.ndim == 1:
            if not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0:
                raise DataError(f"dataset {self.path}: class labels must be integers >= 0")
            check_class_count(int(arr.max()), f"dataset {self.path}: dataset.json")
            onehot = np.zeros((arr.size, int(arr.max()) + 1), np.float32)
            onehot[np.arange(arr.size), arr] = 1
            return onehot
        return arr.astype(np.float32).reshape(arr.shape[0], -1)

    def _load_raw(self, raw: int) -> np.ndarray:
        fname = self._fnames[raw]
        img = _decode(self._read(fname), fname)
        if hasattr(self, "image_shape") and img.shape != self.image_shape:
            raise DataError(self._mismatch_msg(fname, img.shape))
        return img

    def _mismatch_msg(self, fname: str, shape) -> str:
        c, h, w = self.image_shape
        return (f"dataset {self.path}: {fname} is {shape[2]}x{shape[1]} with {shape[0]} channel(s), but "
                f"{self._fnames[self._raw_idx[0]]} is {w}x{h} with {c}: all images must have the same size. "
                f"Re-create it: flowergan prepare SOURCE --out X.zip --resolution {h}")

    def _check_all_sizes(self) -> None:
        """Header-only size/mode check of every used image (cheap) so mixed datasets fail at start."""
        want_mode = "L" if self.num_channels == 1 else "RGB"
        for raw in self._raw_idx:
            fname = self._fnames[raw]
            with self._open(fname) as f, Image.open(f) as im:  # reads only the header
                w, h = im.size
                c = 1 if im.mode == "L" else 3
            if (w, h) != (self.resolution, self.resolution) or (c == 1) != (want_mode == "L"):
                raise DataError(self._mismatch_msg(fname, (c, h, w)))

    # --- cache ------------------------------------------------------------------------------------------
    @property
    def decoded_bytes(self) -> int:
        """Bytes of uint8 pixels of the images this dataset reads (what a memory cache would hold)."""
        return int(self._raw_idx.size * np.prod(self.image_shape))

    def enable_cache(self, mode: str | None) -> None:
        """Switch to cache `mode` (None, 'memory', 'mmap') after opening, e.g. once its size is known."""
        if mode not in (None, "memory", "mmap"):
            raise ValueError(f"cache={mode!r}: use None, 'memory' or 'mmap'")
        if mode == self.cache_mode:
            return
        self.cache_mode, self._cache, self._cache_offset = mode, None, False
        if mode is not None:
            self._build_cache()

    def _cache_key(self) -> str:
        st = self.path.stat()
        h = hashlib.sha1(f"{self.path.resolve()}|{st.st_mtime_ns}|{st.st_size}".encode())
        if self._type == "dir":
            for f in self._all:
                s = (self.path / f).stat()
                h.update(f"{f}|{s.st_mtime_ns}|{s.st_size}".encode())
        return h.hexdigest()[:20]

    def cache_path(self) -> Path:
        """The memory-mapped cache file of this dataset (keyed when first asked; may not exist yet)."""
        if getattr(self, "_cache_file", None) is None:
            self._cache_file = self._cache_dir / f"{self.name}-{self._cache_key()}.npy"
        return self._cache_file

    def _decode_all(self, raws: np.ndarray, out: np.ndarray) -> None:
        from tqdm import tqdm

        for k, raw in enumerate(tqdm(raws, desc=f"caching {self.name}", unit="img", leave=False,
                                     disable=not self._progress or raws.size < 500)):
            out[k] = self._load_raw(int(raw))

    def _build_cache(self) -> None:
        n_all = len(self._fnames)
        if self.cache_mode == "memory":
            arr = np.empty((self._raw_idx.size,) + self.image_shape, np.uint8)
            self._decode_all(self._raw_idx, arr)
            self._cache, self._cache_offset = arr, False
            return
        path = self.cache_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(path.with_name(path.name + ".lock")):  # one process builds, the others wait and reuse
            if not path.exists():
                tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
                try:
                    mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n_all,) + self.image_shape)
                    self._decode_all(np.arange(n_all), mm)
                    mm.flush()
                    del mm
                    os.replace(tmp, path)
                    log.info("cached %s as %s", self.path, path)
                finally:
                    if tmp.exists():
                        tmp.unlink()
        arr = np.load(path, mmap_mode="r")
        if arr.shape != (n_all,) + self.image_shape:
            raise DataError(f"cache {path} has shape {arr.shape}, expected {(n_all,) + self.image_shape}; "
                            f"delete it and retry")
        self._cache, self._cache_offset = arr, True

    # --- access -----------------------------------------------------------------------------------------
    def _image(self, local: int) -> np.ndarray:
        if self._cache is not None:
            return np.asarray(self._cache[self._raw_idx[local] if self._cache_offset else local])
        return self._load_raw(int(self._raw_idx[local]))

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        n = self._raw_idx.size
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for a dataset of {len(self)} items")
        i %= len(self)
        local, flip = (i - n, True) if i >= n else (i, False)
        img = self._image(local)
        img = np.ascontiguousarray(img[:, :, ::-1]) if flip else np.array(img)
        return img, self.get_label(i)

    def get_label(self, i: int) -> np.ndarray:
        """float32 [label_dim] of item i (one-hot for class labels)."""
        if not self._use_labels:
            return np.zeros((0,), np.float32)
        return self._raw_labels[self._raw_idx[int(i) % self._raw_idx.size]].copy()

    def get_batch(self, indices) -> tuple[np.ndarray, np.ndarray]:
        """Items `indices` -> (uint8 images [N, C, H, W], float32 labels [N, label_dim]); vectorised when cached."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = self._raw_idx.size
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"indices must be in [0, {len(self)}), got {idx.min()}..{idx.max()}")
        flip = idx >= n
        local = np.where(flip, idx - n, idx)
        raw = self._raw_idx[local]
        if self._cache is not None:
            imgs = np.take(self._cache, raw if self._cache_offset else local, axis=0)  # a writable copy
        else:
            imgs = np.stack([self._load_raw(int(r)) for r in raw]) if idx.size else \
                np.empty((0,) + self.image_shape, np.uint8)
        if flip.any():
            imgs[flip] = imgs[flip][..., ::-1]
        labels = self._raw_labels[raw] if self._use_labels else np.zeros((idx.size, 0), np.float32)
        return imgs, labels

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_zip"] = None
        if self.cache_mode == "mmap":
            state["_cache"] = None  # re-opened (shared pages) in the receiving process
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.cache_mode == "mmap" and self._cache is None:
            self._cache = np.load(self.cache_path(), mmap_mode="r")

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def __repr__(self) -> str:
        return (f"ImageDataset({str(self.path)!r}, n={len(self)}, shape={self.image_shape}, "
                f"label_dim={self.label_dim}, xflip={self.xflip}, cache={self.cache_mode})")


@contextmanager
def _file_lock(path: Path):
    try:
        import fcntl
    except ImportError:  # Windows: no lock; concurrent builders each write a temp file and rename
        yield
        return
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class InfiniteSampler:
    """Endless item indices for one rank: epoch e is a permutation seeded by (seed, e), padded to a multiple of
    `world` by repeating its start, and rank r takes positions r, r+world, ...; every rank sees the same number
    of items per epoch and the ranks' items are disjoint apart from the padding.

    state_dict() -> {"epoch", "pos", ...} and load_state_dict() restore the exact position for resuming;
    draw indices with take(k) (or next()) in the training loop so the state matches what was consumed.
    """

    def __init__(self, n: int, rank: int = 0, world: int = 1, seed: int = 0, shuffle: bool = True):
        if n < 1:
            raise ValueError("InfiniteSampler needs n >= 1")
        if world < 1 or not 0 <= rank < world:
            raise ValueError(f"rank={rank}, world={world}: need 0 <= rank < world")
        self.n, self.rank, self.world, self.seed, self.shuffle = int(n), int(rank), int(world), int(seed), shuffle
        self.per_rank = -(-self.n // self.world)
        self.epoch, self.pos = 0, 0
        self._order: np.ndarray | None = None

    def _epoch_order(self, epoch: int) -> np.ndarray:
        if self.shuffle:
            perm = np.random.default_rng(np.random.SeedSequence([self.seed & 0xFFFFFFFF, epoch])).permutation(self.n)
        else:
            perm = np.arange(self.n)
        total = self.per_rank * self.world
        if total > self.n:
            perm = np.concatenate([perm, np.resize(perm, total - self.n)])
        return perm[self.rank::self.world]

    def take(self, k: int) -> np.ndarray:
        """The next k indices (int64 [k]), crossing epochs as needed."""
        out = np.empty(k, np.int64)
        filled = 0
        while filled < k:
            if self._order is None:
                self._order = self._epoch_order(self.epoch)
            m = min(k - filled, self.per_rank - self.pos)
            out[filled:filled + m] = self._order[self.pos:self.pos + m]
            filled += m
            self.pos += m
            if self.pos == self.per_rank:
                self.epoch, self.pos, self._order = self.epoch + 1, 0, None
        return out

    def __iter__(self) -> InfiniteSampler:
        return self

    def __next__(self) -> int:
        return int(self.take(1)[0])

    def state_dict(self) -> dict[str, int | bool]:
        return {"epoch": self.epoch, "pos": self.pos, "n": self.n, "rank": self.rank, "world": self.world,
                "seed": self.seed, "shuffle": self.shuffle}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("n", "world", "seed", "shuffle"):
            if key in state and state[key] != getattr(self, key):
                raise ValueError(f"sampler state was saved with {key}={state[key]!r} but this sampler has "
                                 f"{key}={getattr(self, key)!r}; resume with the same dataset, seed and world size")
        self.epoch, self.pos, self._order = int(state["epoch"]), int(state["pos"]), None
        if not 0 <= self.pos < self.per_rank:
            raise ValueError(f"sampler state pos={self.pos} is outside [0, {self.per_rank})")
