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
_TOL = {torch.float16: 2e-2, torch.bfloat16: 1e-1, torch.float32: 1e-5, torch.float64: 1e-6}

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


def _compare(names, ours, ref, tol: float) -> str | None:
    for name, a, r in zip(names, ours, ref):
        a, r = a.detach().float(), r.detach().float()
        err = float((a - r).abs().max() / (r.abs().max() + 1))
        if not err <= tol:  # also catches NaN
            return f"{name} differs from the plain formula by {err:.3g} (tolerance {tol:g})"
    return None


def _check_bias_act(mod: ModuleType, device: torch.device, dtype: torch.dtype) -> str | None:
    """Values, first and second gradients of the kernel against the plain formula; None if they agree."""
    from flowergan.ops.bias_act import bias_act_reference

    g = torch.Generator().manual_seed(0)
    tol = _TOL[dtype]
    cases = [((2, 5), 1, "lrelu", None), ((2, 3, 4, 4), 1, "lrelu", 0.6), ((2, 3, 4, 4), 1, "linear", 0.6)]
    for shape, dim, act, clamp in cases:
        x0 = torch.randn(shape, generator=g).to(device, dtype)
        b0 = torch.randn([shape[dim]], generator=g).to(device, dtype)
        w0 = torch.randn(shape, generator=g).to(device, dtype)
        if x0.ndim == 4:
            x0 = x0.to(memory_format=torch.channels_last)
        outs = []
        for fn in (mod.bias_act_triton, bias_act_reference):
            x, b, w = x0.clone().requires_grad_(), b0.clone().requires_grad_(), w0.clone().requires_grad_()
            y = fn(x, b, dim, act, 0.2, 1.4, clamp)
            dx, db = torch.autograd.grad((y * w).sum(), [x, b], create_graph=True)
            (dw,) = torch.autograd.grad(dx.square().sum() + db.square().sum(), [w])  # the second-order path
            outs.append((y, dx, db, dw))
        error = _compare(("y", "dx", "db", "d(dx)"), *outs, tol)
        if error is not None:
            return error
    return None


def _check_upfirdn(mod: ModuleType, device: torch.device, dtype: torch.dtype) -> str | None:
    """upsample2d-, downsample2d- and crop-like calls, 1-D and 2-D filters: values and gradients of two orders."""
    from flowergan.ops.upfirdn import setup_filter, upfirdn2d_reference

    g = torch.Generator().manual_seed(0)
    tol = _TOL[dtype]
    cases = [((2, 1), (1, 1), (2, 1, 2, 1), 4.0, True), ((1, 1), (2, 2), (1, 1, 1, 1), 1.0, True),
             ((1, 1), (1, 1), (-1, 2, 1, 0), 1.0, False)]
    for up, down, pad, gain, separable in cases:
        f = setup_filter([1, 3, 3, 1] if separable else [[1, 2], [3, 4], [0, 1]], separable=separable)
        f = f.to(device)
        x0 = torch.randn([2, 3, 5, 4], generator=g).to(device, dtype).to(memory_format=torch.channels_last)
        outs = []
        for fn in (mod.upfirdn2d_triton, upfirdn2d_reference):
            x = x0.clone().requires_grad_()
            y = fn(x, f, up, down, pad, False, gain)
            w = torch.randn(y.shape, generator=torch.Generator().manual_seed(1)).to(device, dtype).requires_grad_()
            (dx,) = torch.autograd.grad((y * w).sum(), [x], create_graph=True)
            (dw,) = torch.autograd.grad(dx.square().sum(), [w])  # the second-order path
            outs.append((y, dx, dw))
        error = _compare(("y", "dx", "d(dx)"), *outs, tol)
        if error is not None:
            return error
    return None


_CHECKS = {"bias_act": _check_bias_act, "upfirdn2d": _check_upfirdn}
