"""`flowergan bench`: speed and memory of each part, one JSON line per measurement."""

from __future__ import annotations

import json

import click

from flowergan.cli.checks import count, finite, resolve_device
from flowergan.cli.model_flags import model_options, pop_model_config
from flowergan.training.config import AMP_MODES, COMPILE_MODES, TrainConfig

WHATS = ["generator", "discriminator", "train", "augment", "data", "fid"]


@click.command()
@click.option("--what", type=click.Choice(WHATS), default="generator", show_default=True,
              help="What to measure.")
@model_options()
@click.option("--batch", type=click.IntRange(min=1), default=8, show_default=True, callback=count("batch"),
              help="Batch size.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True, callback=count("repeats"),
              help="Timed repeats (the median is reported).")
@click.option("--warmup", type=click.IntRange(min=0), default=1, show_default=True, callback=count("repeats"),
              help="Untimed warm-up runs.")
@click.option("--threads", type=click.IntRange(min=1), default=None, callback=count("workers"),
              help="torch CPU threads (default: torch's).")
@click.option("--compile", "compile_", is_flag=True, help="Use torch.compile where supported.")
@click.option("--compile-mode", type=click.Choice(list(COMPILE_MODES)), default=TrainConfig.compile_mode,
              show_default=True,
              help="`train --compile`: torch.compile mode (reduce-overhead: CUDA graphs on GPUs).")
@click.option("--amp", type=click.Choice(list(AMP_MODES)), default=TrainConfig.amp, show_default=True,
              help="Precision for `train`, resolved as `flowergan train --amp` does, with the same default: auto "
                   "(fp16 on CUDA; on the CPU bf16 where it is native, else fp32), fp16 (the official scheme, "
                   "CUDA only), bf16 autocast or off (fp32).")
@click.option("--aug-p", type=float, default=0.2, show_default=True, callback=finite(0, 1),
              help="ADA probability for `train` and `augment`.")
@click.option("--profile", is_flag=True, help="`train`: add operator calls (phase_ops) and MiB saved for backward "
              "(phase_saved_mb) per phase to the JSON; others: print a torch.profiler table of where the time goes.")
@click.option("--sync-free", is_flag=True,
              help="`train`: run the accelerator path (no host reads inside a step) on the CPU too, e.g. to count "
                   "its operator calls with --profile.")
@click.option("--num", type=click.IntRange(min=1), default=None, callback=count("images"),
              help="Images for `data`/`fid` measurements.")
def bench(what: str, batch: int, device: str, repeats: int, warmup: int, threads: int | None, compile_: bool,
          compile_mode: str, amp: str, aug_p: float, profile: bool, sync_free: bool, num: int | None,
          **kwargs) -> None:
    """Measure speed (images/s, median of repeats) and peak memory; print one JSON line each.

    \b
    Examples:
      flowergan bench --what generator --preset paper-128 --batch 8 --threads 2
      flowergan bench --what train --preset tiny --batch 16
      flowergan bench --what data
    """
    import torch

    device = resolve_device(device)
    if threads:
        torch.set_num_threads(threads)
    cfg = pop_model_config(kwargs)
    ctx = _profiler(profile and what != "train")
    with ctx as prof:
        records = _run(what, cfg, batch=batch, device=device, repeats=repeats, warmup=warmup, compile_=compile_,
                       amp=amp, aug_p=aug_p, num=num, profile=profile, compile_mode=compile_mode,
                       sync_free=True if sync_free else None)  # not given: the device's own path
    for r in records:
        click.echo(json.dumps(r))
    if profile and prof is not None and what != "train":
        click.echo(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25), err=True)


def _progress_printer():
    """A progress callback: each line to stderr at once, with the wall clock and the seconds since the start."""
    import time

    t0 = time.perf_counter()

    def say(msg: str) -> None:
        click.echo(f"[{time.strftime('%H:%M:%S')} +{time.perf_counter() - t0:.1f}s] bench: {msg}", err=True)

    return say


def _profiler(enabled: bool):
    import contextlib

    if not enabled:
        return contextlib.nullcontext()
    from torch.profiler import ProfilerActivity, profile

    return profile(activities=[ProfilerActivity.CPU], record_shapes=False)


def _run(what, cfg, *, batch, device, repeats, warmup, compile_, amp, aug_p, num, profile=False,
         compile_mode="default", sync_free=None):
    if what == "generator":
        from flowergan.benchmarking.networks import bench_generator

        return [bench_generator(cfg, batch=batch, device=device, repeats=repeats, warmup=warmup, compile=compile_)]
    if what == "discriminator":
        from flowergan.benchmarking.networks import bench_discriminator

        return [bench_discriminator(cfg, batch=batch, device=device, repeats=repeats, warmup=warmup)]
    if what == "train":
        from flowergan.benchmarking.training import bench_train

        return [bench_train(cfg, batch=batch, device=device, repeats=repeats, warmup=warmup, compile=compile_,
                            amp=amp, aug_p=aug_p, profile=profile, compile_mode=compile_mode, sync_free=sync_free,
                            progress=_progress_printer())]
    if what == "augment":
        from flowergan.benchmarking.augment import bench_augment

        return bench_augment(cfg, batch=batch, device=device, repeats=repeats, warmup=warmup, aug_p=aug_p)
    if what == "data":
        from flowergan.benchmarking.data import run_bench

        kw = {"num_photos": num} if num else {}
        return run_bench(**kw)
    if what == "fid":
        from flowergan.benchmarking.metrics import run_bench

        kw = {"num": num} if num else {}
        return run_bench(batch=batch, device=device, repeats=repeats, warmup=warmup, **kw)
    raise click.UsageError(f"unknown --what {what}")
