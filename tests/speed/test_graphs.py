"""Compiled main phases without graph breaks; R1's operator count independent of the channel count (#12)."""

from __future__ import annotations

import pytest
import torch

from flowergan.augment import real_sign_stats
from flowergan.benchmarking.training import RandomImages, _CyclicSampler
from flowergan.config import preset
from flowergan.training import losses
from flowergan.training.config import TrainConfig
from flowergan.training.loop import Trainer
from flowergan.training.opcount import count_ops
from flowergan.training.plan import plan_training

CFG = preset("tiny").replace(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)


def _trainer(cfg=CFG, **kw):
    tcfg = TrainConfig(**{**dict(batch=4, aug="ada", p=0.2, seed=3), **kw})
    return Trainer(plan_training(cfg, tcfg, device="cpu"), None, RandomImages(cfg, n=8, seed=1),
                   device=torch.device("cpu"),
                   sampler_cls=_CyclicSampler, sync_free=True)


@pytest.mark.slow
def test_main_phase_forwards_trace_as_one_graph_each():
    """G main (mapping, mixing, synthesis, augmentation, D, loss) and D main (G under no_grad, fakes and
    reals through augmentation and D, ADA's statistics) each trace to a single graph on the accelerator path."""
    t = _trainer()
    L = t.loss

    def g_main(z, c):
        img, _ = L.run_G(z, c)
        return losses.g_nonsaturating(L.run_D(img, c)).mean()

    def d_main(z, c, real):
        with torch.no_grad():
            img, _ = L.run_G(z, c)
        fake = losses.d_logistic_fake(L.run_D(img, c))
        real_logits = L.run_D(real, c)
        t.ada.accumulate(real_sign_stats(real_logits))
        return fake.mean() + losses.d_logistic_real(real_logits).mean()

    z, c, real = torch.randn(4, CFG.z_dim), torch.zeros(4, 0), torch.randn(4, 3, 16, 16)
    t.G.requires_grad_(True)
    e = torch._dynamo.explain(g_main)(z, c)
    assert (e.graph_count, e.graph_break_count) == (1, 0), e.break_reasons
    t.G.requires_grad_(False)
    t.D.requires_grad_(True)
    e = torch._dynamo.explain(d_main)(z, c, real)
    assert (e.graph_count, e.graph_break_count) == (1, 0), e.break_reasons


@pytest.mark.slow
@pytest.mark.parametrize("amp", ["off", "fp16"])
def test_compiled_networks_have_no_graph_breaks(amp):
    cfg = CFG if amp == "off" else CFG.replace(num_fp16_res=2, conv_clamp=256)
    t = _trainer(cfg)
    ws = torch.randn(4, t.G.num_ws, CFG.w_dim)
    e = torch._dynamo.explain(t.G.synthesis)(ws, noise_mode="random")
    assert e.graph_break_count == 0, e.break_reasons
    e = torch._dynamo.explain(t.D)(torch.randn(4, 3, 16, 16), torch.zeros(4, 0))
    assert e.graph_break_count == 0, e.break_reasons


def test_r1_operator_calls_do_not_grow_with_channels():
    """R1 (a double backward through D) costs the same number of operator calls at 8 and 64 channels: no
    per-channel loops anywhere in D's double backward."""

    def r1_calls(channels):
        cfg = CFG.replace(channel_base=channels * 16, channel_max=channels)
        t = _trainer(cfg, aug="none")
        real = t.next_real()
        t.batch_idx = 0
        with count_ops() as c:
            t.step(real=real, phases=["Dreg"])
        return c.counts

    small, large = r1_calls(8), r1_calls(64)
    assert small.total_flops < large.total_flops  # the widths really differ
    assert small.calls == large.calls
