"""When the fused Triton kernels run: CUDA tensors, triton importable, a one-time self-check passed, not disabled.

Anything else (CPU, `FLOWERGAN_TRITON=0`, no triton, a failed self-check or kernel, torch.compile tracing,
CUDA-graph capture before the check) takes the plain PyTorch path. A failure says so once, as a warning, and
switches the kernels off for the rest of the process; it never stops a run.
"""

from __future__ import annotations

import importlib
import logging
import os
from types import ModuleType

import torch

log = logging.getLogger(__name__)

ENV = "FLOWERGAN_TRITON"  # 0 / off / false: never use the Triton kernels
DEVICE_TYPES = {"cuda"}   # device types that try the kernels (tests add "cpu" under TRITON_INTERPRET=1)
DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# Self-check tolerance per dtype: one final rounding here against the plain formula's rounding at every step.
TOL = {torch.float16: 2e-2, torch.bfloat16: 1e-1, torch.float32: 1e-5, torch.float64: 1e-6}

_MODULES = {"bias_act": "flowergan.ops.bias_act_triton", "upfirdn2d": "flowergan.ops.upfirdn_triton"}
_state: dict = {"modules": {}, "disabled": None, "checked": set()}


def env_disabled() -> bool:
    return os.environ.get(ENV, "").strip().lower() in ("0", "off", "false", "no")


def reset() -> None:
    """Forget the self-checks and any failure (tests; a later call checks again)."""
    _state.update(modules={}, disabled=None, checked=set())


def disable(reason: str) -> None:
    """Switch the kernels off for this process, with one warning naming the reason."""
    if _state["disabled"] is None:
        log.warning("Triton kernels off, using the plain PyTorch ops instead (same results, slower): %s. "
                    "Set %s=0 to skip them without this message.", reason, ENV)
    _state["disabled"] = reason


def bias_act_kernels(x: torch.Tensor) -> ModuleType | None:
    """The `bias_act_triton` module if x may take the fused path, else None."""
    return kernels("bias_act", x)


def upfirdn_kernels(x: torch.Tensor) -> ModuleType | None:
    """The `upfirdn_triton` module if x may take the fused path, else None."""
    return kernels("upfirdn2d", x)


def kernels(name: str, x: torch.Tensor) -> ModuleType | None:
    """The kernels module `name` if x may take its fused path (checked once per device and dtype), else None."""
    if x.device.type not in DEVICE_TYPES or x.dtype not in DTYPES or _state["disabled"] is not None:
        return None
    if env_disabled() or torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling():
        return None
    key = (name, str(x.device), x.dtype)
    if key in _state["checked"]:
        return _state["modules"][name]
    if x.is_cuda and torch.cuda.is_current_stream_capturing():
        return None  # the check synchronises: never inside a graph capture
    if name not in _state["modules"]:
        try:
            _state["modules"][name] = importlib.import_module(_MODULES[name])
        except ImportError as e:
            disable(f"triton is not importable ({type(e).__name__}: {e})")
            return None
    try:
        with torch.autocast(x.device.type, enabled=False):  # compare like with like, whatever the caller runs
            error = _CHECKS[name](_state["modules"][name], x.device, x.dtype)
    except Exception as e:  # noqa: BLE001 - any compile or launch failure means "use the plain path"
        disable(f"{name} self-check on {x.device} raised {type(e).__name__}: {str(e).splitlines()[0][:200]}")
        return None
    if error is not None:
        disable(f"{name} self-check on {x.device} ({x.dtype}): {error}")
        return None
    _state["checked"].add(key)
    return _state["modules"][name]


def compare(names, ours, ref, tol: float) -> str | None:
    for name, a, r in zip(names, ours, ref):
        a, r = a.detach().float(), r.detach().float()
        err = float((a - r).abs().max() / (r.abs().max() + 1))
        if not err <= tol:  # also catches NaN
            return f"{name} differs from the plain formula by {err:.3g} (tolerance {tol:g})"
    return None


# name -> self-check(kernels module, device, dtype) -> None or what differs; each op module registers its own
# (it holds the plain formula the check compares with, and this module imports no op: no import circle)
_CHECKS: dict = {}


def register_check(name: str, check) -> None:
    _CHECKS[name] = check
