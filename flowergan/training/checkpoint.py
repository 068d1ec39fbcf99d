"""Training checkpoints: a model folder (config.json + weights.safetensors) plus the full training state
(optimisers, ADA, path-length mean, RNG states, image counter, data position). Written atomically."""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from flowergan.config import ConfigError, ModelConfig
from flowergan.networks.locate import first_that_loads
from flowergan.networks.run_folder import CHECKPOINTS_DIR, checkpoint_dirs, checkpoint_name, list_checkpoints, runs_in
from flowergan.networks.store import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    ModelFileError,
    check_finite,
    read_json,
    read_model_config,
    read_tensors,
    write_model_dir,
)
from flowergan.training import state_checks

log = logging.getLogger(__name__)

STATE_JSON = "train_state.json"
STATE_TENSORS = "train_state.safetensors"


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
    ada_p = (state.get("ada") or {}).get("p")
    bad = [k for k, v in (("pl_mean", state.get("pl_mean")), ("ADA's p", ada_p))
           if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        raise ModelFileError(f"refusing to save a checkpoint at {state['cur_nimg']} images: {', '.join(bad)} is "
                             f"not finite (training diverged)")
    out = Path(run_dir) / CHECKPOINTS_DIR / checkpoint_name(int(state["cur_nimg"]))
    try:
        write_model_dir(out, cfg, modules, meta=meta,
                        extra_files={STATE_TENSORS: tensors, STATE_JSON: {**state, "optimizers": opt_meta}})
    except OSError as e:
        if e.filename is None:
            e.filename = str(out)
        raise
    except Exception as e:
        err = os_error_of(e, out)
        if err is None:
            raise
        raise err from e
    return out


def os_error_of(e: BaseException, path: Path) -> OSError | None:
    """A safetensors write that failed in the operating system (e.g. a full disk: "os error 28") as the
    OSError it wraps, naming `path`; None for any other error."""
    m = re.search(r"os error (\d+)", str(e))
    if type(e).__name__ != "SafetensorError" or m is None:
        return None
    code = int(m.group(1))
    return OSError(code, os.strerror(code), str(path))


_STATE_KEYS = {"cur_nimg": int, "batch_idx": int, "pl_mean": (int, float), "sampler": dict, "optimizers": dict}


def read_checkpoint_state(ckpt_dir: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(train_state.json, train_state.safetensors) of a checkpoint, checked: every required key with its type,
    every tensor finite, every restored number plausible (state_checks). Raises ModelFileError saying what is
    wrong."""
    ckpt_dir = Path(ckpt_dir)
    if not (ckpt_dir / STATE_JSON).exists() and (ckpt_dir / CONFIG_NAME).is_file() \
            and not (ckpt_dir / STATE_TENSORS).exists():
        raise ModelFileError(f"{ckpt_dir}: no {STATE_JSON}; this is a model folder, not a training checkpoint "
                             f"(use it with --finetune instead of --resume)")
    state = read_json(ckpt_dir / STATE_JSON, "training state")
    for key, typ in _STATE_KEYS.items():
        v = state.get(key)
        if isinstance(v, bool) or not isinstance(v, typ):
            raise ModelFileError(f"{ckpt_dir / STATE_JSON}: {key!r} is {v!r}; the training state is damaged")
    for key in ("pl_mean", "augment_p"):
        if isinstance(state.get(key), float) and not math.isfinite(state[key]):
            raise ModelFileError(f"{ckpt_dir / STATE_JSON}: {key!r} is {state[key]}; the training state is unusable "
                                 f"(training diverged before this checkpoint). Use an earlier checkpoint.")
    if state["cur_nimg"] < 0 or state["batch_idx"] < 0:
        raise ModelFileError(f"{ckpt_dir / STATE_JSON}: negative image or batch counter; the file is damaged")
    tensors = read_tensors(ckpt_dir / STATE_TENSORS, "training state tensors")
    check_finite({k: v for k, v in tensors.items() if not k.startswith("rng.")}, str(ckpt_dir / STATE_TENSORS))
    state_checks.check_state(state, tensors, ckpt_dir / STATE_JSON, ckpt_dir)
    return state, tensors


def stored_ada_state(ckpt_dir: Path, state: dict[str, Any]) -> dict[str, Any] | None:
    """ADA's controller state of a checkpoint (`state`: its checked train_state.json), or None if it has no p.

    Checkpoints store p once, in train_state.json "ada" (float64, with the accumulator). Checkpoints written
    before that (up to commit 66debc1 and a little after) held four copies; they are read in this order, the
    first that exists winning: train_state.json "ada"."p" (float64, exact), train_state.json "augment_p",
    the checkpoint's config.json "augment_p", weights.safetensors "augment_pipe.p" (the last three are the
    pipe's float32 value, and come without the accumulator)."""
    ada = state.get("ada")
    if isinstance(ada, dict) and "p" in ada:
        return ada  # checked with the rest of the state (state_checks.check_ada)
    ckpt_dir = Path(ckpt_dir)
    doc = read_json(ckpt_dir / CONFIG_NAME, "model config")
    weights = read_tensors(ckpt_dir / WEIGHTS_NAME)
    for where, p in ((ckpt_dir / STATE_JSON, state.get("augment_p")), (ckpt_dir / CONFIG_NAME, doc.get("augment_p")),
                     (ckpt_dir / WEIGHTS_NAME, weights.get("augment_pipe.p"))):
        if p is None:
            continue
        p = float(p) if isinstance(p, (int, float, torch.Tensor)) and not isinstance(p, bool) else math.nan
        if not 0 <= p <= 1:
            raise ModelFileError(f"{where}: the augmentation p is not a probability in [0, 1]; the file is damaged")
        return {"p": p}
    return None


def load_checkpoint_state(ckpt_dir: Path, optimizers: dict[str, torch.optim.Optimizer]
                          ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Restore optimiser states in place; return (plain state dict, rng tensors)."""
    state, tensors = read_checkpoint_state(ckpt_dir)
    for name in optimizers:
        if not isinstance(state["optimizers"].get(name), dict):
            raise ModelFileError(f"{ckpt_dir / STATE_JSON}: no optimiser state for {name}; the file is damaged")
    for name, opt in optimizers.items():
        load_optimizer_state(opt, _unflatten_optimizer(f"opt_{name}", tensors, state["optimizers"][name]))
    rng = {k[4:]: v for k, v in tensors.items() if k.startswith("rng.")}
    return state, rng


# How an optimiser steps (not what it has learned): the running optimiser's own choice, not the checkpoint's.
_OPT_IMPL_KEYS = ("fused", "foreach", "capturable")


def load_optimizer_state(opt: torch.optim.Optimizer, saved: dict[str, Any]) -> None:
    """`opt.load_state_dict(saved)`, keeping opt's implementation (fused, foreach, capturable). A plain
    load takes those from the checkpoint too: a run saved before Adam became fused resumed unfused, with
    its step counters on the host (a host read each step on a GPU)."""
    groups = [{**g, **{k: live[k] for k in _OPT_IMPL_KEYS if k in live}}
              for g, live in zip(saved["param_groups"], opt.param_groups)]
    opt.load_state_dict({**saved, "param_groups": groups})  # 'step' is placed as the live flags require


def verify_checkpoint(ckpt_dir: Path) -> None:
    """Everything `--resume` will read, read and checked now: model config, weights (finite, of the config's
    networks), training state (every number). Raises ModelFileError with the reason."""
    ckpt_dir = Path(ckpt_dir)
    cfg, doc = read_model_config(ckpt_dir)
    weights = read_tensors(ckpt_dir / WEIGHTS_NAME)
    for net in ("G", "G_ema", "D"):
        if not any(k.startswith(net + ".") for k in weights):
            raise ModelFileError(f"{ckpt_dir / WEIGHTS_NAME}: no {net} weights; a training checkpoint holds "
                                 f"G, G_ema and D")
    check_finite(weights, str(ckpt_dir / WEIGHTS_NAME))
    state_checks.check_weights_fit(cfg, weights, ckpt_dir / WEIGHTS_NAME, ckpt_dir / CONFIG_NAME)
    del weights
    state, _ = read_checkpoint_state(ckpt_dir)
    train = doc.get("train")
    state_checks.check_batch_count(state, train.get("batch") if isinstance(train, dict) else None,
                                   ckpt_dir / STATE_JSON)


@dataclass
class ResumePoint:
    """Where `--resume` continues: the run, the checkpoint that verified, the run's saved options, and the
    newer checkpoints that were skipped with the reason."""

    run_dir: Path
    checkpoint: Path
    run_config: dict[str, Any]
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def _candidates(run_dir: Path) -> list[Path]:
    """Checkpoint folders of a run, newest first, complete or not (hidden temp folders excluded)."""
    return checkpoint_dirs(run_dir)[::-1]


def _latest_run_with_checkpoints(out_dir: Path) -> Path | None:
    runs = runs_in(out_dir)
    return runs[-1] if runs else None


def find_resume(spec: str | Path, out_dir: str | Path) -> ResumePoint:
    """Resolve `--resume latest | RUN | CHECKPOINT` to the newest checkpoint that loads and verifies.

    A run (or `latest`: the newest run under `out_dir` with checkpoints) falls back past checkpoints that are
    corrupt, saying which and why (also logged as warnings); a checkpoint folder given explicitly must verify.
    Raises ModelFileError when nothing usable is found, listing every reason.
    """
    out_dir = Path(out_dir)
    if str(spec) == "latest":
        run_dir = _latest_run_with_checkpoints(out_dir)
        if run_dir is None:
            raise ModelFileError(f"--resume latest: no run with a checkpoint under {out_dir}; pass --out with the "
                                 f"folder that holds your runs, or a run folder")
        candidates = _candidates(run_dir)
    else:
        target = Path(spec)
        if not target.is_dir():
            raise ModelFileError(f"--resume {spec}: no such folder; pass 'latest', a run folder or a checkpoint")
        if _candidates(target):
            run_dir, candidates = target, _candidates(target)
        elif (target / STATE_JSON).exists() or (target / STATE_TENSORS).exists() or (target / CONFIG_NAME).exists():
            run_dir, candidates = target.parent.parent, [target]
        else:
            raise ModelFileError(f"--resume {target}: neither a run folder with checkpoints/ nor a checkpoint")
    c, _, skipped = first_that_loads(candidates, lambda c: _verify_for_run(run_dir, c), f"--resume {spec}",
                                     f"no checkpoint of {run_dir} loads and verifies",
                                     "Start a new run, or restore a checkpoint from a backup.")
    return ResumePoint(run_dir, c, _run_config(run_dir, c), skipped)


def _verify_for_run(run_dir: Path, ckpt_dir: Path) -> None:
    """verify_checkpoint, and the checkpoint's model is the run's (run/config.json 'model')."""
    verify_checkpoint(ckpt_dir)
    cfg, _ = read_model_config(ckpt_dir)
    try:  # a damaged run config.json is replaced by the checkpoint's own copy later (_run_config): nothing to compare
        run_model = ModelConfig.from_dict(read_json(run_dir / CONFIG_NAME, "run config")["model"]).to_dict()
    except (ConfigError, KeyError, TypeError):
        return
    diff = [f"{k} {v!r} (the run's {run_model[k]!r})" for k, v in cfg.to_dict().items() if run_model.get(k) != v]
    if diff:
        raise ModelFileError(f"{ckpt_dir / CONFIG_NAME}: the checkpoint's model differs from the run's "
                             f"{run_dir / CONFIG_NAME}: {', '.join(diff[:4])}; it belongs to another run")


def _run_config(run_dir: Path, ckpt_dir: Path) -> dict[str, Any]:
    """The run's saved options (run/config.json); when that is damaged, the copy inside the checkpoint."""
    try:
        saved = read_json(run_dir / CONFIG_NAME, "run config")
        if isinstance(saved.get("model"), dict) and isinstance(saved.get("train"), dict):
            return saved
        reason = "it lacks 'model' or 'train'"
    except ModelFileError as e:
        reason = str(e)
    doc = read_json(ckpt_dir / CONFIG_NAME, "model config")
    if not isinstance(doc.get("train"), dict):
        raise ModelFileError(f"{run_dir / CONFIG_NAME}: unusable ({reason}) and {ckpt_dir} holds no copy of the "
                             f"training options")
    log.warning("%s is unusable (%s); using the options saved in %s", run_dir / CONFIG_NAME, reason, ckpt_dir)
    return {"model": doc["model"], "train": doc["train"]}


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
