"""Read files written by `torch.save` (zip and legacy layouts) without running code from them: the restricted
unpickler of `compat.official`, extended with storages read straight from the file and a placeholder for
argparse Namespaces (which rosinality checkpoints carry under "args", and `torch.load(weights_only=True)`
refuses). Only tensors, plain containers and numbers come out."""

from __future__ import annotations

import io
import pickle
import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from flowergan.compat.official import (
    DEFAULT_MAX_MB,
    MAX_BYTES_ENV,
    AllowListUnpickler,
    RefusedPickleError,
    _env_limit,
    _rebuild_parameter,
    _rebuild_tensor,
    check_graph,
    check_pickle_limits,
)

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # the first pickle of a pre-1.6 torch.save file
LEGACY_PROTOCOL = 1001

# torch.<Name>Storage -> dtype: the storage types torch.save names in its persistent ids.
STORAGE_DTYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}


class StorageType:
    """Stand-in for a torch storage class named in a persistent id: only its dtype is kept."""

    def __init__(self, name: str):
        self.name, self.dtype = name, STORAGE_DTYPES[name]


class NamespaceRecord(dict):
    """Stand-in for argparse.Namespace: its fields as a plain dict (rosinality's training arguments)."""

    def __setstate__(self, state):  # BUILD: the Namespace's __dict__, already unpickled (plain values)
        if not isinstance(state, dict):
            raise RefusedPickleError(f"argparse.Namespace with a {type(state).__name__} state refused")
        self.update(state)


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("argparse", "Namespace"): NamespaceRecord,
    **{("torch", name): StorageType(name) for name in STORAGE_DTYPES},
}


