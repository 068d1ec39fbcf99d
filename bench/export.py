"""Generator inference in onnxruntime (CPU) beside our PyTorch generator, on the same weights and inputs.

    .venv/bin/python bench/export.py                      # paper-128, batch 8, 2 threads, 5 rounds
    .venv/bin/python bench/export.py --preset tiny --rounds 3

Exports the generator (noise 'const', psi 1, fixed batch) to ONNX in a temporary folder, checks the two
agree, then alternates one batch in PyTorch and one in onnxruntime per round (so both see the same machine
load) and reports the median seconds per batch of each as images/s. One JSON line: `flowergan` and
`onnxruntime` records plus the max abs difference. Export time is reported but not part of the timing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="paper-128")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    args = ap.parse_args()

    import onnxruntime as ort

    from flowergan.config import preset
    from flowergan.export import ExportSpec, export_module, export_network
    from flowergan.networks import build_networks

    torch.set_num_threads(args.threads)
    G, _ = build_networks(preset(args.preset), seed=0)
    G = G.eval().requires_grad_(False)
    spec = ExportSpec(batch=args.batch)
    module = export_module(G, spec)
    z = torch.from_numpy(np.random.RandomState(0).randn(args.batch, G.z_dim).astype(np.float32))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        export_network(G, spec, "onnx", Path(tmp) / "g.onnx")
        export_s = time.perf_counter() - t0
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = args.threads, 1
        sess = ort.InferenceSession(str(Path(tmp) / "g.onnx"), opts, providers=["CPUExecutionProvider"])
    feed = {"z": z.numpy()}

    def ours():
        with torch.no_grad():
            return module(z).numpy()

    def onnx():
        return sess.run(None, feed)[0]

    diff = float(np.abs(ours() - onnx()).max())
    for _ in range(args.warmup):
        ours(), onnx()
    times = {"flowergan": [], "onnxruntime": []}
    for _ in range(args.rounds):
        for name, fn in (("flowergan", ours), ("onnxruntime", onnx)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    out = {"what": "export-generator", "preset": args.preset, "batch": args.batch, "threads": args.threads,
           "rounds": args.rounds, "export_seconds": round(export_s, 1), "max_abs_diff": diff,
           "torch": torch.__version__, "onnxruntime": ort.__version__}
    for name, ts in times.items():
        med = statistics.median(ts)
        out[name] = {"img_per_s": round(args.batch / med, 3), "sec_per_batch_median": round(med, 4),
                     "sec_per_batch": [round(t, 4) for t in ts]}
    out["ratio_onnxruntime_over_flowergan"] = round(out["onnxruntime"]["img_per_s"] / out["flowergan"]["img_per_s"], 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
