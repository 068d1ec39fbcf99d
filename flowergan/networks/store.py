"""Our model format: a directory with `config.json` (format version, model config) and
`weights.safetensors` (tensors prefixed `G.`, `G_ema.`, `D.`). Loading never executes code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from flowergan.config import FORMAT_VERSION, ConfigError, ModelConfig
from flowergan.infra import atomic_dir
from flowergan.networks.discriminator import Discriminator
from flowergan.networks.generator import Generator
from flowergan.readers import BadInput, read_text

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.safetensors"


class ModelFileError(ConfigError):
    """A model or checkpoint file is missing, corrupt or holds non-finite values; the message names the file
    (and the tensor) and says what to do."""


def check_finite(tensors: dict[str, torch.Tensor], where: str) -> None:
    """Raise ModelFileError naming the first tensor holding NaN or infinity."""
    for name, t in tensors.items():
        if t.is_floating_point() and t.numel() and not bool(torch.isfinite(t).all()):
            n_bad = int((~torch.isfinite(t)).sum())
            raise ModelFileError(f"{where}: tensor {name!r} holds {n_bad} non-finite value(s) (NaN or inf) "
                                 f"of {t.numel()}; these weights are unusable (training diverged or the file "
                                 f"is damaged). Use an earlier checkpoint.")


def read_tensors(path: str | Path, what: str = "weights") -> dict[str, torch.Tensor]:
    """Load a safetensors file with a clear error for a missing, empty, truncated or garbled one."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: {what} file missing; the folder is incomplete (an interrupted copy or "
                             f"save)")
    if path.stat().st_size == 0:
        raise ModelFileError(f"{path}: {what} file is empty (0 bytes); it was cut off while being written or "
                             f"copied")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ModelFileError(f"{path}: {what} file is corrupt or truncated ({e}); re-copy it or use another "
                             f"checkpoint") from None


def read_json(path: str | Path, what: str) -> dict[str, Any]:
    """A JSON object from `path`, with a clear error for a missing, garbled or non-object file."""
    path = Path(path)
    try:  # a regular file of at most FLOWERGAN_MAX_JSON_MB, checked before reading (flowergan/readers.py)
        doc = json.loads(read_text(path, what, "json_mb"))
    except FileNotFoundError:
        raise ModelFileError(f"{path}: {what} missing; the folder is incomplete") from None
    except BadInput as e:
        raise ModelFileError(str(e)) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ModelFileError(f"{path}: {what} is not readable JSON ({e}); the file is damaged") from None
    if not isinstance(doc, dict):
        raise ModelFileError(f"{path}: {what} should be a JSON object, got {type(doc).__name__}")
    return doc


def is_model_dir(path: str | Path) -> bool:
    p = Path(path)
    return (p / CONFIG_NAME).is_file() and (p / WEIGHTS_NAME).is_file()


def _is_tensors(content: Any) -> bool:
    return isinstance(content, dict) and bool(content) and all(isinstance(v, torch.Tensor)
                                                               for v in content.values())


def write_model_dir(out_dir: str | Path, cfg: ModelConfig, modules: dict[str, torch.nn.Module | None],
                    meta: dict[str, Any] | None = None, extra_files: dict[str, Any] | None = None,
                    overwrite: bool = True) -> Path:
    """Write config + weights (+ extra files: name -> str (text), dict (JSON) or tensor dict (safetensors))
    atomically."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} already exists; choose another folder or allow overwriting")
    with atomic_dir(out_dir) as tmp:  # filled, fsynced, then renamed into place; removed on any error
        tensors: dict[str, torch.Tensor] = {}
        for prefix, module in modules.items():
            if module is None:
                continue
            for k, v in module.state_dict().items():
                tensors[f"{prefix}.{k}"] = v.detach().to("cpu").clone()  # G and G_ema may share storage
        check_finite(tensors, f"refusing to save {out_dir}")
        for name, content in (extra_files or {}).items():
            if _is_tensors(content):
                check_finite(content, f"refusing to save {out_dir / name}")
        save_file(tensors, str(tmp / WEIGHTS_NAME),
                  metadata={"format": "flowergan", "version": str(FORMAT_VERSION)})
        doc = {"format": "flowergan-model", "format_version": FORMAT_VERSION, "model": cfg.to_dict(),
               "networks": sorted(k for k, m in modules.items() if m is not None), **(meta or {})}
        (tmp / CONFIG_NAME).write_text(json.dumps(doc, indent=2) + "\n")
        for name, content in (extra_files or {}).items():
            if isinstance(content, str):  # text, e.g. a model card
                (tmp / name).write_text(content)
            elif _is_tensors(content):
                save_file({k: v.detach().cpu().contiguous() for k, v in content.items()}, str(tmp / name))
            else:
                (tmp / name).write_text(json.dumps(content, indent=2) + "\n")
    return out_dir


def read_model_config(model_dir: str | Path) -> tuple[ModelConfig, dict[str, Any]]:
    path = Path(model_dir) / CONFIG_NAME
    doc = read_json(path, "model config")
    if doc.get("format") != "flowergan-model":
        raise ModelFileError(f"{path}: not a flowergan model config (missing "
                             f"\"format\": \"flowergan-model\")")
    version = doc.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ModelFileError(f"{path}: \"format_version\" is {version!r}, not an integer; the file is "
                             f"damaged")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{path}: format version {version} is newer than this flowergan supports "
                             f"({FORMAT_VERSION}); upgrade flowergan")
    if "model" not in doc:
        raise ModelFileError(f"{path}: no \"model\" section; the file is damaged")
    try:
        return ModelConfig.from_dict(doc["model"], where=f"{path} 'model'"), doc
    except ModelFileError:
        raise
    except ConfigError as e:
        msg = str(e)
        raise ModelFileError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None


def load_model_dir(model_dir: str | Path, device: str | torch.device = "cpu",
                   which: tuple[str, ...] = ("G", "G_ema", "D")) -> dict[str, Any]:
    """Load a model directory -> {'config', 'meta', 'G', 'G_ema', 'D'} (modules absent from the file:
    None)."""
    cfg, doc = read_model_config(model_dir)
    weights = Path(model_dir) / WEIGHTS_NAME
    tensors = read_tensors(weights)
    check_finite({k: v for k, v in tensors.items() if k.split(".", 1)[0] in which}, str(weights))
    out: dict[str, Any] = {"config": cfg, "meta": doc}
    for name in which:
        sd = {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + ".")}
        if not sd:
            out[name] = None
            continue
        module = (Discriminator if name == "D" else Generator).from_config(cfg)
        ours = module.state_dict()
        wrong = [f"{k} {tuple(v.shape)} (config wants {tuple(ours[k].shape)})" for k, v in sd.items()
                 if k in ours and v.shape != ours[k].shape]
        if wrong:
            raise ModelFileError(f"{model_dir}: weights for {name} do not match its config: "
                                 f"{', '.join(wrong[:3])}")
        missing, unexpected = module.load_state_dict(sd, strict=False)
        if missing or unexpected:
            raise ModelFileError(f"{model_dir}: weights for {name} do not match its config "
                                 f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
        out[name] = module.to(device)
    return out
