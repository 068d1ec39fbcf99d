"""AdaController: direction and exact rate of p updates, clamping, r_t, reduction hook, checkpoint state.
(tests/augment/test_ada_owner.py: the rule step by step against the formula written out, and p's one writer.)"""

from __future__ import annotations

import pytest
import torch

from flowergan.augment import AdaController, AugmentPipe, real_sign_stats


def _logits(n_pos, n_neg):
    return torch.cat([torch.full((n_pos, 1), 2.5), torch.full((n_neg, 1), -0.7)])


def _update(ada, logits):
    ada.accumulate(real_sign_stats(logits))


def _step(ada, n, **kw):
    ada.step(n, **kw)
    return ada.last_rt


def test_p_rises_at_the_exact_rate_when_reals_score_too_positive():
    ada = AdaController()  # target 0.6, 500 kimg, interval 4
    pipe = AugmentPipe.from_preset("bgc", p=ada.current_p)
    batch = 32
    for k in range(1, 6):
        for _ in range(4):
            assert not ada.ready
            _update(ada, _logits(28, 4))  # r_t = (28 - 4) / 32 = 0.75 > 0.6
            _update(ada, _logits(28, 4))  # a second D pass in the same iteration (e.g. R1) does not count
            ada.end_minibatch()
        assert ada.ready
        rt = _step(ada, batch * 4)
        assert rt == pytest.approx(0.75)
        assert ada.p == pytest.approx(k * batch * 4 / 500_000, rel=1e-12)
        assert float(pipe.p) == pytest.approx(ada.p, rel=1e-6)
        assert not ada.ready


def test_p_falls_when_reals_score_low_and_never_below_zero():
    ada = AdaController(p=0.0003)
    for expected in (0.0003 - 128 / 500_000, 0.0):
        for _ in range(4):
            _update(ada, _logits(16, 16))  # r_t = 0 < 0.6
        assert _step(ada, 128) == pytest.approx(0.0)
        assert ada.p == pytest.approx(max(expected, 0.0), abs=1e-15)
    assert ada.p == 0.0


def test_no_move_at_target_upper_clamp_and_custom_speed():
    ada = AdaController(p=0.5, target=0.5)
    _update(ada, _logits(3, 1))  # r_t = 0.5 exactly
    ada.step(1000)
    assert ada.p == 0.5
    ada = AdaController(p=0.999, speed_kimg=1)
    _update(ada, _logits(4, 0))
    ada.step(500)  # +0.5 -> clamped at p_max = 1
    assert ada.p == 1.0
    ada = AdaController(p=0.999, speed_kimg=1, p_max=None)  # the paper clamps at 0 only
    _update(ada, _logits(4, 0))
    ada.step(500)
    assert ada.p == pytest.approx(1.499)


def test_sign_of_zero_logits_counts_as_zero_and_empty_step_is_a_no_op():
    ada = AdaController(p=0.2)
    _update(ada, torch.tensor([[0.0], [1.0], [-3.0], [2.0]]))
    assert _step(ada, 4) == pytest.approx(0.25)
    assert _step(ada, 4) is None and ada.p == pytest.approx(0.2 - 4 / 500_000)


def test_reduce_hook_sums_statistics_across_processes():
    # two "ranks": this one saw r_t = 1, the other one r_t = 0 on twice as many images -> global 1/3
    ada = AdaController()
    _update(ada, _logits(8, 0))
    other = torch.tensor([0.0, 16.0])  # [sum of signs, count] from the other rank
    assert torch.equal(ada.stats_tensor(), torch.tensor([8.0, 8.0]))

    def all_reduce(t):  # in place, like torch.distributed.all_reduce
        t.add_(other)

    rt = _step(ada, 24, reduce=all_reduce)
    assert rt == pytest.approx(8 / 24)
    assert ada.p == 0.0  # moved down, clamped
    assert torch.equal(ada.stats_tensor(), torch.zeros(2))  # reset after the step
    _update(ada, _logits(4, 0))
    assert _step(ada, 4, reduce=lambda t: t * 0 + torch.tensor([3.0, 4.0])) == pytest.approx(0.75)  # returning form


def test_state_dict_round_trip_restores_p_accumulator_and_pipe():
    ada = AdaController(p=0.125)
    _update(ada, _logits(5, 1))
    ada.end_minibatch()
    state = ada.state_dict()
    assert state == {"p": 0.125, "sign_sum": 4.0, "count": 6.0, "pending": 1, "last_rt": None}
    ada2 = AdaController()
    pipe2 = AugmentPipe.from_preset("bgc", p=ada2.current_p)
    ada2.load_state_dict(state)
    assert float(pipe2.p) == 0.125 and ada2.pending == 1
    assert _step(ada2, 6) == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="lacks"):
        ada2.load_state_dict({})


def test_init_clamps_p_and_validates():
    assert AdaController(p=0.3).p == 0.3 and AdaController(p=-1).p == 0.0 and AdaController(p=2).p == 1.0
    with pytest.raises(ValueError, match="target"):
        AdaController(target=1.5)
    with pytest.raises(ValueError, match="interval"):
        AdaController(interval=0)
