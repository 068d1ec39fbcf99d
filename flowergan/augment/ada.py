"""Adaptive augmentation-probability controller (Karras et al. 2020, section 3: the overfitting heuristic r_t).

r_t = E[sign(D(x_real))] over the last `interval` minibatches estimates how far the discriminator
overfits the training set (0: none, 1: complete). Every `interval` minibatches p moves by
sign(r_t - target) * num_images / (speed_kimg * 1000), so p can travel from 0 to 1 in `speed_kimg`
thousand real images, and is clamped to [0, p_max].
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

from flowergan.augment.pipe import AugmentPipe

log = logging.getLogger(__name__)


class AdaController:
    """Accumulates sign(D(reals)) on the device and adjusts the augmentation probability p.

    Typical use in the training loop. Every pass of D over reals reports its signs (the main phase and, on
    R1 iterations, the regularisation phase too, as in the official code); the cadence counts training
    iterations, not D passes::

        pipe = AugmentPipe.from_preset("bgc").to(device)
        ada = AdaController(pipe, target=0.6, speed_kimg=500, interval=4)
        ...
        real_logits = D(pipe(real_images), c)       # each D pass on reals (Dmain, Dreg)
        ada.update(real_logits)                     # no host sync
        ...                                         # end of the training iteration:
        ada.end_minibatch()
        if ada.ready:                               # every `interval` minibatches
            rt = ada.step(global_batch_size * ada.interval, reduce=all_reduce_sum)

    Args:
        pipe: the AugmentPipe whose `p` buffer is driven (None: only `self.p` is kept, e.g. for tests).
        target: desired r_t (paper: 0.6).
        speed_kimg: thousands of images for p to go from 0 to 1 (paper: 500).
        interval: minibatches between adjustments (paper: 4).
        p_max: upper clamp (the paper clamps only at 0; None disables the upper clamp).
        p: initial p; defaults to the pipe's current p (or 0 without a pipe).
    """

    def __init__(self, pipe: AugmentPipe | None = None, *, target: float = 0.6, speed_kimg: float = 500,
                 interval: int = 4, p_max: float | None = 1.0, p: float | None = None):
        if not 0 <= target <= 1:
            raise ValueError(f"AdaController: target must be in [0, 1] (r_t is a mean of signs), got {target}")
        if not speed_kimg > 0:
            raise ValueError(f"AdaController: speed_kimg must be > 0, got {speed_kimg}")
        if int(interval) < 1:
            raise ValueError(f"AdaController: interval must be >= 1 minibatch, got {interval}")
        if p_max is not None and p_max < 0:
            raise ValueError(f"AdaController: p_max must be >= 0 or None, got {p_max}")
        self.pipe = pipe
        self.target = float(target)
        self.speed_kimg = float(speed_kimg)
        self.interval = int(interval)
        self.p_max = None if p_max is None else float(p_max)
        if p is None:
            p = float(pipe.p) if pipe is not None else 0.0
        self._p_dev: torch.Tensor | None = None   # p after device-side steps (step(sync=False)), not yet read
        self._rt_dev: torch.Tensor | None = None  # r_t of the last device-side step, not yet read
        self.p = self._clamp(float(p))
        self.pending = 0  # training iterations (end_minibatch calls) since the last step()
        self.last_rt = None
        self._stats: torch.Tensor | None = None  # [sum of signs, count], float32, on the logits' device
        self._push_p()

    # ------------------------------------------------------------------------------------------------
    @property
    def p(self) -> float:
        """The current probability (reading it after device-side steps is one host sync)."""
        if self._p_dev is not None:
            self._p = float(self._p_dev)
            self._p_dev = None
        return self._p

    @p.setter
    def p(self, value: float) -> None:
        self._p, self._p_dev = float(value), None

    @property
    def last_rt(self) -> float | None:
        """r_t of the last step (None if it saw no reals); read lazily after device-side steps."""
        if self._rt_dev is not None:
            rt, count = self._rt_dev.tolist()  # [r_t, count]
            self._last_rt = rt if count > 0 else None
            self._rt_dev = None
        return self._last_rt

    @last_rt.setter
    def last_rt(self, value: float | None) -> None:
        self._last_rt, self._rt_dev = value, None

    def _clamp(self, p: float) -> float:
        p = max(p, 0.0)
        return min(p, self.p_max) if self.p_max is not None else p

    def _push_p(self) -> None:
        if self.pipe is not None:
            self.pipe.p.copy_(torch.as_tensor(self.p, dtype=torch.float32))

    def _device(self) -> torch.device:
        return self.pipe.p.device if self.pipe is not None else torch.device("cpu")

    @property
    def ready(self) -> bool:
        """True once `interval` training iterations ended since the last `step`: time to call `step`."""
        return self.pending >= self.interval

    def update(self, real_logits: torch.Tensor) -> None:
        """Accumulate sign(D's raw logits on reals) [N, ...]; device-side only, no host sync."""
        t = real_logits.detach()
        if self._stats is None or self._stats.device != t.device:
            prev = self._stats
            self._stats = torch.zeros(2, device=t.device, dtype=torch.float32)
            if prev is not None:
                self._stats.copy_(prev)
        self._stats[0].add_(torch.sign(t).sum().to(torch.float32))
        self._stats[1].add_(t.numel())

    def end_minibatch(self) -> None:
        """Count one training iteration (however many D passes over reals it reported)."""
        self.pending += 1

    def stats_tensor(self) -> torch.Tensor:
        """The accumulator [sum of signs, count] (float32). Multi-process: all_reduce(SUM) it in place
        before `step` (or pass `reduce=` to `step`)."""
        if self._stats is None:
            self._stats = torch.zeros(2, device=self._device(), dtype=torch.float32)
        return self._stats

    def step(self, num_images: int, reduce: Callable[[torch.Tensor], Any] | None = None, *,
             sync: bool = True) -> float | None:
        """Adjust p from the accumulated signs, reset the accumulator, and return r_t (None if empty).

        Args:
            num_images: real images seen since the last step over all processes (normally global batch
                size * interval); p moves by sign(r_t - target) * num_images / (speed_kimg * 1000).
            reduce: optional callable applied to `stats_tensor()` before reading it, e.g.
                `torch.distributed.all_reduce` (in place) or a function returning the reduced tensor.
            sync: False computes the new p on the device (no host sync: for accelerator training steps);
                it reaches the pipe at once, `p` and `last_rt` are read only when asked for, and the
                method returns None. The arithmetic is the same, in float64 where the device has it.
        """
        stats = self.stats_tensor()
        if reduce is not None:
            out = reduce(stats)
            if isinstance(out, torch.Tensor):
                stats = out
        if not sync:
            self._step_on_device(stats, num_images)
            return None
        sign_sum, count = (float(v) for v in stats.detach().cpu().tolist())  # the one host sync
        self._stats.zero_()
        self.pending = 0
        if count <= 0:
            self.last_rt = None
            return None
        rt = sign_sum / count
        direction = (rt > self.target) - (rt < self.target)
        self.p = self._clamp(self.p + direction * float(num_images) / (self.speed_kimg * 1000))
        self._push_p()
        self.last_rt = rt
        log.debug("ADA step: rt=%.4f p=%.5f", rt, self.p)
        return rt

    def _step_on_device(self, stats: torch.Tensor, num_images: int) -> None:
        dev = stats.device
        dt = torch.float32 if dev.type == "mps" else torch.float64
        st = stats.detach().to(dt)
        sign_sum, count = st[0], st[1]
        rt = sign_sum / count.clamp(min=1)
        direction = (rt > self.target).to(dt) - (rt < self.target).to(dt)
        direction = torch.where(count > 0, direction, torch.zeros_like(direction))
        p = self._p_dev if self._p_dev is not None else torch.full([], self._p, dtype=dt, device=dev)
        p = (p + direction * (float(num_images) / (self.speed_kimg * 1000))).clamp(min=0.0, max=self.p_max)
        self._stats.zero_()
        self.pending = 0
        self._p_dev = p
        self._rt_dev = torch.stack([rt, count])
        if self.pipe is not None:
            self.pipe.p.copy_(p)

    # ------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Small plain-Python state for checkpoints: p, the pending accumulator and the last r_t."""
        sign_sum, count = (0.0, 0.0) if self._stats is None else (float(v) for v in self._stats.cpu().tolist())
        return {"p": self.p, "sign_sum": sign_sum, "count": count, "pending": self.pending, "last_rt": self.last_rt}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from `state_dict()`; also writes p into the pipe."""
        missing = {"p"} - set(state)
        if missing:
            raise ValueError(f"AdaController.load_state_dict: state lacks {sorted(missing)}; got keys {sorted(state)}")
        self.p = self._clamp(float(state["p"]))
        stats = self.stats_tensor()
        stats.copy_(torch.tensor([float(state.get("sign_sum", 0.0)), float(state.get("count", 0.0))]))
        self.pending = int(state.get("pending", 0))
        rt = state.get("last_rt")
        self.last_rt = None if rt is None else float(rt)
        self._push_p()
