"""The kernel rates behind docs/BENCHMARKS.md's notes on CPU precision and memory format: plain 3x3 conv2d
forward+backward (GFLOP/s) in fp32 and bf16, NCHW and channels-last, at three of paper-128's shapes, and the
strided transposed depthwise convolution that is the gradient of a decimating FIR (ms per call), and one Adam
step over G's parameters for `tiny` and `paper-128`, for-each against fused (ms per step).

    .venv/bin/python bench/cpu_kernels.py --threads 2

One JSON line per measurement (median of --repeats).
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F

from flowergan.benchmarking.tools import time_median
from flowergan.config import preset
from flowergan.networks import build_networks

CPU = torch.device("cpu")
CONV_SHAPES = [(512, 16), (256, 64), (128, 128)]  # (channels, resolution), batch 8


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.threads < 1 or args.repeats < 1:
        ap.error("--threads and --repeats must be at least 1")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for dtype in (torch.float32, torch.bfloat16):
        for fmt in ("nchw", "channels_last"):
            for c, res in CONV_SHAPES:
                mf = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
                x = torch.randn(8, c, res, res, dtype=dtype).contiguous(memory_format=mf).requires_grad_(True)
                w = torch.randn(c, c, 3, 3, dtype=dtype, requires_grad=True)
                sec, _ = time_median(lambda x=x, w=w: F.conv2d(x, w, padding=1).sum().backward(), CPU,
                                     warmup=1, repeats=args.repeats)
                print(json.dumps({"what": "conv2d_fwd_bwd", "dtype": str(dtype)[6:], "format": fmt,
                                  "shape": [8, c, res, res], "gflops": 3 * 2 * 8 * c * c * 9 * res * res / sec / 1e9}))
    # The adjoint of D's first decimating FIR pass: [8, 128, 130, 64] -> [8, 128, 130, 130], taps (1, 4), stride (1, 2).
    for dtype in (torch.float32, torch.bfloat16):
        y = torch.randn(8, 128, 130, 64, dtype=dtype).contiguous(memory_format=torch.channels_last)
        w = torch.randn(128, 1, 1, 4, dtype=dtype)
        sec, _ = time_median(lambda y=y, w=w: F.conv_transpose2d(y, w, stride=(1, 2), groups=128), CPU,
                             warmup=1, repeats=args.repeats)
        print(json.dumps({"what": "fir_adjoint_conv_transpose", "dtype": str(dtype)[6:], "format": "channels_last",
                          "shape": list(y.shape), "ms": sec * 1000}))

    # One Adam step over G's parameters (the training loop's optimiser, fused since it ran faster on CPUs).
    for name in ("tiny", "paper-128"):
        G, _ = build_networks(preset(name), seed=0)
        for p in G.parameters():
            p.grad = torch.randn_like(p)
        for fused in (False, True):
            opt = torch.optim.Adam(G.parameters(), lr=0.002, betas=(0.0, 0.99), eps=1e-8, fused=fused or None)
            sec, _ = time_median(opt.step, CPU, warmup=2, repeats=max(args.repeats, 5))
            print(json.dumps({"what": "adam_step", "preset": name, "fused": fused,
                              "params": sum(p.numel() for p in G.parameters()), "ms": sec * 1000}))


if __name__ == "__main__":
    main()
