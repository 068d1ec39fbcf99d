"""Fused bias + activation + gain + clamp (bias_act semantics), in plain PyTorch."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


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
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x.add_(b.to(x.dtype).reshape(shape))
    x = F.leaky_relu(x, alpha, inplace=True)
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x
