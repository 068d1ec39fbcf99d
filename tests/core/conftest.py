"""The Triton kernels under Triton's interpreter, for the fused-kernel tests (CPU tensors)."""

import importlib
import os

import pytest


@pytest.fixture(scope="module")
def triton_kernels():
    """(bias_act_triton, upfirdn_triton) defined under TRITON_INTERPRET=1, with the dispatch allowing CPU tensors.

    Triton reads the variable when a kernel is defined, so it is set only while the modules are (re)loaded and
    restored at once; afterwards the modules are reloaded again as compiled definitions and the dispatch reset.
    """
    try:
        import triton  # noqa: F401
    except ImportError:
        pytest.skip("triton is not installed (`pip install triton`, part of the test extra)")
    from flowergan.ops import bias_act_triton, fused, upfirdn_triton

    old = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        mods = tuple(importlib.reload(m) for m in (bias_act_triton, upfirdn_triton))
    finally:
        if old is None:
            del os.environ["TRITON_INTERPRET"]
        else:
            os.environ["TRITON_INTERPRET"] = old
    fused.reset()
    fused.DEVICE_TYPES.add("cpu")
    yield mods
    fused.DEVICE_TYPES.discard("cpu")
    fused.reset()
    for m in mods:
        importlib.reload(m)
