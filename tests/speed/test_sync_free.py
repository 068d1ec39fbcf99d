"""A training step on the accelerator path never reads a device value on the host (issue #12).

The accelerator path (`Trainer(sync_free=True)`) is run on the CPU under a dispatch mode that fails on the
ops that are host synchronisations on a GPU (`_local_scalar_dense` behind `.item()`, `float()`, `bool()`;
ops whose output size depends on values) and a function mode that fails on host reads that are no-ops on the
CPU (`.cpu()`, `.tolist()`, `.numpy()`).
"""

from __future__ import annotations

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from flowergan.augment import AdaController, real_sign_stats
from flowergan.benchmarking.training import RandomImages, _CyclicSampler
from flowergan.config import preset
from flowergan.training.config import TrainConfig
from flowergan.training.loop import Trainer
from flowergan.training.plan import plan_training

CFG = preset("tiny").replace(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)

_SYNC_OPS = {torch.ops.aten._local_scalar_dense.default, torch.ops.aten.nonzero.default,
             torch.ops.aten.masked_select.default, torch.ops.aten.equal.default, torch.ops.aten.allclose.default,
             torch.ops.aten._unique2.default, torch.ops.aten.unique_consecutive.default}
_HOST_METHODS = {"cpu", "tolist", "numpy", "item", "__bool__", "__float__", "__int__", "__index__"}


class HostSync(AssertionError):
    pass


class _NoSyncDispatch(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in _SYNC_OPS:
            raise HostSync(f"{func} reads a device value on the host")
        return func(*args, **(kwargs or {}))


class _NoHostReads(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in _HOST_METHODS or (name == "to" and _to_host(args, kwargs or {})):
            raise HostSync(f"Tensor.{name} copies a device value to the host")
        return func(*args, **(kwargs or {}))


def _to_host(args, kwargs) -> bool:
    """`.to('cpu')` named as the host. On the CPU a move to the run's own device (`x.to(device)`, a
    torch.device) looks the same as a move to the host, so only the literal host name is caught here; the
    GPU script's sync-debug stage catches the rest."""
    dev = kwargs.get("device", args[1] if len(args) > 1 else None)
    return isinstance(dev, str) and torch.device(dev).type == "cpu"


class no_host_sync:  # noqa: N801 - used like a context manager function
    """Fail on any device-to-host read inside the block."""

    def __enter__(self):
        self._modes = [_NoHostReads(), _NoSyncDispatch()]
        for m in self._modes:
            m.__enter__()
        return self

    def __exit__(self, *exc):
        for m in reversed(self._modes):
            m.__exit__(*exc)
        return False


@pytest.mark.parametrize("read", [lambda t: t.item(), lambda t: bool(t > 0), lambda t: float(t),
                                  lambda t: t.cpu(), lambda t: t.tolist(), lambda t: t.to("cpu"),
                                  lambda t: t.reshape(1).nonzero(), lambda t: int(t.long())])
def test_the_guard_catches_host_reads(read):
    t = torch.tensor(1.5)
    with pytest.raises(HostSync), no_host_sync():
        read(t)
    with no_host_sync():  # device-side work passes
        (t * 2 + torch.randn([])).clamp(min=0).sign()


def _trainer(**kw):
    tcfg = TrainConfig(**{**dict(batch=4, r1_interval=2, pl_interval=2, aug="ada", ada_interval=2, p=0.1, seed=3),
                          **kw})
    return Trainer(plan_training(CFG, tcfg, device="cpu"), None, RandomImages(CFG, n=24, seed=1),
                   device=torch.device("cpu"),
                   sampler_cls=_CyclicSampler, sync_free=True)


def test_training_step_on_the_accelerator_path_never_syncs():
    t = _trainer()
    assert t.augment_pipe.sync_free and t.augment_pipe.geom_pad == "max"
    p0 = t.ada.p
    for _ in range(4):  # iterations 0..3: every phase (Gmain, Greg, Dmain, Dreg) and two ADA adjustments
        with no_host_sync():
            t.step()
    # the phases really ran and ADA really moved p (read after the step: the one host read, at log time)
    assert t.batch_idx == 4 and t.ada.pending == 0 and t.ada.last_rt is not None
    moves = (t.ada.p - p0) / (4 * 2 / (t.cfg.ada_kimg * 1000))  # two adjustments of +-batch*interval/speed
    assert round(moves) in (-2, 0, 2) and abs(moves - round(moves)) < 1e-6
    assert float(t.augment_pipe.p) == pytest.approx(t.ada.p, abs=1e-7)
    means = t.stats.means()
    assert {"Loss/G/loss", "Loss/G/reg", "Loss/D/loss_real", "Loss/r1_penalty"} <= set(means)


def test_training_step_with_style_mixing_off_and_no_augmentation_never_syncs():
    t = _trainer(aug="none", style_mixing=0.0)
    for _ in range(2):
        with no_host_sync():
            t.step()


@pytest.mark.parametrize("target", [0.0, 0.6, 1.0])
def test_ada_step_never_syncs_and_moves_p_by_the_papers_rule(target):
    """ADA's one step (on the device, no host read) gives the paper's p and r_t."""
    torch.manual_seed(1)
    ada = AdaController(target=target, speed_kimg=0.05, interval=1, p=0.3)
    expect = 0.3
    for k in range(12):
        logits = torch.randn(8, 1) + (0.8 if k % 3 else -0.8)
        with no_host_sync():
            ada.accumulate(real_sign_stats(logits))
            ada.end_minibatch()
            assert ada.step(8) is None
        rt = sum(1 if v > 0 else -1 for v in logits.flatten().tolist()) / 8  # the paper's r_t, by hand
        expect = min(max(expect + ((rt > target) - (rt < target)) * 8 / 50, 0.0), 1.0)
        assert ada.last_rt == pytest.approx(rt, abs=1e-12)
        assert ada.p == pytest.approx(expect, abs=1e-12)


def test_ada_device_step_with_no_reals_keeps_p():
    ada = AdaController(target=0.6, speed_kimg=1, interval=1, p=0.25)
    ada.end_minibatch()
    with no_host_sync():
        ada.step(4)
    assert ada.p == 0.25 and ada.last_rt is None
