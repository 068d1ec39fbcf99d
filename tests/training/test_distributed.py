"""Two gloo processes on the CPU compute the same averaged gradients and updates as one process with the
same total batch (minibatch-stddev groups kept inside each process's share)."""

import sys

import pytest
import torch
import torch.multiprocessing as mp

from flowergan.benchmarking.training import RandomImages, _CyclicSampler
from flowergan.config import preset
from flowergan.training.config import TrainConfig
from flowergan.training.distributed import DistInfo, reduce_and_scrub_grads
from flowergan.training.opcount import count_ops

CFG = preset("tiny").replace(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16, mbstd_group=4)
TOTAL = 8


def _params_with_bad_grads():
    vals = [[float("nan"), float("inf"), -float("inf"), 2e5, -3.5e5, 0.25], [1.0, float("nan")], [-float("inf")]]
    params = [torch.nn.Parameter(torch.zeros(len(v))) for v in vals]
    for p, v in zip(params, vals):
        p.grad = torch.tensor(v)
    for i in range(5):  # finite gradients: unchanged
        params.append(torch.nn.Parameter(torch.zeros(2, 2)))
        params[-1].grad = torch.full([2, 2], float(i))
    params.append(torch.nn.Parameter(torch.zeros(2)))  # no gradient: left alone
    return params


@pytest.mark.parametrize("flat", [False, True])
def test_scrub_replaces_only_non_finite_gradients(flat):
    """The official loop's nan_to_num(nan=0, posinf=1e5, neginf=-1e5): finite values stay, even beyond 1e5.
    The flat path (accelerators) does it in a fixed number of operator calls."""
    params = _params_with_bad_grads()
    with count_ops() as c:
        reduce_and_scrub_grads(params, DistInfo(), sync_free=flat)
    assert [p.grad.tolist() if p.grad is not None else None for p in params] == [
        [0.0, 1e5, -1e5, 2e5, -3.5e5, 0.25], [1.0, 0.0], [-1e5]] + [[[float(i)] * 2] * 2 for i in range(5)] + [None]
    # flat: one cat, one scrub, one foreach copy back; else one in-place scrub per gradient (8 of them)
    assert dict(c.counts.calls) == ({"cat": 1, "nan_to_num_": 1, "_foreach_copy_": 1} if flat else {"nan_to_num_": 8})


def _inputs():
    g = torch.Generator().manual_seed(7)
    real = torch.rand(TOTAL, 3, 16, 16, generator=g) * 2 - 1
    z = torch.randn(4, TOTAL, CFG.z_dim, generator=g)  # one latent batch per phase slot
    return real, z


def _run(rank: int, world: int, init_file: str, out_file: str) -> None:
    torch.set_num_threads(1)
    if world > 1:
        torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    from flowergan.training.loop import Trainer
    from flowergan.training.plan import plan_training

    tcfg = TrainConfig(batch=TOTAL, aug="none", style_mixing=0.0, noise_mode="const", seed=0)
    data = RandomImages(CFG, n=16)
    t = Trainer(plan_training(CFG, tcfg, device="cpu", world_size=world), None, data, device=torch.device("cpu"),
                info=DistInfo(rank, world, rank),
                sampler_cls=_CyclicSampler)
    real, z = _inputs()
    if world == 1:
        # interleave so that mbstd groups (positions p, p+2, ...) hold samples 0-3 and 4-7, as on 2 ranks
        order = torch.tensor([0, 4, 1, 5, 2, 6, 3, 7])
        real, z = real[order], z[:, order]
    else:
        share = slice(rank * TOTAL // world, (rank + 1) * TOTAL // world)
        real, z = real[share], z[:, share]
    c = torch.zeros(real.shape[0], 0)
    gen_c = torch.zeros(4, real.shape[0], 0)
    t.step(real=(real, c), gen_z=z, gen_c=gen_c, phases=["Gmain", "Dmain"])
    if rank == 0:
        torch.save({"G_grad": {n: p.grad.clone() for n, p in t.G.named_parameters() if p.grad is not None},
                    "D_grad": {n: p.grad.clone() for n, p in t.D.named_parameters() if p.grad is not None},
                    "G": {n: p.detach().clone() for n, p in t.G.named_parameters()},
                    "D": {n: p.detach().clone() for n, p in t.D.named_parameters()}}, out_file)
    if world > 1:
        torch.distributed.barrier()  # nobody tears down while a peer is still saving or reducing
        torch.distributed.destroy_process_group()


@pytest.mark.skipif(sys.platform == "win32", reason="gloo file store")
def test_two_process_gloo_matches_single_process(tmp_path):
    single = tmp_path / "single.pt"
    _run(0, 1, "", str(single))
    multi = tmp_path / "multi.pt"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_run, args=(r, 2, str(tmp_path / "pg"), str(multi))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0, f"worker exited with {p.exitcode} (see the captured stderr above)"
    a = torch.load(single, weights_only=True)
    b = torch.load(multi, weights_only=True)
    for group in ("G_grad", "D_grad", "G", "D"):
        assert a[group].keys() == b[group].keys() and a[group], group
        for k in a[group]:
            x, y = a[group][k], b[group][k]
            rel = float((x - y).abs().max() / (x.abs().max() + 1e-12))
            assert rel <= 1e-5, f"{group}/{k}: relative difference {rel:.2e}"
