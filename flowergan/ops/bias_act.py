"""Fused bias + activation + gain + clamp (bias_act semantics): the plain PyTorch formula, and the dispatch to
the fused Triton kernel (`bias_act_triton.py`) where `fused.py` allows it (CUDA tensors only)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import torch
import torch.nn.functional as F

from flowergan.ops import fused


@dataclass(frozen=True)
class Activation:
    fn: Callable[[torch.Tensor, float], torch.Tensor]
    def_alpha: float
    def_gain: float


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda x, a: x, 0.0, 1.0),
    "relu": Activation(lambda x, a: F.relu(x), 0.0, math.sqrt(2)),
    "lrelu": Activation(lambda x, a: F.leaky_relu(x, a), 0.2, math.sqrt(2)),
    "tanh": Activation(lambda x, a: torch.tanh(x), 0.0, 1.0),
    "sigmoid": Activation(lambda x, a: torch.sigmoid(x), 0.0, 1.0),
    "elu": Activation(lambda x, a: F.elu(x), 0.0, 1.0),
    "selu": Activation(lambda x, a: F.selu(x), 0.0, 1.0),
    "softplus": Activation(lambda x, a: F.softplus(x), 0.0, 1.0),
    "swish": Activation(lambda x, a: x * torch.sigmoid(x), 0.0, math.sqrt(2)),
}


def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, dim: int = 1, act: str = "linear",
             alpha: float | None = None, gain: float | None = None,
             clamp: float | None = None) -> torch.Tensor:
    """y = clamp(act(x + b) * gain, -clamp, clamp).

    Args:
        x: input of any shape.
        b: bias [x.shape[dim]] or None.
        dim: the dimension of x that `b` runs along.
        act: a name from ACTIVATIONS.
        alpha: activation parameter (the lrelu slope; default 0.2).
        gain: output scale (default: the activation's, sqrt(2) for relu/lrelu).
        clamp: clamp the output to [-clamp, clamp] (None: no clamp).
    """
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; choose one of {sorted(ACTIVATIONS)}")
    spec = ACTIVATIONS[act]
    alpha = spec.def_alpha if alpha is None else float(alpha)
    gain = spec.def_gain if gain is None else float(gain)
    if b is not None:
        b = b.to(x.dtype)
    y = _fused(x, b, dim, act, alpha, gain, clamp)
    return y if y is not None else bias_act_reference(x, b, dim, act, alpha, gain, clamp)


def bias_act_reference(x: torch.Tensor, b: torch.Tensor | None, dim: int, act: str, alpha: float, gain: float,
                       clamp: float | None) -> torch.Tensor:
    """The plain formula behind `bias_act` (every argument resolved): the CPU path and the tests' oracle."""
    spec = ACTIVATIONS[act]
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + b.to(x.dtype).reshape(shape)
    x = spec.fn(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def bias_lrelu_(x: torch.Tensor, b: torch.Tensor | None, alpha: float = 0.2, clamp: float | None = None,
                dim: int = 1) -> torch.Tensor:
    """lrelu(x + b), clamped, computed in place on `x` (which must be a fresh intermediate that autograd
    does not need, e.g. a convolution's output). Callers fold any gain into x and b beforehand (lrelu is
    positively homogeneous: lrelu(z) * g == lrelu(z * g) for g > 0), saving full-size passes over memory."""
    if b is not None:
        b = b.to(x.dtype)
    y = _fused(x, b, dim, "lrelu", alpha, 1.0, clamp, inplace=True)
    if y is not None:
        return y
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x.add_(b.reshape(shape))
    x = F.leaky_relu(x, alpha, inplace=True)
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def _fused(x: torch.Tensor, b: torch.Tensor | None, dim: int, act: str, alpha: float, gain: float,
           clamp: float | None, inplace: bool = False) -> torch.Tensor | None:
    """The Triton kernel's result where it applies and works, else None (the caller runs the plain formula)."""
    if act not in ("linear", "relu", "lrelu") or clamp == 0 or x.numel() == 0:
        return None
    if act == "linear" and (clamp is None or clamp < 0):
        return None  # x + b (times gain) is already one op, and its backward needs no saved tensor
    kernels = fused.bias_act_kernels(x)
    if kernels is None or not kernels.is_dense(x) or (b is not None and b.shape != (x.shape[dim],)):
        return None
    # In place only on an intermediate that is not a view or a leaf (what leaky_relu_ itself would refuse).
    inplace = inplace and x._base is None and not (x.requires_grad and x.is_leaf)
    try:
        return kernels.bias_act_triton(x, b, dim, act, alpha, gain, clamp, inplace=inplace)
    except torch.OutOfMemoryError:
        raise
    except Exception as e:  # noqa: BLE001 - a kernel failure falls back to the plain formula
        fused.disable(f"bias_act kernel raised {type(e).__name__}: {str(e).splitlines()[0][:200]}")
        return None


def _self_check_bias_act(mod: ModuleType, device: torch.device, dtype: torch.dtype) -> str | None:
    """Values, first and second gradients of the kernel against the plain formula; None if they agree."""
    g = torch.Generator().manual_seed(0)
    tol = fused.TOL[dtype]
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
        error = fused.compare(("y", "dx", "db", "d(dx)"), *outs, tol)
        if error is not None:
            return error
    return None


fused.register_check("bias_act", _self_check_bias_act)
