"""`flowergan bench --what train`: time each training phase separately and combine them with the lazy
intervals (G main 1, G reg 1/4, D main 1, D reg 1/16), plus FLOPs per phase, the achieved TFLOP/s against a
plain matmul measured in the same run, and (--profile) operator calls per phase."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from flowergan.benchmarking import tools as benchtools
from flowergan.config import ModelConfig
from flowergan.training.config import TrainConfig
from flowergan.training.distributed import DistInfo


class RandomImages:
    """An in-memory dataset of random uint8 images (the bench measures compute, not data loading)."""

    def __init__(self, cfg: ModelConfig, n: int = 256, seed: int = 0):
        rng = np.random.RandomState(seed)
        shape = (n, cfg.img_channels, cfg.resolution, cfg.resolution)  # [N, C, H, W]
        self.images = rng.randint(0, 256, size=shape, dtype=np.uint8)
        classes = max(cfg.c_dim, 1)
        one_hot = np.eye(classes, dtype=np.float32)[rng.randint(classes, size=n)]  # [N, max(c_dim, 1)]
        self.labels = one_hot[:, :cfg.c_dim]  # [N, c_dim]
        self.resolution, self.num_channels, self.label_dim = cfg.resolution, cfg.img_channels, cfg.c_dim

    def __len__(self) -> int:
        return len(self.images)

    def get_batch(self, idx):
        idx = np.asarray(idx)
        return self.images[idx], self.labels[idx]

    def get_label(self, i: int) -> np.ndarray:
        return self.labels[i]


class _CyclicSampler:
    def __init__(self, n, rank=0, world=1, seed=0, shuffle=True):
        self.n, self.pos = n, 0

    def take(self, k):
        out = (np.arange(self.pos, self.pos + k) % self.n)
        self.pos += k
        return out

    def state_dict(self):
        return {"pos": self.pos}

    def load_state_dict(self, s):
        self.pos = s["pos"]


def _conv_reference_gflops(trainer, repeats: int = 3,
                           dtype: torch.dtype = torch.float32) -> tuple[float, float]:
    """GFLOP/s of plain conv2d forward+backward in `dtype` on the 3x3 conv shapes of G's synthesis and D at
    this batch."""
    from flowergan.networks.generator import SynthesisLayer

    N = trainer.batch_gpu
    shapes = [(m.in_channels, m.out_channels, m.resolution) for m in trainer.G.synthesis.modules()
              if isinstance(m, SynthesisLayer)]  # [(C_in, C_out, resolution)]
    for res in trainer.D.block_resolutions:
        blk = getattr(trainer.D, f"b{res}")
        shapes += [(layer.in_channels, layer.out_channels, res) for layer in (blk.conv0, blk.conv1)]
    flops = 0.0
    secs = 0.0
    dev = trainer.device
    for cin, cout, res in shapes:
        x = torch.randn(N, cin, res, res, device=dev, dtype=dtype, requires_grad=True)
        w = torch.randn(cout, cin, 3, 3, device=dev, dtype=dtype, requires_grad=True)

        def run(x=x, w=w):
            F.conv2d(x, w, padding=1).sum().backward()

        t, _ = benchtools.time_median(run, dev, warmup=1, repeats=repeats)
        flops += 3 * 2 * N * cin * cout * 9 * res * res  # forward + 2x backward
        secs += t
    return flops / secs / 1e9, secs


def _phase_counts(trainer, name: str):
    """(OpCounts, count_saved) of one eager step of phase `name` (compiled callables swapped for the eager
    networks): operator calls and FLOPs, and the bytes autograd saved for backward (parameters excluded)."""
    from flowergan.training.opcount import count_ops
    from flowergan.training.savedcount import count_saved

    loss = trainer.loss
    saved = loss.synthesis_main, loss.D_main
    loss.synthesis_main, loss.D_main = trainer.G.synthesis, trainer.D
    state = [*trainer.G.parameters(), *trainer.G.buffers(), *trainer.D.parameters(), *trainer.D.buffers()]
    try:
        trainer.batch_idx = 0
        with count_ops() as c, count_saved(state) as s:
            trainer.step(phases=[name])
    finally:
        loss.synthesis_main, loss.D_main = saved
    return c.counts, s


def matmul_tflops(device: torch.device, dtype: torch.dtype, n: int | None = None, repeats: int = 5) -> float:
    """TFLOP/s of one plain dense [n, n] @ [n, n] matmul in `dtype`: the device's reachable matrix rate."""
    n = n or (8192 if device.type == "cuda" else 1024)
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    t, _ = benchtools.time_median(lambda: a @ b, device, warmup=2, repeats=repeats)
    return 2 * n**3 / t / 1e12


