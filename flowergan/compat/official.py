"""Read official StyleGAN2-ADA snapshot pickles safely: a restricted unpickler that never runs
embedded code, then our networks rebuilt from the recorded constructor arguments and tensors."""

from __future__ import annotations

import io
import logging
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flowergan.compat.kwargs import config_from_official
from flowergan.config import ModelConfig

log = logging.getLogger(__name__)


class RefusedPickleError(pickle.UnpicklingError):
    """The pickle asked for something outside the allow-list; nothing from it was executed."""


class PersistentRecord:
    """Stand-in for an official persistent object: its class name, recorded state and init kwargs."""

    def __init__(self, meta: dict):
        if not isinstance(meta, dict) or meta.get("type") != "class":
            raise RefusedPickleError("official persistent object has an unexpected layout (expected type 'class')")
        self.class_name: str = str(meta.get("class_name"))
        self.version = meta.get("version")
        self.state: dict = meta.get("state") or {}
        # meta['module_src'] holds Python source; it is deliberately ignored, never executed.

    @property
    def init_kwargs(self) -> dict:
        return _to_plain(self.state.get("_init_kwargs") or {})

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Flattened parameters and buffers, named like `state_dict()` keys."""
        out: dict[str, torch.Tensor] = {}
        for group in ("_parameters", "_buffers"):
            for name, t in (self.state.get(group) or {}).items():
                if t is not None:
                    out[prefix + name] = t.detach() if isinstance(t, torch.Tensor) else torch.as_tensor(t)
        for name, sub in (self.state.get("_modules") or {}).items():
            if isinstance(sub, PersistentRecord):
                out.update(sub.tensors(prefix + name + "."))
            elif sub is not None:
                raise RefusedPickleError(f"sub-module {prefix + name!r} is not a recorded persistent object")
        return out


class EasyDict(dict):
    """Plain-dict stand-in for dnnlib.util.EasyDict."""

    def __setstate__(self, state):  # BUILD on a dict subclass: ignore attribute state
        pass


def _to_plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _to_plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_to_plain(v) for v in x)
    if isinstance(x, np.generic):
        return x.item()
    return x


def _load_storage_bytes(b: bytes):
    """A storage serialised by torch.save: loaded with weights_only=True (no code execution)."""
    return torch.load(io.BytesIO(b), weights_only=True, map_location="cpu")


def _rebuild_parameter(data, requires_grad, backward_hooks, *args):
    return data


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
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy", "dtype"): _numpy_dtype,
    ("dnnlib.util", "EasyDict"): EasyDict,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals in ALLOWED (to our safe stand-ins); anything else raises."""

    def find_class(self, module: str, name: str):
        target = ALLOWED.get((module, name))
        if target is None:
            raise RefusedPickleError(
                f"refused to load global '{module}.{name}': it is not on flowergan's allow-list of "
                f"official-snapshot types ({', '.join(f'{m}.{n}' for m, n in ALLOWED)}). Nothing was executed.")
        return target

    def persistent_load(self, pid):
        raise RefusedPickleError(f"refused persistent id {pid!r}: official snapshots do not use them")


def read_official_pickle(path: str | Path) -> dict[str, Any]:
    """Unpickle an official snapshot with the restricted unpickler; returns its top-level dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"official snapshot not found: {path}")
    with open(path, "rb") as f:
        data = RestrictedUnpickler(f).load()
    if not isinstance(data, dict):
        raise RefusedPickleError(f"{path}: expected a dict at the top level, got {type(data).__name__}")
    return data


def _build(record: PersistentRecord, kind: str, cfg: ModelConfig) -> torch.nn.Module:
    from flowergan.compat.golden import load_state
    from flowergan.networks import Discriminator, Generator

    module = Generator.from_config(cfg) if kind == "G" else Discriminator.from_config(cfg)
    tensors = {k: v for k, v in record.tensors().items()}
    load_state(module, {k: v.numpy() for k, v in tensors.items()}, "")
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
    cfg = config_from_official(g_rec.init_kwargs, d_rec.init_kwargs if d_rec else None)
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
