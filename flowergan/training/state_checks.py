"""Plausibility checks of every number a training checkpoint restores: counters, ADA state, sampler position,
RNG states, the best-FID record, and the weights against the model config. A checkpoint that fails one is
skipped by `--resume` like a damaged file (checkpoint.verify_checkpoint calls these)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flowergan.config import ModelConfig
from flowergan.networks.run_folder import checkpoint_nimg
from flowergan.networks.store import ModelFileError

CUDA_RNG_BYTES = 16  # torch's CUDA (Philox) generator state: seed and offset, 8 bytes each (checked live on CUDA)
_MT_KEYS = 624       # numpy MT19937 state words


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _bad(where: Path, what: str) -> ModelFileError:
    return ModelFileError(f"{where}: {what}; the training state is damaged. Use an earlier checkpoint.")


def _finite_in(v: Any, lo: float | None, hi: float | None) -> bool:
    return _is_num(v) and math.isfinite(v) and (lo is None or v >= lo) and (hi is None or v <= hi)


def check_counters(state: dict[str, Any], where: Path, ckpt_dir: Path) -> None:
    """cur_nimg matches the checkpoint's folder name (snapshot-<cur_nimg>); pl_mean and world_size plausible."""
    named = checkpoint_nimg(ckpt_dir)
    if named is not None and named != state["cur_nimg"]:
        raise _bad(where, f"'cur_nimg' is {state['cur_nimg']:,} but the checkpoint is named for {named:,} images")
    if not _finite_in(state["pl_mean"], 0, None):
        raise _bad(where, f"'pl_mean' is {state['pl_mean']!r}, expected a finite number >= 0")
    ws = state.get("world_size", 1)
    if not _is_int(ws) or ws < 1:
        raise _bad(where, f"'world_size' is {ws!r}, expected a whole number >= 1")


def check_batch_count(state: dict[str, Any], batch: Any, where: Path) -> None:
    """Every step shows `batch` images: cur_nimg == batch_idx * batch (the batch cannot change on resume)."""
    if _is_int(batch) and batch > 0 and state["cur_nimg"] != state["batch_idx"] * batch:
        raise _bad(where, f"'cur_nimg' {state['cur_nimg']:,} is not 'batch_idx' {state['batch_idx']:,} x the "
                          f"run's batch {batch}")


def check_ada(state: dict[str, Any], where: Path) -> None:
    """augment_p and the ADA controller's p in [0, 1]; its accumulated statistics finite and consistent."""
    if "augment_p" in state and state["augment_p"] is not None and not _finite_in(state["augment_p"], 0, 1):
        raise _bad(where, f"'augment_p' is {state['augment_p']!r}, expected a probability in [0, 1]")
    ada = state.get("ada")
    if ada is None:
        return
    if not isinstance(ada, dict):
        raise _bad(where, f"'ada' is {ada!r}, expected the ADA controller's state (an object)")
    if not _finite_in(ada.get("p"), 0, 1):
        raise _bad(where, f"ADA p is {ada.get('p')!r}, expected a probability in [0, 1]")
    sign_sum, count = ada.get("sign_sum", 0.0), ada.get("count", 0.0)
    if not (_finite_in(count, 0, None) and _finite_in(sign_sum, None, None) and abs(sign_sum) <= count):
        raise _bad(where, f"ADA statistics (sign_sum {sign_sum!r}, count {count!r}) are not finite numbers with "
                          f"|sign_sum| <= count")
    pending = ada.get("pending", 0)
    if not _is_int(pending) or pending < 0:
        raise _bad(where, f"ADA 'pending' is {pending!r}, expected a whole number >= 0")
    rt = ada.get("last_rt")
    if rt is not None and not _finite_in(rt, -1, 1):
        raise _bad(where, f"ADA 'last_rt' is {rt!r}, expected a number in [-1, 1]")