def _typed(t: torch.Tensor) -> torch.storage.TypedStorage:
    """A TypedStorage over `t`'s memory, as torch's own loader hands to _rebuild_tensor_v2."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.storage.TypedStorage(wrap_storage=t.untyped_storage(), dtype=t.dtype, _internal=True)


class _Unpickler(AllowListUnpickler):
    """Resolves only the globals in _ALLOWED; storages come from `read_storage(key, dtype, numel)`."""

    allowed = _ALLOWED

    def __init__(self, f, where: str, read_storage):
        super().__init__(f)
        self.where, self.read_storage = where, read_storage
        self.storages: dict[str, torch.storage.TypedStorage] = {}

    def refusal(self, module: str, name: str) -> str:
        return (f"{self.where}: refused to load global '{module}.{name}': only tensors, storages, OrderedDict and "
                f"argparse.Namespace are allowed in a checkpoint. Nothing was executed.")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
                and isinstance(pid[1], StorageType) and isinstance(pid[2], str) and isinstance(pid[4], int)
                and not isinstance(pid[4], bool) and pid[4] >= 0):
            raise RefusedPickleError(f"{self.where}: refused persistent id {str(pid)[:80]}: not a tensor storage")
        if len(pid) == 6 and pid[5] is not None:
            raise RefusedPickleError(f"{self.where}: storage views (torch < 0.4 files) are not supported")
        _, stype, key, _location, numel = pid[:5]
        if key not in self.storages:
            self.storages[key] = _typed(self.read_storage(key, stype.dtype, numel))
        return self.storages[key]


def _load_zip(path: Path, max_bytes: float) -> Any:
    where = str(path)
    with zipfile.ZipFile(path) as z:
        infos = {i.filename: i for i in z.infolist()}
        pkls = [n for n in infos if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkls) != 1:
            raise RefusedPickleError(f"{where}: a zip file but not one written by torch.save (no single "
                                     f"<name>/data.pkl)")
        prefix = pkls[0][: -len("data.pkl")]
        if sum(i.file_size for i in infos.values()) > max_bytes:
            raise RefusedPickleError(f"{where}: unpacks to more than {max_bytes / 2**20:g} MB; raise "
                                     f"{MAX_BYTES_ENV}=<MB> if the file is genuine")
        order = infos.get(prefix + "byteorder")
        if order is not None and z.read(order).strip() not in (b"little", b""):
            raise RefusedPickleError(f"{where}: written on a big-endian machine; not supported")
        data = z.read(pkls[0])
        check_pickle_limits(data, where)

        def read_storage(key: str, dtype: torch.dtype, numel: int) -> torch.Tensor:
            info = infos.get(f"{prefix}data/{key}")
            nbytes = numel * torch.empty(0, dtype=dtype).element_size()
            if info is None or info.file_size != nbytes:
                raise RefusedPickleError(f"{where}: storage {key!r} is missing or not {nbytes} bytes long; the file "
                                         f"is damaged")
            if numel == 0:
                return torch.empty(0, dtype=dtype)
            return torch.frombuffer(bytearray(z.read(info)), dtype=dtype)

        return _Unpickler(io.BytesIO(data), where, read_storage).load()


def _load_legacy(path: Path, f: io.BufferedReader, size: int) -> Any:
    """The pre-1.6 layout: pickles of the magic number, protocol and sys info, the object, the storage keys,
    then each storage as <int64 element count><raw little-endian bytes>."""
    where = str(path)

    def load_one(read_storage=None) -> Any:  # each pickle counted (opcodes, nothing built) before it is built
        start = f.tell()
        check_pickle_limits(f, where)
        f.seek(start)
        return _Unpickler(f, where, read_storage).load()

    heads = [load_one() for _ in range(3)]
    if heads[0] != LEGACY_MAGIC or heads[1] != LEGACY_PROTOCOL or not isinstance(heads[2], dict):
        raise RefusedPickleError(f"{where}: not a torch.save file (no torch magic number)")
    if heads[2].get("little_endian") is False:
        raise RefusedPickleError(f"{where}: written on a big-endian machine; not supported")
    pending: dict[str, torch.Tensor] = {}

    claimed = [0]

    def allocate(key: str, dtype: torch.dtype, numel: int) -> torch.Tensor:
        claimed[0] += numel * torch.empty(0, dtype=dtype).element_size()
        if claimed[0] > size:  # every storage's bytes follow in the file: together they cannot exceed it
            raise RefusedPickleError(f"{where}: its storages claim more bytes than the file holds (cut short, or "
                                     f"not a genuine checkpoint); refused")
        pending[key] = torch.empty(numel, dtype=dtype)
        return pending[key]

    obj = load_one(allocate)
    keys = load_one()
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)) or set(keys) != set(pending):
        raise RefusedPickleError(f"{where}: its storage list does not match its tensors; the file is damaged")
    for key in keys:
        t = pending[key]
        head = f.read(8)
        n = int.from_bytes(head, "little", signed=True) if len(head) == 8 else -1
        raw = f.read(n * t.element_size()) if n == t.numel() else b""
        if n != t.numel() or len(raw) != n * t.element_size():
            raise RefusedPickleError(f"{where}: storage {key!r} is cut short or mislabelled; the file is damaged")
        if n:
            t.view(torch.uint8).copy_(torch.frombuffer(bytearray(raw), dtype=torch.uint8))
    return obj


def read_torch_save(path: str | Path) -> Any:
    """The object in a `torch.save` file (zip or legacy layout), rebuilt from tensors, containers and plain
    values only; anything else (e.g. a reduce to os.system) raises RefusedPickleError before it runs."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    size = path.stat().st_size
    max_bytes = _env_limit(MAX_BYTES_ENV, DEFAULT_MAX_MB) * 2**20
    if size > max_bytes:
        raise RefusedPickleError(f"{path}: {size / 2**20:.1f} MB is over the {max_bytes / 2**20:g} MB limit; raise "
                                 f"it with {MAX_BYTES_ENV}=<MB> if the file is genuine")
    try:
        with open(path, "rb") as f:
            zip_head = f.read(4) == b"PK\x03\x04"
        if zipfile.is_zipfile(path):
            obj = _load_zip(path, max_bytes)
        elif zip_head:
            raise RefusedPickleError(f"{path}: a zip archive (torch.save's layout) that is cut short or damaged (no "
                                     f"central directory); re-download or re-copy it")
        else:
            with open(path, "rb") as f:
                obj = _load_legacy(path, f, size)
    except RefusedPickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            RuntimeError, OverflowError, MemoryError, zipfile.BadZipFile) as e:
        raise RefusedPickleError(f"{path}: cannot read this checkpoint ({type(e).__name__}: {e}); it is damaged or "
                                 f"not written by torch.save. Nothing was executed.") from None
    check_graph(obj, str(path))
    return obj
