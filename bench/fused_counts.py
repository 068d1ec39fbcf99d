"""Operator calls (kernel launches) and bytes saved for backward per phase with the fused kernels, on the CPU.

The fused path only runs on CUDA; its launch and memory structure does not depend on the device, so this runs
that path on the CPU with each Triton launch stood in for by ONE registered operator doing the same maths (so the
dispatcher counts one call per launch, as a GPU would see one kernel), and saves exactly what the kernel's
autograd Functions save. Prints `bench --what train --profile`'s JSON line (accelerator path, fp32) with
"fused" (bias_act and upfirdn2d) and, per phase, "alloc_calls": the allocations (empty, empty_like, ...)
among the operator calls, which launch no kernel on a GPU.

    python bench/fused_counts.py --preset auto-128 --batch 2 --conv-clamp 256          # the fused path
    python bench/fused_counts.py --preset auto-128 --batch 2 --conv-clamp 256 --plain  # the same, plain ops
Needs triton importable (not a GPU).
"""

from __future__ import annotations

import argparse
import json

import torch

from flowergan.ops import fused


@torch.library.custom_op("flowergan_bench::bias_act_fwd", mutates_args=["y"])
def _fwd(x: torch.Tensor, b: torch.Tensor | None, y: torch.Tensor, dim: int, act: int, alpha: float, gain: float,
         clamp: float, has_clamp: bool) -> None:
    v = x if b is None else x + b.reshape([-1 if d == dim else 1 for d in range(x.ndim)])
    if act == 1:
        v = torch.where(v > 0, v, v * alpha)
    v = v * gain
    y.copy_(v.clamp(-clamp, clamp) if has_clamp else v)


@torch.library.custom_op("flowergan_bench::bias_act_grad", mutates_args=["out"])
def _grad(g: torch.Tensor, y: torch.Tensor, out: torch.Tensor, act: int, alpha: float, gain: float, clamp: float,
          has_clamp: bool) -> None:
    from flowergan.ops.bias_act_triton import _grad_plain

    out.copy_(_grad_plain(g, y, dict(ACT=act, alpha=alpha, gain=gain, clamp=clamp, HAS_CLAMP=has_clamp)))


@torch.library.custom_op("flowergan_bench::upfirdn", mutates_args=["out"])
def _fir(x: torch.Tensor, f: torch.Tensor, out: torch.Tensor, up: list[int], down: list[int], pad: list[int],
         flip_filter: bool, gain: float) -> None:
    from flowergan.ops.upfirdn import upfirdn2d_reference

    out.copy_(upfirdn2d_reference(x, f, tuple(up), tuple(down), tuple(pad), flip_filter, gain))


def _fir_launch(grid):
    def launch(x, f, out, n_out, C, H, W, OH, OW, *strides, UPX, UPY, DOWNX, DOWNY, X0, Y0, FH, FW, FLIP, gain,
               **_):
        x1 = (OW - 1) * DOWNX + FW - W * UPX - X0  # the end padding that gives OW outputs
        y1 = (OH - 1) * DOWNY + FH - H * UPY - Y0
        _fir(x, f, out, [UPX, UPY], [DOWNX, DOWNY], [X0, x1, Y0, y1], not FLIP, gain)

    return launch


class _Launch:
    """Stands in for `kernel[grid](...)`: one registered operator call per launch."""

    def __init__(self, forward: bool):
        self.forward = forward

    def __getitem__(self, grid):
        return self._launch

    def _launch(self, *a, ACT, HAS_CLAMP, alpha, gain, clamp, HAS_BIAS=False, **_):
        if self.forward:  # (x, b_or_x, y, n, C, stride_c)
            x, b, y = a[0], a[1] if HAS_BIAS else None, a[2]
            dim = self.dim_of(x, a[4], a[5])
            _fwd(x, b, y, dim, ACT, alpha, gain, clamp, HAS_CLAMP)
        else:  # (g, y, out, n)
            _grad(a[0], a[1], a[2], ACT, alpha, gain, clamp, HAS_CLAMP)

    @staticmethod
    def dim_of(x: torch.Tensor, C: int, stride_c: int) -> int:
        return next(d for d in range(x.ndim) if x.shape[d] == C and (x.stride(d) == stride_c or C == 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="auto-128")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--conv-clamp", type=float, default=None, help="clamp (the fp16 runs' 256; default: none)")
    ap.add_argument("--plain", action="store_true", help="measure the plain ops instead (the CPU path)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    from flowergan.benchmarking.training import bench_train
    from flowergan.config import preset
    from flowergan.ops import bias_act_triton, upfirdn_triton
    from flowergan.training.opcount import OpCounts

    alloc = ("empty", "empty_like", "new_empty", "empty_strided", "new_empty_strided")
    to_dict = OpCounts.to_dict
    OpCounts.to_dict = lambda self, top=10: {**to_dict(self, top), "alloc_calls": sum(self.calls[k] for k in alloc)}
    if not a.plain:
        bias_act_triton._bias_act_fwd, bias_act_triton._bias_act_grad = _Launch(True), _Launch(False)
        upfirdn_triton._upfirdn_kernel = type("FirLaunch", (), {"__getitem__": lambda self, grid: _fir_launch(grid)})()
        fused.DEVICE_TYPES.add("cpu")
    cfg = preset(a.preset).replace(conv_clamp=a.conv_clamp)
    r = bench_train(cfg, batch=a.batch, device="cpu", repeats=1, warmup=0, amp="off", flops=False,
                    profile=True, sync_free=True)
    assert fused._state["disabled"] is None, fused._state["disabled"]
    r["fused"] = not a.plain
    print(json.dumps(r))


if __name__ == "__main__":
    main()
