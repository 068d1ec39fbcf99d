"""Adaptive augmentation-probability controller (Karras et al. 2020, section 3: the overfitting heuristic r_t).

r_t = E[sign(D(x_real))] over the last `interval` minibatches estimates how far the discriminator
overfits the training set (0: none, 1: complete). Every `interval` minibatches p moves by
sign(r_t - target) * num_images / (speed_kimg * 1000), so p can travel from 0 to 1 in `speed_kimg`
thousand real images, and is clamped to [0, p_max].

The controller owns p: one 0-dim tensor on the training device, moved only by `step` (and restored by
`load_state_dict`). The pipe reads it (`AugmentPipe(p=ada.current_p)`); nothing else writes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

log = logging.getLogger(__name__)


class AdaController:
    """Accumulates sign statistics of D on reals on the device and moves the augmentation probability p.

    Typical use in a training step. The phases report, for every pass of D over reals (the main phase and,
    on R1 iterations, the regularisation phase too, as in the official code), the sign statistics
    [sum of sign(D(reals)), count]; the step hands them on. The cadence counts training iterations, not D
    passes::

        ada = AdaController(target=0.6, speed_kimg=500, interval=4, device=device)
        pipe = AugmentPipe.from_preset("bgc", p=ada.current_p).to(device)   # the pipe reads ada's p
        ...
        real_logits = D(pipe(real_images), c)       # each D pass on reals (Dmain, Dreg)
        ada.accumulate(real_sign_stats(real_logits))
        ...                                         # end of the training iteration:
        ada.end_minibatch()
        if ada.ready:                               # every `interval` minibatches
            ada.step(global_batch_size * ada.interval, reduce=all_reduce_sum)

    Nothing here reads a device value on the host, except the `p` and `last_rt` properties (for logs).

    Args:
        target: desired r_t (paper: 0.6).
        speed_kimg: thousands of images for p to go from 0 to 1 (paper: 500).
        interval: minibatches between adjustments (paper: 4).
        p_max: upper clamp (the paper clamps only at 0; None disables the upper clamp).
        p: initial p (clamped to [0, p_max]).
        device: where p and the statistics live (the training device).
    """

    def __init__(self, *, target: float = 0.6, speed_kimg: float = 500, interval: int = 4,
                 p_max: float | None = 1.0, p: float = 0.0, device: torch.device | str = "cpu"):
        if not 0 <= target <= 1:
            raise ValueError(f"AdaController: target must be in [0, 1] (r_t is a mean of signs), got {target}")
        if not speed_kimg > 0:
            raise ValueError(f"AdaController: speed_kimg must be > 0, got {speed_kimg}")
        if int(interval) < 1:
            raise ValueError(f"AdaController: interval must be >= 1 minibatch, got {interval}")
        if p_max is not None and p_max < 0:
            raise ValueError(f"AdaController: p_max must be >= 0 or None, got {p_max}")
        self.target = float(target)
        self.speed_kimg = float(speed_kimg)
        self.interval = int(interval)
        self.p_max = None if p_max is None else float(p_max)
        device = torch.device(device)
        # float64 keeps the trajectory independent of the device (and equal to Python float arithmetic);
        # MPS has no float64.
        dtype = torch.float32 if device.type == "mps" else torch.float64
        p0 = max(float(p), 0.0)
        p0 = min(p0, self.p_max) if self.p_max is not None else p0
        self._p = torch.tensor(p0, dtype=dtype, device=device)       # ADA's p: the only copy
        self._p_version = self._p._version                          # in-place writes bump _version
        self._stats = torch.zeros(2, dtype=torch.float32, device=device)  # [sum of signs, count]
        self._last = torch.zeros(2, dtype=dtype, device=device)     # [r_t, count] of the last step
        self.pending = 0  # training iterations (end_minibatch calls) since the last step()

    # ------------------------------------------------------------------------------------------------
    def current_p(self) -> torch.Tensor:
        """p as the 0-dim tensor the controller owns (float64; float32 on MPS), for readers such as the
        pipe. Never write it: the next read raises if anything but this controller changed it."""
        # (not while torch.compile traces: a tensor's version counter is not traceable; eager reads check it)
        if not torch.compiler.is_compiling() and self._p._version != self._p_version:
            raise RuntimeError("AdaController: p was written from outside the controller; only step() and "
                               "load_state_dict() may change it (build the pipe with p=ada.current_p to read it)")
        return self._p

    def _write_p(self, value: torch.Tensor | float) -> None:
        """The one place p changes."""
        self.current_p().copy_(torch.as_tensor(value, dtype=self._p.dtype))
        self._p_version = self._p._version

    @property
    def p(self) -> float:
        """The current probability as a Python float (one host read on accelerators)."""
        return float(self.current_p())

    @property
    def last_rt(self) -> float | None:
        """r_t of the last step (None before the first step, or if it saw no reals); one host read."""
        rt, count = self._last.tolist()
        return rt if count > 0 else None

    @property
    def ready(self) -> bool:
        """True once `interval` training iterations ended since the last `step`: time to call `step`."""
        return self.pending >= self.interval

    def accumulate(self, signs: torch.Tensor) -> None:
        """Add one D pass's [sum of sign(D(reals)), count] (see `real_sign_stats`); on the device."""
        if signs.device != self._stats.device:
            self._stats = self._stats.to(signs.device)
        self._stats.add_(signs.detach().to(torch.float32))

    def end_minibatch(self) -> None:
        """Count one training iteration (however many D passes over reals it reported)."""
        self.pending += 1

    def stats_tensor(self) -> torch.Tensor:
        """The accumulator [sum of signs, count] (float32). Multi-process: all_reduce(SUM) it in place
        before `step` (or pass `reduce=` to `step`)."""
        return self._stats

    def step(self, num_images: int, reduce: Callable[[torch.Tensor], Any] | None = None) -> None:
        """Move p from the accumulated signs and reset the accumulator; on the device, no host read.

        p <- clamp(p + sign(r_t - target) * num_images / (speed_kimg * 1000), 0, p_max); p stays put when
        nothing was accumulated.

        Args:
            num_images: real images seen since the last step over all processes (normally global batch
                size * interval).
            reduce: optional callable applied to `stats_tensor()` before reading it, e.g.
                `torch.distributed.all_reduce` (in place) or a function returning the reduced tensor.
        """
        stats = self._stats
        if reduce is not None:
            out = reduce(stats)
            if isinstance(out, torch.Tensor):
                stats = out
        dt = self._p.dtype
        st = stats.detach().to(device=self._p.device, dtype=dt)
        sign_sum, count = st[0], st[1]
        rt = sign_sum / count.clamp(min=1)
        direction = (rt > self.target).to(dt) - (rt < self.target).to(dt)  # sign(r_t - target)
        direction = torch.where(count > 0, direction, torch.zeros_like(direction))
        self._write_p((self.current_p() + direction * (float(num_images) / (self.speed_kimg * 1000)))
                      .clamp(min=0.0, max=self.p_max))
        self._last = torch.stack([rt, count])
        self._stats.zero_()
        self.pending = 0

    # ------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Small plain-Python state for checkpoints: p (exact), the pending accumulator and the last r_t."""
        sign_sum, count = (float(v) for v in self._stats.cpu().tolist())
        return {"p": self.p, "sign_sum": sign_sum, "count": count, "pending": self.pending, "last_rt": self.last_rt}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from `state_dict()` (p is clamped to [0, p_max])."""
        missing = {"p"} - set(state)
        if missing:
            raise ValueError(f"AdaController.load_state_dict: state lacks {sorted(missing)}; got keys {sorted(state)}")
        p = max(float(state["p"]), 0.0)
        self._write_p(min(p, self.p_max) if self.p_max is not None else p)
        self._stats.copy_(torch.tensor([float(state.get("sign_sum", 0.0)), float(state.get("count", 0.0))]))
        self.pending = int(state.get("pending", 0))
        rt = state.get("last_rt")
        self._last = torch.tensor([0.0 if rt is None else float(rt), 0.0 if rt is None else 1.0],
                                  dtype=self._p.dtype, device=self._p.device)


def real_sign_stats(real_logits: torch.Tensor) -> torch.Tensor:
    """D's raw logits on reals [N, ...] -> [sum of their signs, count] (float32 [2]), on their device."""
    t = real_logits.detach()
    count = torch.full([], float(t.numel()), dtype=torch.float32, device=t.device)  # filled there: no copy
    return torch.stack([torch.sign(t).sum().to(torch.float32), count])
