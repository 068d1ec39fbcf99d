"""Run training steps with CUDA's sync debug mode set to "error": any host synchronisation inside a step
raises (issue #12). Prints one JSON line: {"bench": "sync_check", "ok": ..., "error": ...}.

    python bench/sync_check.py --device cuda --preset lite-128 --batch 32
    python bench/sync_check.py --device cpu --preset tiny --batch 4      # smoke run of the same code path
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from flowergan.benchmarking.training import RandomImages, _CyclicSampler
from flowergan.config import preset
from flowergan.training.config import TrainConfig
from flowergan.training.loop import Trainer
from flowergan.training.plan import plan_training


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--preset", default="lite-128")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--amp", default="auto")
    ap.add_argument("--steps", type=int, default=16, help="checked steps (16 covers every phase and ADA)")
    a = ap.parse_args()
    dev = torch.device(a.device)
    cfg = preset(a.preset)
    tcfg = TrainConfig(batch=a.batch, aug="ada", ada_interval=4, p=0.2, device=a.device, amp=a.amp, seed=0)
    t = Trainer(plan_training(cfg, tcfg, device=dev), None, RandomImages(cfg, n=max(4 * a.batch, 64)), device=dev,
                sampler_cls=_CyclicSampler, sync_free=True)
    rec = {"bench": "sync_check", "device": a.device, "preset": a.preset, "batch": a.batch,
           "amp": t.resolved.amp, "steps": a.steps, "ok": False, "error": None}
    if dev.type == "cuda":
        rec["device_name"] = torch.cuda.get_device_name(dev)
    for _ in range(2):  # warm-up (cuDNN autotuning, lazy allocations) outside the check
        t.step()
    t.batch_idx = 0  # start at an iteration where every phase is due
    t0 = time.perf_counter()
    try:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
            torch.cuda.set_sync_debug_mode("error")
        for _ in range(a.steps):
            t.step()
        rec["ok"] = True
    except RuntimeError as e:  # the sync-debug error names the synchronising call
        rec["error"] = str(e).splitlines()[0][:500]
    finally:
        if dev.type == "cuda":
            torch.cuda.set_sync_debug_mode("default")
            torch.cuda.synchronize(dev)
    rec["seconds"] = time.perf_counter() - t0
    print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
