"""Our model format: a directory with `config.json` (format version, model config) and
`weights.safetensors` (tensors prefixed `G.`, `G_ema.`, `D.`). Loading never executes code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from flowergan.config import FORMAT_VERSION, ConfigError, ModelConfig
from flowergan.infra import atomic_dir, replace_dir
from flowergan.networks.discriminator import Discriminator
from flowergan.networks.generator import Generator

atomic_replace_dir = replace_dir  # the name other modules import

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.safetensors"


def is_model_dir(path: str | Path) -> bool:
    p = Path(path)
    return (p / CONFIG_NAME).is_file() and (p / WEIGHTS_NAME).is_file()


def write_model_dir(out_dir: str | Path, cfg: ModelConfig, modules: dict[str, torch.nn.Module | None],
                    meta: dict[str, Any] | None = None, extra_files: dict[str, Any] | None = None,
                    overwrite: bool = True) -> Path:
    """Write config + weights (+ extra files: name -> str (text), dict (JSON) or tensor dict (safetensors)) atomically."""
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
        save_file(tensors, str(tmp / WEIGHTS_NAME), metadata={"format": "flowergan", "version": str(FORMAT_VERSION)})
        doc = {"format": "flowergan-model", "format_version": FORMAT_VERSION, "model": cfg.to_dict(),
               "networks": sorted(k for k, m in modules.items() if m is not None), **(meta or {})}
        (tmp / CONFIG_NAME).write_text(json.dumps(doc, indent=2) + "\n")
        for name, content in (extra_files or {}).items():
            if isinstance(content, str):  # text, e.g. a model card
                (tmp / name).write_text(content)
            elif isinstance(content, dict) and content and all(isinstance(v, torch.Tensor) for v in content.values()):
                save_file({k: v.detach().cpu().contiguous() for k, v in content.items()}, str(tmp / name))
            else:
                (tmp / name).write_text(json.dumps(content, indent=2) + "\n")
    return out_dir


def read_model_config(model_dir: str | Path) -> tuple[ModelConfig, dict[str, Any]]:
    path = Path(model_dir) / CONFIG_NAME
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: cannot read model config ({e})") from None
    if doc.get("format") != "flowergan-model":
        raise ConfigError(f"{path}: not a flowergan model config (missing \"format\": \"flowergan-model\")")
    if int(doc.get("format_version", -1)) > FORMAT_VERSION:
        raise ConfigError(f"{path}: format version {doc.get('format_version')} is newer than this flowergan "
                          f"supports ({FORMAT_VERSION}); upgrade flowergan")
    return ModelConfig.from_dict(doc["model"], where=f"{path} 'model'"), doc


def load_model_dir(model_dir: str | Path, device: str | torch.device = "cpu",
                   which: tuple[str, ...] = ("G", "G_ema", "D")) -> dict[str, Any]:
    """Load a model directory -> {'config', 'meta', 'G', 'G_ema', 'D'} (modules absent from the file: None)."""
    cfg, doc = read_model_config(model_dir)
    tensors = load_file(str(Path(model_dir) / WEIGHTS_NAME), device="cpu")
    out: dict[str, Any] = {"config": cfg, "meta": doc}
    for name in which:
        sd = {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + ".")}
        if not sd:
            out[name] = None
            continue
        module = (Discriminator if name == "D" else Generator).from_config(cfg)
        missing, unexpected = module.load_state_dict(sd, strict=False)
        if missing or unexpected:
            raise ConfigError(f"{model_dir}: weights for {name} do not match its config "
                              f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
        out[name] = module.to(device)
    return out
