"""Training checkpoints: a model folder (config.json + weights.safetensors) plus the full training state
(optimisers, ADA, path-length mean, RNG states, image counter, data position). Written atomically."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from flowergan.config import ModelConfig
from flowergan.networks.resolve import CHECKPOINTS_DIR, list_checkpoints
from flowergan.networks.store import write_model_dir

log = logging.getLogger(__name__)

STATE_JSON = "train_state.json"
STATE_TENSORS = "train_state.safetensors"


def checkpoint_name(cur_nimg: int) -> str:
    return f"snapshot-{cur_nimg:010d}"


def _flatten_optimizer(prefix: str, sd: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, meta = {}, {"param_groups": sd["param_groups"], "state": {}}
    for idx, st in sd["state"].items():
        meta["state"][str(idx)] = {}
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"{prefix}.{idx}.{k}"] = v
            else:
                meta["state"][str(idx)][k] = v
    return tensors, meta


def _unflatten_optimizer(prefix: str, tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for idx, plain in meta["state"].items():
        state[int(idx)] = dict(plain)
    for key, v in tensors.items():
        if key.startswith(prefix + "."):
            idx, name = key[len(prefix) + 1:].split(".", 1)
            state.setdefault(int(idx), {})[name] = v
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(run_dir: Path, cfg: ModelConfig, modules: dict[str, torch.nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer], state: dict[str, Any],
                    rng: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write checkpoints/snapshot-<nimg>/ atomically and return its path."""
    tensors: dict[str, torch.Tensor] = {f"rng.{k}": v for k, v in rng.items()}
    opt_meta = {}
    for name, opt in optimizers.items():
        t, m = _flatten_optimizer(f"opt_{name}", opt.state_dict())
        tensors.update(t)
        opt_meta[name] = m
    out = Path(run_dir) / CHECKPOINTS_DIR / checkpoint_name(int(state["cur_nimg"]))
    write_model_dir(out, cfg, modules, meta=meta,
                    extra_files={STATE_TENSORS: tensors, STATE_JSON: {**state, "optimizers": opt_meta}})
    return out


def load_checkpoint_state(ckpt_dir: Path, optimizers: dict[str, torch.optim.Optimizer]
                          ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Restore optimiser states in place; return (plain state dict, rng tensors)."""
    ckpt_dir = Path(ckpt_dir)
    if not (ckpt_dir / STATE_JSON).is_file():
        raise FileNotFoundError(f"{ckpt_dir}: no {STATE_JSON}; this is a model folder, not a training checkpoint "
                                f"(use it with --finetune instead of --resume)")
    state = json.loads((ckpt_dir / STATE_JSON).read_text())
    tensors = load_file(str(ckpt_dir / STATE_TENSORS)) if (ckpt_dir / STATE_TENSORS).is_file() else {}
    for name, opt in optimizers.items():
        opt.load_state_dict(_unflatten_optimizer(f"opt_{name}", tensors, state["optimizers"][name]))
    rng = {k[4:]: v for k, v in tensors.items() if k.startswith("rng.")}
    return state, rng


def prune_checkpoints(run_dir: Path, keep: int, protect: set[str] | None = None) -> None:
    """Delete all but the newest `keep` checkpoints (never those named in `protect`, e.g. the best)."""
    ckpts = list_checkpoints(run_dir)
    for old in ckpts[:-keep] if keep > 0 else ckpts:
        if protect and old.name in protect:
            continue
        shutil.rmtree(old, ignore_errors=True)
    for junk in (Path(run_dir) / CHECKPOINTS_DIR).glob(".snapshot-*.tmp-*"):  # left by a killed save
        shutil.rmtree(junk, ignore_errors=True)


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    out = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        out["cuda"] = torch.cuda.get_rng_state(device)
    return out


def set_rng_state(rng: dict[str, torch.Tensor], device: torch.device) -> None:
    if "cpu" in rng:
        torch.set_rng_state(rng["cpu"].to(torch.uint8))
    if "cuda" in rng and device.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda"].to(torch.uint8), device)
