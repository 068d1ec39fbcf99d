"""Losses against hand-computed values and closed forms."""

import math

import torch

from flowergan.training import losses
from flowergan.training.ema import ema_beta, update_ema
from flowergan.training.opcount import count_ops
from flowergan.training.phases import make_phases


def test_logistic_losses_by_hand():
    x = torch.tensor([[0.0], [2.0], [-1.0]])
    torch.testing.assert_close(losses.g_nonsaturating(x), torch.tensor([[math.log(2)], [math.log(1 + math.exp(-2))],
                                                                        [math.log(1 + math.e)]]))
    torch.testing.assert_close(losses.d_logistic_fake(x), torch.tensor([[math.log(2)], [math.log(1 + math.e**2)],
                                                                        [math.log(1 + math.exp(-1))]]))
    torch.testing.assert_close(losses.d_logistic_real(x), losses.g_nonsaturating(x))


def test_r1_zero_for_constant_D_and_closed_form_for_linear_D():
    x = torch.randn(3, 2, 4, 4, requires_grad=True)
    const_logits = (x * 0).sum(dim=[1, 2, 3], keepdim=True) + 1.5
    torch.testing.assert_close(losses.r1_penalty(const_logits, x), torch.zeros(3))
    a = torch.randn(2, 4, 4)
    lin_logits = (x * a).sum(dim=[1, 2, 3]).unsqueeze(1)
    torch.testing.assert_close(losses.r1_penalty(lin_logits, x), torch.full((3,), float(a.square().sum())))


def test_path_length_closed_form_for_linear_generator():
    # img = (ws.mean over num_ws) @ A, reshaped: J^T y = A y / num_ws for each of the num_ws entries.
    N, num_ws, w_dim, C, H, W = 2, 3, 5, 1, 2, 2
    A = torch.randn(w_dim, C * H * W, dtype=torch.float64)
    ws = torch.randn(N, num_ws, w_dim, dtype=torch.float64, requires_grad=True)
    img = (ws.mean(dim=1) @ A).reshape(N, C, H, W)
    y = torch.randn(N, C, H, W, dtype=torch.float64)
    lengths = losses.path_lengths(img, ws, noise=y)
    g = (A @ y.reshape(N, -1).T).T / num_ws                   # [N, w_dim], same for every ws entry
    expect = g.square().sum(dim=1).sqrt()                    # sum over w_dim, mean over num_ws of equal terms
    torch.testing.assert_close(lengths, expect)


def test_path_length_penalty_running_mean():
    lengths = torch.tensor([1.0, 3.0])
    pen, mean = losses.path_length_penalty(lengths, torch.tensor(0.0), decay=0.01)
    torch.testing.assert_close(mean, torch.tensor(0.02))      # 0 + 0.01 * (2 - 0)
    torch.testing.assert_close(pen, (lengths - 0.02).square())
    pen, mean2 = losses.path_length_penalty(lengths, mean, decay=1.0)
    torch.testing.assert_close(mean2, torch.tensor(2.0))


def test_path_length_gradient_includes_the_running_mean_term():
    # Linear G: img = (ws.mean over num_ws) @ A, so l_i = ||A y_i|| / K (K = num_ws) and, with the stored
    # mean a a constant and m = a + d * (mean(l) - a):  P = mean_i (l_i - m)^2,
    #   dP/dl_j = 2/N * (l_j - m) - 2/N * d/N * sum_i (l_i - m),   dl_j/dA = (A y_j) y_j^T / (K^2 l_j).
    torch.manual_seed(0)
    N, K, w_dim, C, H, W = 4, 3, 5, 1, 2, 2
    d, a = 0.3, torch.tensor(0.7, dtype=torch.float64)
    A = torch.randn(w_dim, C * H * W, dtype=torch.float64, requires_grad=True)
    ws = torch.randn(N, K, w_dim, dtype=torch.float64, requires_grad=True)
    y = torch.randn(N, C, H, W, dtype=torch.float64)
    img = (ws.mean(dim=1) @ A).reshape(N, C, H, W)
    pen, m = losses.path_length_penalty(losses.path_lengths(img, ws, noise=y), a, decay=d)
    (grad_A,) = torch.autograd.grad(pen.mean(), A)

    Y = y.reshape(N, -1)                                       # [N, C*H*W]
    g = (A.detach() @ Y.T).T                                   # [N, w_dim] = A y_j
    lengths = g.norm(dim=1) / K
    m_expect = a + d * (lengths.mean() - a)
    dP_dl = 2 / N * (lengths - m_expect) - 2 / N * d / N * (lengths - m_expect).sum()
    expect = sum(dP_dl[j] * torch.outer(g[j], Y[j]) / (K**2 * lengths[j]) for j in range(N))
    torch.testing.assert_close(m.detach(), m_expect)
    torch.testing.assert_close(grad_A, expect)
    # Without the running-mean term the gradient differs by a relative amount of order d: the test can fail.
    without = sum(2 / N * (lengths[j] - m_expect) * torch.outer(g[j], Y[j]) / (K**2 * lengths[j]) for j in range(N))
    assert (without - expect).abs().max() > 1e-3 * expect.abs().max()


def test_ema_half_life_and_update():
    # after ema_kimg*1000 images at this beta, the old weights' share is exactly 1/2
    b = ema_beta(batch=32, ema_kimg=10, cur_nimg=10**9, rampup=0.05)
    assert abs(b ** (10_000 / 32) - 0.5) < 1e-12
    assert ema_beta(32, 10, cur_nimg=1000, rampup=0.05) == 0.5 ** (32 / 50)  # ramp-up: half-life 0.05 * 1000
    src, ema = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    for m, v in ((src, 1.0), (ema, 0.0)):  # buffers, like w_avg and the const noise: copied, not averaged
        m.register_buffer("w_avg", torch.full([3], v))
        m.register_buffer("noise", torch.full([1, 4], v + 2))
    before = ema.weight.detach().clone()
    with count_ops() as c:
        update_ema(ema, src, beta=0.9)
    torch.testing.assert_close(ema.weight, src.weight.detach() + 0.9 * (before - src.weight.detach()))
    assert ema.w_avg.tolist() == [1.0] * 3 and ema.noise.tolist() == [[3.0] * 4]
    assert c.counts.total_calls == 2  # one foreach lerp for the parameters, one foreach copy for the buffers


def test_lazy_phases_and_ratios():
    ph = {p.name: p for p in make_phases(16, 4)}
    assert ph["Greg"].interval == 4 and ph["Dreg"].interval == 16 and ph["Gmain"].interval == 1
    assert ph["Gmain"].lr_ratio == 4 / 5 and ph["Dmain"].lr_ratio == 16 / 17
    assert [p.name for p in make_phases(0, 0)] == ["Gboth", "Dboth"]
