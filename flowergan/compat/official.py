"""Read official StyleGAN2-ADA snapshot pickles safely: a restricted unpickler that never runs
embedded code, then our networks rebuilt from the recorded constructor arguments and tensors."""

from __future__ import annotations

import io
import logging
import math
import pickle
import pickletools
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flowergan.compat.kwargs import config_from_official
from flowergan.config import ConfigError, ModelConfig
from flowergan.infra import env_number
from flowergan.readers import BoundedFile, check_file

log = logging.getLogger(__name__)


class RefusedPickleError(pickle.UnpicklingError):
    """The pickle asked for something outside the allow-list; nothing from it was executed."""


# Limits of the restricted unpickler (environment variables raise them). An official 1024x1024 snapshot is
# ~360 MB, ~100k opcodes and nests ~10 deep; these leave wide room above that.
MAX_BYTES_ENV, MAX_OPS_ENV = "FLOWERGAN_PICKLE_MAX_MB", "FLOWERGAN_PICKLE_MAX_OPS"
DEFAULT_MAX_MB, DEFAULT_MAX_OPS = 4096, 5_000_000
MAX_DEPTH = 100            # containers inside containers (a deeper pickle is not an official snapshot)
MAX_EXPANDED = 2_000_000   # objects counted as a tree (a shared list counted once per reference)


def _env_limit(name: str, default: float) -> float:
    return env_number(name, default, RefusedPickleError)


def check_pickle_limits(data: bytes | io.BufferedIOBase, where: str, size: int | None = None) -> int:
    """Count the opcodes of `data` (bytes or a binary file) without building anything; refuse a pickle over the
    size or count limit."""
    max_mb = _env_limit(MAX_BYTES_ENV, DEFAULT_MAX_MB)
    size = len(data) if isinstance(data, (bytes, bytearray)) else size
    if size is not None and size > max_mb * 2**20:
        raise RefusedPickleError(f"{where}: {size / 2**20:.1f} MB is over the {max_mb:g} MB limit for "
                                 f"official snapshots; raise it with {MAX_BYTES_ENV}=<MB> if the file is genuine")
    max_ops = int(_env_limit(MAX_OPS_ENV, DEFAULT_MAX_OPS))
    n = 0
    try:
        for _ in pickletools.genops(data):
            n += 1
            if n > max_ops:
                raise RefusedPickleError(
                    f"{where}: more than {max_ops:,} pickle opcodes (objects); official snapshots have far "
                    f"fewer. Raise the limit with {MAX_OPS_ENV}=<count> if the file is genuine. Nothing was built.")
    except (ValueError, EOFError) as e:  # genops: truncated or unknown opcode
        raise RefusedPickleError(f"{where}: not a valid pickle ({e}); the file is truncated or corrupt. "
                                 f"Re-download it.") from None
    return n


def _children(x: Any) -> list:
    if isinstance(x, dict):
        return [*x.keys(), *x.values()]
    if isinstance(x, (list, tuple, set, frozenset)):
        return list(x)
    if isinstance(x, PersistentRecord):
        return [x.state]
    return []


def check_graph(root: Any, where: str) -> None:
    """Refuse object graphs that are too deep, refer to themselves, or expand (shared references counted once
    per use, as any copy or JSON dump would) beyond MAX_EXPANDED. Iterative, linear in the distinct objects."""
    size: dict[int, int] = {}       # id -> expanded size (done)
    on_path: set[int] = set()
    stack: list[tuple[Any, int, int]] = [(root, 0, 1)]   # (object, children visited?, depth)
    keep = []  # keep objects alive so ids stay unique
    while stack:
        obj, state, depth = stack.pop()
        key = id(obj)
        kids = _children(obj)
        if state == 0:
            if key in size:
                continue
            if not kids:
                size[key] = 1
                continue
            if depth > MAX_DEPTH:
                raise RefusedPickleError(f"{where}: objects nest more than {MAX_DEPTH} deep; an official snapshot "
                                         f"nests about 10. Refused before use.")
            if key in on_path:
                raise RefusedPickleError(f"{where}: an object refers to itself (a cycle); official snapshots "
                                         f"have none. Refused before use.")
            on_path.add(key)
            keep.append(obj)
            stack.append((obj, 1, depth))
            for k in kids:
                if id(k) in on_path:
                    raise RefusedPickleError(f"{where}: an object refers to itself (a cycle); official "
                                             f"snapshots have none. Refused before use.")
                if id(k) not in size:
                    stack.append((k, 0, depth + 1))
        else:
            on_path.discard(key)
            total = 1 + sum(size[id(k)] for k in kids)
            if total > MAX_EXPANDED:
                raise RefusedPickleError(
                    f"{where}: shared references expand to more than {MAX_EXPANDED:,} objects (a 'billion laughs' "
                    f"pickle); official snapshots expand to far fewer. Refused before use.")
            size[key] = total