def bench_train(cfg: ModelConfig, batch: int = 8, device: str = "cpu", repeats: int = 3, warmup: int = 1,
                compile: bool = False, amp: str = "auto", aug_p: float = 0.2, flops: bool = True,
                profile: bool = False, compile_mode: str = "default", sync_free: bool | None = None,
                progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Median seconds of each phase; sec/iteration = Gmain + Greg/4 + Dmain + Dreg/16.

    With `flops`: FLOPs per phase (one eager step each, counted by the dispatcher), amortised by the same
    weights, the achieved TFLOP/s, and the fraction of a plain matmul's rate measured in this run (in the
    run's half precision on CUDA, bf16 unless amp is fp16; on the CPU bf16 with amp bf16, else float32).
    With `profile`: operator calls per phase (views excluded), the most frequent operators, and the MiB autograd
    saves for backward per phase (unique storages, parameters excluded; device-independent). `amp`
    defaults to `flowergan train`'s default, so the figure is the step a user gets. `sync_free` True runs the
    accelerator path (no host reads inside a step) on any device; None: the device's own path. `progress`
    receives one line as each part ends (networks built, each phase's first call, each warm-up and repeat, the
    counting and reference runs), so a run stopped at a time limit shows where its time went.
    """
    say = progress or (lambda msg: None)
    t_start = time.perf_counter()
    from flowergan.training.loop import Trainer
    from flowergan.training.plan import plan_training

    dev = torch.device(device)
    benchtools.reset_peak_mem(dev)
    # The run's settings come from the same resolver as `flowergan train` (amp fp16 -> the 4 highest-resolution
    # blocks in fp16 with conv clamp 256; auto -> that on CUDA, bf16 on a CPU with native bf16, else fp32).
    tcfg = TrainConfig(batch=batch, aug="fixed" if aug_p > 0 else "none", p=aug_p, device=device, amp=amp,
                       compile=compile, compile_mode=compile_mode, style_mixing=0.9)
    data = RandomImages(cfg, n=max(4 * batch, 64))
    trainer = Trainer(plan_training(cfg, tcfg, device=dev), None, data, device=dev, info=DistInfo(),
                      sampler_cls=_CyclicSampler,
                      sync_free=sync_free)
    cfg, tcfg = trainer.model_cfg, trainer.cfg
    say(f"networks, data and optimisers built: {time.perf_counter() - t_start:.2f} s (batch {batch}, amp "
        f"{trainer.resolved.amp}, {len(data)} random images)")
    weights = {"Gmain": 1.0, "Greg": 1 / tcfg.pl_interval, "Dmain": 1.0, "Dreg": 1 / tcfg.r1_interval}
    per_phase: dict[str, float] = {}
    for name in weights:
        times = []
        for i in range(warmup + repeats):
            trainer.batch_idx = 0  # every phase is due at batch 0
            benchtools.sync(dev)
            t0 = time.perf_counter()
            trainer.step(phases=[name])
            benchtools.sync(dev)
            dt = time.perf_counter() - t0
            kind = "first call" if i == 0 else ("warm-up" if i < warmup else "repeat")
            say(f"{name} {kind} {i + 1}/{warmup + repeats}: {dt:.3f} s")
            if i >= warmup:
                times.append(dt)
        per_phase[name] = statistics.median(times)
    sec_iter = sum(per_phase[k] * w for k, w in weights.items())
    extra: dict[str, Any] = {"phase_sec": per_phase, "phase_weights": weights, "sec_per_kimg": sec_iter / batch * 1000,
                             "aug_p": aug_p, "amp": trainer.resolved.amp, "compile": compile,
                             "compile_mode": compile_mode if compile else None, "batch": batch,
                             "sync_free": trainer.sync_free}
    if dev.type == "cuda":
        extra["peak_gpu_mem_gb_timed"] = torch.cuda.max_memory_allocated(dev) / 2**30
    say(f"timed: {sec_iter * 1000 / batch:.2f} s/kimg")
    if flops or profile:
        counted = {}
        for k in weights:
            t0 = time.perf_counter()
            counted[k] = _phase_counts(trainer, k)
            say(f"{k} operators counted: {time.perf_counter() - t0:.2f} s")
        counts = {k: c for k, (c, _) in counted.items()}
        if profile:
            extra["phase_ops"] = {k: c.to_dict() for k, c in counts.items()}
            extra["op_calls_per_iter"] = sum(counts[k].total_calls * w for k, w in weights.items())
            extra["phase_saved_mb"] = {k: s.nbytes / 2**20 for k, (_, s) in counted.items()}
            extra["phase_saved_tensors"] = {k: s.tensors for k, (_, s) in counted.items()}
        if flops:
            step_flops = sum(counts[k].total_flops * w for k, w in weights.items())
            achieved = step_flops / sec_iter / 1e12
            mm_dtype = (torch.float16 if trainer.resolved.amp == "fp16" else torch.bfloat16) if dev.type == "cuda" \
                else (torch.bfloat16 if trainer.resolved.amp == "bf16" else torch.float32)
            t0 = time.perf_counter()
            mm = matmul_tflops(dev, mm_dtype)
            say(f"matmul reference: {time.perf_counter() - t0:.2f} s")
            extra.update({"phase_tflop": {k: c.total_flops / 1e12 for k, c in counts.items()},
                          "tflop_per_kimg": step_flops / batch * 1000 / 1e12, "achieved_tflops": achieved,
                          "matmul_tflops": mm, "matmul_dtype": str(mm_dtype).replace("torch.", ""),
                          "fraction_of_matmul": achieved / mm,
                          "gflop_per_iter": step_flops / 1e9, "achieved_gflops": achieved * 1000})
            if dev.type == "cpu" and not compile:
                t0 = time.perf_counter()
                ref, _ = _conv_reference_gflops(trainer, repeats=repeats, dtype=mm_dtype)  # bf16 with amp bf16
                say(f"conv2d reference: {time.perf_counter() - t0:.2f} s")
                extra.update({"conv2d_ref_gflops": ref, "conv2d_ref_dtype": extra["matmul_dtype"],
                              "fraction_of_conv2d": achieved * 1000 / ref})
    say(f"done: {time.perf_counter() - t_start:.2f} s in all")
    return benchtools.record("train", images=batch, seconds=sec_iter, device=dev, config=cfg.to_dict(), **extra)
