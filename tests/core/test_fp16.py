"""Mixed precision on the CPU: the official fp16 scheme (float16 in the highest-resolution blocks, conv
clamping) and bf16 autocast, so their dtype plumbing is tested without a GPU.

On a real run the blocks only switch to float16 on CUDA; here the CPU is added to the fp16 device types so the
dtype plumbing (weights, biases, filters, skips, toRGB, minibatch-stddev) is exercised without a GPU.
"""

import pytest
import torch

from flowergan.benchmarking.training import RandomImages, _CyclicSampler
from flowergan.config import preset
from flowergan.networks import build_networks, layers
from flowergan.training.config import TrainConfig
from flowergan.training.loop import Trainer
from flowergan.training.plan import plan_training

CFG32 = preset("tiny").replace(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
CFG16 = CFG32.replace(num_fp16_res=2, conv_clamp=256)


@pytest.fixture
def fp16_on_cpu(monkeypatch):
    monkeypatch.setattr(layers, "FP16_DEVICE_TYPES", {"cuda", "cpu"})


def _rel(a, b):
    a, b = a.detach(), b.detach()
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("arch", ["skip", "resnet"])
def test_fp16_blocks_match_fp32(fp16_on_cpu, arch):
    cfg16 = CFG16.replace(g_architecture=arch, d_architecture=arch)
    G16, D16 = build_networks(cfg16, seed=0)
    G32, D32 = build_networks(cfg16.replace(num_fp16_res=0), seed=0)
    G32.load_state_dict(G16.state_dict())
    D32.load_state_dict(D16.state_dict())
    assert G16.synthesis.b16.use_fp16 and not G16.synthesis.b4.use_fp16
    z = torch.randn(4, 16)
    c = torch.zeros(4, 0)
    img16, img32 = G16(z, c, noise_mode="const"), G32(z, c, noise_mode="const")
    assert img16.dtype == torch.float32 and img16.shape == img32.shape
    assert _rel(img16, img32) < 1e-2  # float16 has ~3 decimal digits
    logits16, logits32 = D16(img32, c), D32(img32, c)
    assert logits16.dtype == torch.float32
    assert _rel(logits16, logits32) < 1e-2


def test_fp16_backward_gives_fp32_grads(fp16_on_cpu):
    G, D = build_networks(CFG16, seed=0)
    img = G(torch.randn(4, 16), torch.zeros(4, 0))
    D(img, torch.zeros(4, 0)).sum().backward()
    for net in (G, D):
        for name, p in net.named_parameters():
            if p.grad is not None:
                assert p.grad.dtype == torch.float32, name
                assert torch.isfinite(p.grad).all(), name


def test_fp16_training_step_all_phases(fp16_on_cpu):
    """Every phase (G main, path length, D main, R1 with augmentation) runs in fp16 and moves the weights."""
    tcfg = TrainConfig(batch=4, r1_interval=1, pl_interval=1, aug="fixed", p=0.5, seed=0)
    t = Trainer(plan_training(CFG16, tcfg, device="cpu"), None, RandomImages(CFG16, n=8),
                device=torch.device("cpu"), sampler_cls=_CyclicSampler)
    before = {k: v.clone() for k, v in t.G.state_dict().items()}
    stats = t.step()
    for key in ("Loss/G/loss", "Loss/D/loss_fake", "Loss/D/loss_real", "Loss/pl_penalty", "Loss/r1_penalty"):
        assert key in stats and torch.isfinite(stats[key]).all(), key
    changed = [k for k, v in t.G.state_dict().items() if v.dtype.is_floating_point and not torch.equal(v, before[k])]
    assert any("b16" in k for k in changed)  # an fp16 block learned
    assert all(p.dtype == torch.float32 for p in t.G.parameters())


def test_bf16_autocast_training_step_all_phases():
    """`--amp bf16` autocasts G's synthesis and D; every phase, including both double backwards, must run."""
    tcfg = TrainConfig(batch=4, r1_interval=1, pl_interval=1, aug="fixed", p=0.5, seed=0)
    t = Trainer(plan_training(CFG32, tcfg, device="cpu"), None, RandomImages(CFG32, n=8),
                device=torch.device("cpu"), sampler_cls=_CyclicSampler)
    t.loss.autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # what amp='bf16' sets up on CUDA
    before = [p.clone() for p in t.D.parameters()]
    stats = t.step()
    for key in ("Loss/G/loss", "Loss/D/loss_fake", "Loss/D/loss_real", "Loss/pl_penalty", "Loss/r1_penalty"):
        assert key in stats and torch.isfinite(stats[key]).all(), key
    assert all(p.dtype == torch.float32 for p in t.D.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, t.D.parameters()))


@pytest.mark.parametrize("phase", ["Gmain", "Greg", "Dmain", "Dreg"])
def test_bf16_autocast_gradients_match_fp32(phase):
    """bf16 autocast computes the fp32 step to bf16 accuracy. From the same weights, inputs and random draws,
    each phase's weight gradient under autocast is compared with fp32's, against a noise floor: the change
    that merely rounding every weight to bf16 (fp32 arithmetic otherwise) makes to the fp32 gradient. At
    initialisation that floor is large (~3-11%: the GAN gradients cancel a lot), so autocast may not be
    judged by a fixed tolerance, but it must stay within a small multiple of it."""
    tcfg = TrainConfig(batch=8, r1_interval=1, pl_interval=1, aug="fixed", p=0.5, seed=0, style_mixing=0.9)
    t = Trainer(plan_training(CFG32, tcfg, device="cpu"), None, RandomImages(CFG32, n=8),
                device=torch.device("cpu"), sampler_cls=_CyclicSampler)
    real, c = t.next_real()
    z = torch.randn(8, CFG32.z_dim, generator=torch.Generator().manual_seed(3))
    module = "G" if phase.startswith("G") else "D"
    pl_mean = t.loss.pl_mean.clone()

    def grads(autocast=None):
        t.loss.autocast = autocast
        t.loss.pl_mean.copy_(pl_mean)  # Greg updates its running mean: every run starts from the same one
        net = t._set_trainable(module)
        net.zero_grad(set_to_none=True)
        torch.manual_seed(7)  # the same noise, mixing cut-offs and augmentations in every run
        t.loss.accumulate(phase, real, c, z, c, gain=1)
        net.requires_grad_(False)
        return torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None])

    g32 = grads()
    assert torch.equal(grads(), g32)  # deterministic: any difference below comes from the precision
    g16 = grads(lambda: torch.autocast("cpu", dtype=torch.bfloat16))
    with torch.no_grad():
        for p in [*t.G.parameters(), *t.D.parameters()]:
            p.copy_(p.to(torch.bfloat16).float())
    floor = _rel(grads(), g32)
    rel = _rel(g16, g32)
    print(f"{phase}: bf16 autocast {rel:.3f}, bf16 weights {floor:.3f}")  # the figures in docs (pytest -s)
    assert 0 < floor < 0.3 and g16.shape == g32.shape
    assert rel < 2.5 * floor, f"{phase}: bf16 autocast moves the gradient by {rel:.3f}, bf16 weights by {floor:.3f}"
