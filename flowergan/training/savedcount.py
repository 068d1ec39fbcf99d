"""Count the bytes autograd keeps for backward during a piece of work (device-independent memory figure).

Every tensor autograd saves passes through `torch.autograd.graph.saved_tensors_hooks`; tensors that share
storage (a view, the same activation saved by two ops) count once, at their storage's size. Storages of
`exclude` tensors (the networks' parameters and buffers, which live anyway) are left out.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class count_saved:  # noqa: N801 - used like a function: `with count_saved(params) as s:`
    """Context manager: `with count_saved(model.parameters()) as s: work()`, then `s.nbytes` (unique storage
    bytes saved) and `s.tensors` (tensors saved, shared storage counted each time)."""

    def __init__(self, exclude: Iterable[torch.Tensor] = ()):
        self._exclude = {t.untyped_storage().data_ptr() for t in exclude}
        self._storages: dict[tuple, torch.UntypedStorage] = {}  # held so no address is reused while counting
        self.tensors = 0
        self.nbytes = 0
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        self.tensors += 1
        if t.layout == torch.strided and t.device.type != "meta":
            s = t.untyped_storage()
            if s.data_ptr() not in self._exclude:
                self._storages.setdefault((t.device, s.data_ptr()), s)
        return t

    def __enter__(self) -> count_saved:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)
        self.nbytes = sum(s.nbytes() for s in self._storages.values())
        self._storages = {}
