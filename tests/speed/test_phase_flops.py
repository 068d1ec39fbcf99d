"""No weight gradients of D in the G phases, none of G in the D phases (issue #12), shown with FLOP counts.

The expectations are independent of the counter: D's weight-gradient FLOPs are written out from each
weighted layer's shapes (2 * output elements * weight fan-in, the same as its forward matmul/conv).
"""

from __future__ import annotations

import pytest
import torch

from flowergan.benchmarking.training import RandomImages, _CyclicSampler
from flowergan.config import preset
from flowergan.training.config import TrainConfig
from flowergan.training.loop import Trainer
from flowergan.training.opcount import count_ops
from flowergan.training.plan import plan_training

CFG = preset("tiny").replace(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)


@pytest.fixture(scope="module")
def trainer():
    tcfg = TrainConfig(batch=4, r1_interval=2, pl_interval=2, aug="none", seed=3, style_mixing=0.0)
    return Trainer(plan_training(CFG, tcfg, device="cpu"), None, RandomImages(CFG, n=24, seed=1),
                   device=torch.device("cpu"),
                   sampler_cls=_CyclicSampler)


def _phase(t, name, also_trainable=None, real=None):
    """OpCounts of one phase; `also_trainable`: a network made to require grad as well (the waste to avoid)."""
    t.batch_idx = 0
    orig = t._set_trainable

    def set_trainable(module):
        net = orig(module)
        if also_trainable is not None:
            also_trainable.requires_grad_(True)
        return net

    t._set_trainable = set_trainable
    try:
        torch.manual_seed(5)
        with count_ops() as c:
            t.step(real=real, phases=[name])
    finally:
        t._set_trainable = orig
        t.G.requires_grad_(False)
        t.D.requires_grad_(False)
    return c.counts


def _weight_grad_flops(net, run) -> int:
    """2 * out.numel() * fan_in summed over the layers holding a weight: each one's weight-gradient FLOPs."""
    total = [0]

    def hook(m, i, o):
        total[0] += 2 * o.numel() * m.weight[0].numel()

    hooks = [m.register_forward_hook(hook) for m in net.modules()
             if isinstance(getattr(m, "weight", None), torch.nn.Parameter)]
    try:
        with torch.no_grad():
            run()
    finally:
        for h in hooks:
            h.remove()
    return total[0]


def test_g_main_computes_no_weight_gradients_of_d(trainer):
    real = trainer.next_real()
    frozen = _phase(trainer, "Gmain", real=real).total_flops
    wasteful = _phase(trainer, "Gmain", also_trainable=trainer.D, real=real).total_flops
    img = torch.randn(4, CFG.img_channels, CFG.resolution, CFG.resolution)
    d_wgrad = _weight_grad_flops(trainer.D, lambda: trainer.D(img, torch.zeros(4, 0)))
    assert d_wgrad > 0
    # the phase as run costs exactly D's weight-gradient FLOPs less than one that computes them
    assert wasteful - frozen == d_wgrad


def test_d_phases_run_g_forward_only(trainer):
    real = trainer.next_real()
    full = _phase(trainer, "Dmain", real=real).total_flops
    torch.manual_seed(5)
    z = torch.randn([4, CFG.z_dim])
    with torch.no_grad(), count_ops() as g:
        img, _ = trainer.loss.run_G(z, torch.zeros(4, 0), main=True)
    # the same phase with G's output handed in costs exactly one G forward less: no G backward in a D phase
    orig = trainer.loss.run_G
    trainer.loss.run_G = lambda z, c, main=False: (img, None)
    try:
        without_g = _phase(trainer, "Dmain", real=real).total_flops
    finally:
        trainer.loss.run_G = orig
    assert g.counts.total_flops > 0 and full - without_g == g.counts.total_flops
    # and asking for G's gradients changes nothing (G runs under no_grad)
    assert _phase(trainer, "Dmain", also_trainable=trainer.G, real=real).total_flops == full
    # the R1 phase never touches G
    assert _phase(trainer, "Dreg", also_trainable=trainer.G, real=real).total_flops == \
        _phase(trainer, "Dreg", real=real).total_flops


def test_counter_counts_matmul_flops_and_calls():
    a, b = torch.randn(3, 5, requires_grad=True), torch.randn(5, 7)
    with count_ops() as c:
        (a @ b).sum().backward()
    # forward 2*3*5*7, backward input gradient 2*3*7*5 (b needs no gradient)
    assert c.counts.flops["mm"] == 4 * 3 * 5 * 7 and c.counts.calls["mm"] == 2
