"""count_saved: the bytes autograd keeps for backward, against hand-computed sizes; and in bench --profile."""

import torch
import torch.nn.functional as F

from flowergan.training.savedcount import count_saved


def test_counts_each_saved_storage_once_and_skips_parameters():
    w = torch.randn(8, 4, 3, 3, requires_grad=True)
    x = torch.randn(2, 4, 16, 16)
    with count_saved([w]) as s:
        h = F.conv2d(x, w, padding=1)  # saves x (2*4*16*16 floats) and w (a parameter: excluded)
        y = F.leaky_relu(h, 0.2)       # saves h (2*8*16*16)
        y.clamp(-1, 1)                 # saves y (2*8*16*16)
        y[:, :4].square()              # saves a view of y: no new storage
        h.exp()                        # exp saves its output: a new storage (2*8*16*16)
    assert s.nbytes == 4 * (2 * 4 * 16 * 16 + 3 * 2 * 8 * 16 * 16)
    assert s.tensors == 6  # x, w, h, y, the view of y, exp's output


def test_nothing_saved_without_grad_and_hooks_removed_after():
    x = torch.randn(3, 5, requires_grad=True)
    with torch.no_grad(), count_saved() as s:
        x.sin()
    assert s.nbytes == 0 and s.tensors == 0
    with count_saved() as s:
        pass
    x.sin()  # outside: not counted
    assert s.tensors == 0


def test_bench_profile_reports_saved_bytes_per_phase():
    from flowergan.benchmarking.training import bench_train
    from flowergan.config import preset

    cfg = preset("tiny").replace(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
    r = bench_train(cfg, batch=4, repeats=1, warmup=0, profile=True, flops=False)
    saved = r["phase_saved_mb"]
    assert set(saved) == {"Gmain", "Greg", "Dmain", "Dreg"} and all(v > 0 for v in saved.values())
    # at least the discriminator's input images ([N, 3, 16, 16] floats) are saved in the D phases
    assert saved["Dmain"] * 2**20 >= 4 * 3 * 16 * 16 * 4