class PersistentRecord:
    """Stand-in for an official persistent object: its class name, recorded state and init kwargs."""

    def __init__(self, meta: dict):
        if not isinstance(meta, dict) or meta.get("type") != "class":
            raise RefusedPickleError("official persistent object has an unexpected layout (expected type 'class')")
        self.class_name: str = str(meta.get("class_name"))
        self.version = meta.get("version")
        self.state: dict = meta.get("state") or {}
        if not isinstance(self.state, dict):
            raise RefusedPickleError(f"official persistent object {self.class_name!r}: its state is a "
                                     f"{type(self.state).__name__}, not a dict")
        # meta['module_src'] holds Python source; it is deliberately ignored, never executed.

    def __setstate__(self, state):  # a BUILD opcode aimed at a record: official snapshots have none
        raise RefusedPickleError("refused to set attributes on an official persistent object (BUILD)")

    @property
    def init_kwargs(self) -> dict:
        return _to_plain(self.state.get("_init_kwargs") or {})

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Flattened parameters and buffers, named like `state_dict()` keys."""
        out: dict[str, torch.Tensor] = {}
        for group in ("_parameters", "_buffers"):
            for name, t in _dict_of(self.state.get(group), prefix + group).items():
                if isinstance(t, torch.Tensor):
                    out[prefix + name] = t.detach()
                elif isinstance(t, np.ndarray) and not t.dtype.hasobject:
                    out[prefix + name] = torch.as_tensor(t)
                elif t is not None:
                    raise RefusedPickleError(f"{prefix + name}: expected a tensor, got {type(t).__name__}")
        for name, sub in _dict_of(self.state.get("_modules"), prefix + "_modules").items():
            if isinstance(sub, PersistentRecord):
                out.update(sub.tensors(prefix + name + "."))
            elif sub is not None:
                raise RefusedPickleError(f"sub-module {prefix + name!r} is not a recorded persistent object")
        return out


def _dict_of(x: Any, where: str) -> dict:
    if x is None:
        return {}
    if not isinstance(x, dict):
        raise RefusedPickleError(f"{where}: expected a dict, got {type(x).__name__}")
    return x


class EasyDict(dict):
    """Plain-dict stand-in for dnnlib.util.EasyDict."""

    def __setstate__(self, state):  # BUILD on a dict subclass: ignore attribute state
        pass


def _to_plain(x: Any, memo: dict[int, Any] | None = None) -> Any:
    """Plain dicts/lists with numpy scalars as Python numbers. A shared object is converted once and stays
    shared (converting it per reference is what made a 'billion laughs' pickle grow without bound)."""
    memo = {} if memo is None else memo
    if id(x) in memo:
        return memo[id(x)]
    if isinstance(x, dict):
        out: Any = {k: _to_plain(v, memo) for k, v in x.items()}
    elif isinstance(x, (list, tuple)):
        out = type(x)(_to_plain(v, memo) for v in x)
    elif isinstance(x, np.generic):
        out = x.item()
    else:
        return x
    memo[id(x)] = out
    return out


def _load_storage_bytes(b: bytes):
    """A storage serialised by torch.save: loaded with weights_only=True (no code execution)."""
    return torch.load(io.BytesIO(b), weights_only=True, map_location="cpu")


def _rebuild_parameter(data, requires_grad, backward_hooks, *args):
    return data


def _rebuild_tensor(storage, offset, size, stride, *args):
    """torch._utils._rebuild_tensor_v2, with the view checked to lie inside its storage (no huge views)."""
    if not (isinstance(size, tuple) and isinstance(stride, tuple) and len(size) == len(stride) <= 8
            and all(isinstance(v, int) and v >= 0 for v in (offset, *size, *stride))):
        raise RefusedPickleError(f"tensor with size {size!r}, stride {stride!r}, offset {offset!r} refused")
    with warnings.catch_warnings():  # TypedStorage deprecation notices
        warnings.simplefilter("ignore")
        nbytes = storage.nbytes() if hasattr(storage, "nbytes") else None
        elem = storage.element_size() if hasattr(storage, "element_size") else 1
    numel = math.prod(size)
    end = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 if numel else offset
    if nbytes is not None and end * elem > nbytes:
        raise RefusedPickleError(f"tensor of size {size} reaches past its storage of {nbytes} bytes; refused")
    if numel > 2**31:
        raise RefusedPickleError(f"tensor of size {size} ({numel:,} elements) refused")
    return torch._utils._rebuild_tensor_v2(storage, offset, size, stride, *args)


def _numpy_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise RefusedPickleError(f"numpy scalar of dtype {dtype!r} refused")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _numpy_dtype(spec, align=False, copy=False):
    dt = np.dtype(spec, align, copy)
    if dt.hasobject:
        raise RefusedPickleError(f"numpy dtype {spec!r} holds Python objects; refused")
    return dt


ALLOWED: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): PersistentRecord,
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy", "dtype"): _numpy_dtype,
    ("dnnlib.util", "EasyDict"): EasyDict,
}


class AllowListUnpickler(pickle.Unpickler):
    """Resolves only the globals in `allowed` (to safe stand-ins); any other raises `refusal(module, name)`."""

    allowed: dict[tuple[str, str], Any] = {}

    def refusal(self, module: str, name: str) -> str:
        raise NotImplementedError

    def find_class(self, module: str, name: str):
        target = self.allowed.get((module, name))
        if target is None:
            raise RefusedPickleError(self.refusal(module, name))
        return target


class RestrictedUnpickler(AllowListUnpickler):
    """Official snapshots: the globals in ALLOWED, no persistent ids."""

    allowed = ALLOWED

    def refusal(self, module: str, name: str) -> str:
        return (f"refused to load global '{module}.{name}': it is not on flowergan's allow-list of official-snapshot "
                f"types ({', '.join(f'{m}.{n}' for m, n in ALLOWED)}). Nothing was executed.")

    def persistent_load(self, pid):
        raise RefusedPickleError(f"refused persistent id {pid!r}: official snapshots do not use them")


def read_official_pickle(path: str | Path) -> dict[str, Any]:
    """Unpickle an official snapshot with the restricted unpickler; returns its top-level dict."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"official snapshot not found: {path}")
    size = check_file(path, "official snapshot")  # a regular file (not a pipe or device), size from stat
    max_mb = _env_limit(MAX_BYTES_ENV, DEFAULT_MAX_MB)
    if size > max_mb * 2**20:  # before reading it into memory
        raise RefusedPickleError(f"{path}: {size / 2**20:.1f} MB is over the {max_mb:g} MB limit for official "
                                 f"snapshots; raise it with {MAX_BYTES_ENV}=<MB> if the file is genuine")
    with open(path, "rb") as raw:
        f = BoundedFile(raw, size, str(path))  # a length claimed inside the pickle is checked against the file
        check_pickle_limits(f, str(path), size)  # a streaming pass over the opcodes: nothing is built
        f.seek(0)
        try:
            data = RestrictedUnpickler(f).load()
        except RefusedPickleError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
                RuntimeError, OverflowError, MemoryError) as e:
            raise RefusedPickleError(f"{path}: cannot read this official snapshot ({type(e).__name__}: {e}); it "
                                     f"is corrupt or not a stylegan2-ada-pytorch pickle. "
                                     f"Nothing was executed.") from None
    if not isinstance(data, dict):
        raise RefusedPickleError(f"{path}: expected a dict at the top level, got {type(data).__name__}")
    check_graph(data, str(path))
    return data


