"""When bias_act takes the fused kernel, and that every failure falls back to the plain formula with one warning.

A stand-in kernels module replaces `bias_act_triton` here, so these tests need no triton.
"""

import logging
import math
import sys
import types

import pytest
import torch

from flowergan.ops import fused
from flowergan.ops.bias_act import bias_act, bias_act_reference, bias_lrelu_


@pytest.fixture(autouse=True)
def _fresh_dispatch(monkeypatch):
    monkeypatch.delenv(fused.ENV, raising=False)
    fused.reset()
    yield
    fused.reset()


def _stand_in(kernel):
    """A kernels module whose bias_act_triton is `kernel` (default: the plain formula), counting its calls."""
    mod = types.SimpleNamespace(calls=0, is_dense=lambda x: x.is_contiguous())

    def bias_act_triton(x, b, dim, act, alpha, gain, clamp, inplace=False):
        mod.calls += 1
        return kernel(x, b, dim, act, alpha, gain, clamp)

    mod.bias_act_triton = bias_act_triton
    return mod


def _on_cpu(monkeypatch, mod):
    """Let CPU tensors take the fused path, with `mod` as the kernels."""
    monkeypatch.setattr(fused, "DEVICE_TYPES", {"cuda", "cpu"})
    fused._state["modules"]["bias_act"] = mod


def _warnings(caplog):
    return [r for r in caplog.records if r.name == fused.__name__ and r.levelno == logging.WARNING]


def _x():
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 3, 4, 4, generator=g), torch.randn(3, generator=g)


def test_cpu_tensors_keep_the_plain_formula(monkeypatch, caplog):
    def boom(*a, **k):
        raise AssertionError("the CPU path must not consult the kernels")

    monkeypatch.setitem(fused._CHECKS, "bias_act", boom)
    x, b = _x()
    for act, gain, clamp in (("lrelu", None, None), ("linear", None, 0.5), ("relu", 2.0, 1.0), ("tanh", None, None)):
        y = bias_act(x, b, act=act, gain=gain, clamp=clamp)
        spec_gain = {"lrelu": math.sqrt(2), "relu": 2.0}.get(act, 1.0)
        expected = bias_act_reference(x, b, 1, act, 0.2 if act == "lrelu" else 0.0, spec_gain, clamp)
        assert torch.equal(y, expected)
    h = x.clone()
    y = bias_lrelu_(h, b, clamp=0.7)
    assert torch.equal(y, bias_act_reference(x, b, 1, "lrelu", 0.2, 1.0, 0.7))
    assert not _warnings(caplog)


def test_the_kernel_runs_once_checked(monkeypatch, caplog):
    mod = _stand_in(bias_act_reference)
    _on_cpu(monkeypatch, mod)
    x, b = _x()
    bias_act(x, b, act="lrelu")
    after_check = mod.calls
    assert after_check > 1  # the self-check, then the call itself
    bias_act(x, b, act="linear", clamp=1.0)
    assert mod.calls == after_check + 1  # checked once per device and dtype
    bias_act(x, b, act="tanh")  # not a piecewise-linear activation: plain path
    assert mod.calls == after_check + 1
    assert not _warnings(caplog)


def test_env_variable_turns_the_kernels_off(monkeypatch, caplog):
    mod = _stand_in(bias_act_reference)
    _on_cpu(monkeypatch, mod)
    monkeypatch.setenv(fused.ENV, "0")
    x, b = _x()
    assert torch.equal(bias_act(x, b, act="lrelu"), bias_act_reference(x, b, 1, "lrelu", 0.2, math.sqrt(2), None))
    assert mod.calls == 0 and not _warnings(caplog)


def test_a_failing_kernel_falls_back_with_one_warning(monkeypatch, caplog):
    def flaky(*args):
        if mod.calls > 3:  # passes the self-check (3 cases), then fails
            raise RuntimeError("simulated launch failure")
        return bias_act_reference(*args)

    mod = _stand_in(flaky)
    _on_cpu(monkeypatch, mod)
    x, b = _x()
    expected = bias_act_reference(x, b, 1, "lrelu", 0.2, math.sqrt(2), 256.0)
    for _ in range(3):
        assert torch.equal(bias_act(x, b, act="lrelu", clamp=256.0), expected)
    assert mod.calls == 4  # after the failure, the kernel is not tried again
    (warning,) = _warnings(caplog)
    assert "simulated launch failure" in warning.getMessage() and fused.ENV in warning.getMessage()


def test_a_wrong_kernel_fails_the_self_check(monkeypatch, caplog):
    mod = _stand_in(lambda *args: bias_act_reference(*args) * 1.01)
    _on_cpu(monkeypatch, mod)
    x, b = _x()
    h = x.clone()
    assert torch.equal(bias_lrelu_(h, b), bias_act_reference(x, b, 1, "lrelu", 0.2, 1.0, None))
    assert torch.equal(bias_act(x, b, act="lrelu"), bias_act_reference(x, b, 1, "lrelu", 0.2, math.sqrt(2), None))
    (warning,) = _warnings(caplog)
    assert "self-check" in warning.getMessage() and "differs from the plain formula" in warning.getMessage()


def test_missing_triton_falls_back_with_one_warning(monkeypatch, caplog):
    monkeypatch.setattr(fused, "DEVICE_TYPES", {"cuda", "cpu"})
    monkeypatch.setitem(sys.modules, "flowergan.ops.bias_act_triton", None)  # the import raises ImportError
    x, b = _x()
    for _ in range(2):
        assert torch.equal(bias_act(x, b, act="lrelu"), bias_act_reference(x, b, 1, "lrelu", 0.2, math.sqrt(2), None))
    (warning,) = _warnings(caplog)
    assert "triton is not importable" in warning.getMessage()


def test_a_failing_fir_kernel_falls_back_with_one_warning(monkeypatch, caplog):
    from flowergan.ops.upfirdn import setup_filter, upfirdn2d, upfirdn2d_reference

    def upfirdn2d_triton(*args):
        raise RuntimeError("simulated FIR launch failure")

    monkeypatch.setattr(fused, "DEVICE_TYPES", {"cuda", "cpu"})
    monkeypatch.setitem(fused._CHECKS, "upfirdn2d", lambda *a: None)  # the check passes, the kernel fails later
    fused._state["modules"]["upfirdn2d"] = types.SimpleNamespace(upfirdn2d_triton=upfirdn2d_triton)
    x, f = torch.randn(1, 2, 6, 6), setup_filter([1, 3, 3, 1], separable=True)
    expected = upfirdn2d_reference(x, f, (1, 1), (2, 2), (1, 1, 1, 1))
    for _ in range(2):
        assert torch.equal(upfirdn2d(x, f, down=2, padding=1), expected)
    (warning,) = _warnings(caplog)
    assert "simulated FIR launch failure" in warning.getMessage()
