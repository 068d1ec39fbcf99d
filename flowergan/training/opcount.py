"""Count the operator calls and matmul/conv FLOPs of a piece of work, forward and backward (a dispatch mode).

`torch.utils.flop_counter.FlopCounterMode` tracks modules with hooks that break `autograd.grad` (R1 and
path-length regularisation), so this counter reads only the dispatcher: every ATen call is one operator
call (on an accelerator, roughly one kernel launch), and FLOPs use torch's own per-op formulas.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

# Ops that only describe a tensor (no kernel runs): not counted as operator calls.
_VIEW_LIKE = {"view", "_unsafe_view", "reshape", "expand", "permute", "transpose", "t", "unsqueeze", "squeeze",
              "slice", "select", "as_strided", "alias", "detach", "_reshape_alias", "split", "unbind",
              "split_with_sizes", "chunk", "narrow", "diagonal", "view_as_real", "view_as_complex", "unfold",
              "lift_fresh", "_to_copy_noop"}


@dataclass
class OpCounts:
    """What a counted block did: operator calls by name (views excluded) and FLOPs by name."""

    calls: Counter = field(default_factory=Counter)
    flops: Counter = field(default_factory=Counter)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def total_flops(self) -> int:
        return sum(self.flops.values())

    def to_dict(self, top: int = 10) -> dict:
        return {"op_calls": self.total_calls, "flops": self.total_flops,
                "top_ops": dict(self.calls.most_common(top))}


class count_ops(TorchDispatchMode):  # noqa: N801 - used like a function: `with count_ops() as c:`
    """Context manager: `with count_ops() as c: work()`, then `c.counts` (an OpCounts)."""

    def __init__(self):
        super().__init__()
        self.counts = OpCounts()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func.overloadpacket
        name = packet.__name__
        if name not in _VIEW_LIKE:
            self.counts.calls[name] += 1
        if packet in flop_registry:
            self.counts.flops[name] += int(flop_registry[packet](*args, **kwargs, out_val=out))
        return out