def _build(record: PersistentRecord, kind: str, cfg: ModelConfig) -> torch.nn.Module:
    from flowergan.compat.golden import load_state
    from flowergan.networks import Discriminator, Generator

    module = Generator.from_config(cfg) if kind == "G" else Discriminator.from_config(cfg)
    tensors = {k: v for k, v in record.tensors().items()}
    try:
        load_state(module, {k: v.numpy() for k, v in tensors.items()}, "")
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise RefusedPickleError(f"official {kind}: its tensors do not match its recorded arguments ({e})") from None
    return module.eval().requires_grad_(False)


def load_official_pickle(path: str | Path) -> dict[str, Any]:
    """Load an official `network-snapshot-*.pkl` safely.

    Returns {'G', 'D', 'G_ema': our modules with the snapshot's weights, 'augment_p': float,
    'config': ModelConfig, 'training_set_kwargs': dict}. Never executes code from the file.
    """
    data = read_official_pickle(path)
    records = {k: data.get(k) for k in ("G", "D", "G_ema")}
    g_rec = records["G_ema"] or records["G"]
    if not isinstance(g_rec, PersistentRecord):
        raise RefusedPickleError(f"{path}: no generator ('G_ema' or 'G') found in the snapshot")
    d_rec = records["D"] if isinstance(records["D"], PersistentRecord) else None
    try:  # strict types and ranges, and the parameter-memory estimate, before anything is built
        cfg = config_from_official(g_rec.init_kwargs, d_rec.init_kwargs if d_rec else None)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    out: dict[str, Any] = {"config": cfg, "training_set_kwargs": _to_plain(data.get("training_set_kwargs"))}
    for k in ("G", "G_ema"):
        out[k] = _build(records[k], "G", cfg) if isinstance(records[k], PersistentRecord) else None
    out["D"] = _build(d_rec, "D", cfg) if d_rec else None
    p = 0.0
    aug = data.get("augment_pipe")
    if isinstance(aug, PersistentRecord):
        t = aug.tensors().get("p")
        p = float(t) if t is not None else 0.0
        out["augment_kwargs"] = aug.init_kwargs
    out["augment_p"] = p
    return out