def check_sampler(state: dict[str, Any], where: Path) -> None:
    """The data position: inside its epoch, and no more images consumed than the image count allows."""
    s = state["sampler"]
    pos = s.get("pos")
    if not _is_int(pos) or pos < 0:
        raise _bad(where, f"sampler 'pos' is {pos!r}, expected a whole number >= 0")
    if "n" not in s:  # a custom sampler (tests, benchmarks) stores only its position
        return
    n, world, rank, epoch = s.get("n"), s.get("world", 1), s.get("rank", 0), s.get("epoch", 0)
    if not all(_is_int(v) for v in (n, world, rank, epoch)) or n < 1 or world < 1 or not 0 <= rank < world \
            or epoch < 0:
        raise _bad(where, f"sampler state {s!r} is not a position in a dataset (n >= 1, 0 <= rank < world, "
                          f"epoch >= 0)")
    per_rank = -(-n // world)
    if pos >= per_rank:
        raise _bad(where, f"sampler position {pos:,} is past the data ({per_rank:,} images per epoch)")
    if epoch * per_rank + pos > -(-state["cur_nimg"] // world):
        raise _bad(where, f"sampler at epoch {epoch:,}, position {pos:,} has read more images than the "
                          f"{state['cur_nimg']:,} the run has shown")


def check_label_rng(state: dict[str, Any], where: Path) -> None:
    """numpy's MT19937 state as saved by the loop: [name, 624 keys, pos, has_gauss, cached_gaussian]."""
    s = state.get("label_rng")
    if s is None:
        return
    ok = (isinstance(s, list) and len(s) == 5 and s[0] == "MT19937" and isinstance(s[1], list)
          and len(s[1]) == _MT_KEYS and all(_is_int(k) and 0 <= k < 2**32 for k in s[1])
          and _is_int(s[2]) and 0 <= s[2] <= _MT_KEYS and s[3] in (0, 1) and _finite_in(s[4], None, None))
    if ok:
        try:
            np.random.RandomState().set_state((s[0], np.array(s[1], dtype=np.uint32), s[2], s[3], s[4]))
        except (ValueError, TypeError):
            ok = False
    if not ok:
        raise _bad(where, "'label_rng' is not a numpy MT19937 state ([name, 624 keys, pos, has_gauss, cached])")


def check_best(state: dict[str, Any], where: Path) -> None:
    best = state.get("best")
    if best is None or best == {}:
        return
    if not isinstance(best, dict) or not _finite_in(best.get("fid", 0.0), 0, None) \
            or not _finite_in(best.get("kimg", 0.0), 0, None) \
            or not isinstance(best.get("checkpoint", ""), str):
        raise _bad(where, f"'best' is {str(best)[:120]}, expected {{'fid': number >= 0, 'kimg', 'checkpoint'}}")


def check_rng_tensors(tensors: dict[str, torch.Tensor], where: Path) -> None:
    """rng.cpu: a state torch's CPU generator accepts; rng.cuda: 16 bytes (seed and offset)."""
    cpu = tensors.get("rng.cpu")
    if cpu is not None:
        want = torch.get_rng_state()
        ok = cpu.dtype == torch.uint8 and cpu.shape == want.shape
        if ok:
            try:
                torch.Generator().set_state(cpu)
            except RuntimeError:
                ok = False
        if not ok:
            raise _bad(where, f"'rng.cpu' is {cpu.dtype} {list(cpu.shape)}, not a CPU generator state "
                              f"(uint8 {list(want.shape)})")
    cuda = tensors.get("rng.cuda")
    if cuda is None:
        return
    # Its size is the live generator's where CUDA is present (the only place it is restored), else torch's 16.
    want_bytes = torch.cuda.get_rng_state().numel() if torch.cuda.is_available() else CUDA_RNG_BYTES
    if cuda.dtype != torch.uint8 or list(cuda.shape) != [want_bytes]:
        raise _bad(where, f"'rng.cuda' is {cuda.dtype} {list(cuda.shape)}, not a CUDA generator state "
                          f"(uint8 [{want_bytes}])")


def check_state(state: dict[str, Any], tensors: dict[str, torch.Tensor], where: Path, ckpt_dir: Path) -> None:
    """Every restored number of train_state.json / .safetensors (types already checked)."""
    check_counters(state, where, ckpt_dir)
    check_ada(state, where)
    check_sampler(state, where)
    check_label_rng(state, where)
    check_best(state, where)
    check_rng_tensors(tensors, Path(ckpt_dir) / "train_state.safetensors")


def check_weights_fit(cfg: ModelConfig, weights: dict[str, torch.Tensor], where: Path, config_path: Path) -> None:
    """G, G_ema and D tensors have exactly the names and shapes the config's networks have (built on the meta
    device: no memory, no RNG use)."""
    from flowergan.networks import build_networks

    with torch.device("meta"):
        G, D = build_networks(cfg, seed=0)
    want = {f"{net}.{k}": tuple(v.shape) for net, m in (("G", G), ("G_ema", G), ("D", D))
            for k, v in m.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in weights.items() if k.split(".", 1)[0] in ("G", "G_ema", "D")}
    missing, extra = sorted(want.keys() - have.keys()), sorted(have.keys() - want.keys())
    shapes = sorted(k for k in want.keys() & have.keys() if want[k] != have[k])
    if missing or extra or shapes:
        example = (f"{shapes[0]!r} is {list(have[shapes[0]])} where the config needs {list(want[shapes[0]])}"
                   if shapes else f"{(missing or extra)[0]!r} is {'missing' if missing else 'unexpected'}")
        raise ModelFileError(f"{where}: the weights are not those of the model in {config_path} ({len(missing)} "
                             f"missing, {len(extra)} unexpected, {len(shapes)} of another shape; e.g. {example}); "
                             f"the checkpoint mixes files of different models. Use an earlier checkpoint.")
