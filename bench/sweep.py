"""Which training settings make `tiny` learn fastest? Train several variants side by side and report FID
(1,000 generated vs 1,000 real images) at fixed kimg points, plus (optionally) each variant's CPU speed.

    # FID against kimg, variants as parallel processes (a GPU makes this quick; any device works):
    python bench/sweep.py --device cuda --kimg 96 --every 24 --jobs 8 --out bench/out/sweep
    # images/s of each variant's real training steps on this CPU (run alone: timings need a quiet machine):
    python bench/sweep.py --cpu-speed --out bench/out/sweep

Per-kimg learning does not depend on the device, the time per kimg does: combining the two says what
reaches the lowest FID inside a fixed CPU budget (`bench/learn.py`). Each variant writes
`<out>/<name>.jsonl` (one line per FID point) and a sample grid; `--inception` takes a TorchScript
Inception file to use without its checksum gate (for your own converted copy, e.g. an fp16 one that
fits a small upload; FID from it is an approximation, fine for ranking).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# Variant name -> (train-config overrides, model-config overrides). "b32" is the plain `tiny` recipe.
VARIANTS: dict[str, tuple[dict, dict]] = {
    "b32": ({}, {}),
    "b16": ({"batch": 16}, {}),
    "b32-lean": ({"pl_weight": 0.0, "style_mixing": 0.0}, {}),
    "b16-lean": ({"batch": 16, "pl_weight": 0.0, "style_mixing": 0.0}, {}),
    "b16-lean-noaug": ({"batch": 16, "pl_weight": 0.0, "style_mixing": 0.0, "aug": "none"}, {}),
    "b16-lean-lr4": ({"batch": 16, "pl_weight": 0.0, "style_mixing": 0.0, "lr": 0.004}, {}),
    "b16-lean-gamma-q": ({"batch": 16, "pl_weight": 0.0, "style_mixing": 0.0, "gamma": 0.0032}, {}),
    "b16-lean-dorig": ({"batch": 16, "pl_weight": 0.0, "style_mixing": 0.0}, {"d_architecture": "orig"}),
    "b8-lean": ({"batch": 8, "pl_weight": 0.0, "style_mixing": 0.0}, {}),
    "b16-lean-lr6": ({"batch": 16, "pl_weight": 0.0, "style_mixing": 0.0, "lr": 0.006}, {}),
    "b8-lean-lr4": ({"batch": 8, "pl_weight": 0.0, "style_mixing": 0.0, "lr": 0.004}, {}),
    "b32-lean-lr4": ({"pl_weight": 0.0, "style_mixing": 0.0, "lr": 0.004}, {}),
}


def _setup(name: str, data: str, out: Path, device: str, seed: int):
    import torch
    from learn import make_trainer  # bench/learn.py, beside this script

    from flowergan.config import preset

    tr, mo = VARIANTS[name]
    trainer = make_trainer(preset("tiny").replace(**mo), data, out / name, device=device, seed=seed, **tr)
    if trainer.device.type == "cuda":  # match the CPU's fp32 arithmetic as closely as the GPU allows
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return trainer


def worker(args) -> None:
    """Train one variant, FID at every `--every` kimg until `--kimg` or the deadline."""
    import torch
    from learn import advance

    from flowergan.metrics.detectors import FeatureNet, resolve_inception
    from flowergan.metrics.registry import compute
    from flowergan.training.progress import save_grid

    torch.set_num_threads(args.threads or 1)
    out = Path(args.out)
    trainer = _setup(args.worker, args.data, out, args.device, args.seed)
    if args.inception:  # a user-provided copy, loaded without the gate (see the module docstring)
        net = torch.jit.load(args.inception, map_location="cpu").float().eval().to(trainer.device)
        det = FeatureNet(net, "pool3-299", "inception (user copy)", trainer.device)
    else:
        det = resolve_inception(device=trainer.device, progress=False)
    deadline = time.monotonic() + args.deadline if args.deadline else float("inf")
    log = out / f"{args.worker}.jsonl"
    log.write_text("")
    t_train, cpu_train, point = 0.0, 0.0, 0.0
    while point < args.kimg and time.monotonic() < deadline:
        if args.cpu_budget:  # one FID point after a fixed amount of this process's CPU time
            if point > 0:
                break
            while cpu_train < args.cpu_budget:
                t0, c0 = time.perf_counter(), time.process_time()
                advance(trainer, trainer.cur_nimg / 1000 + 0.25)
                t_train += time.perf_counter() - t0
                cpu_train += time.process_time() - c0
            point = args.cpu_budget
        else:
            point = min(point + args.every, args.kimg)
            t0 = time.perf_counter()
            advance(trainer, point)
            t_train += time.perf_counter() - t0
        with torch.random.fork_rng(devices=[]):
            res = compute(trainer.G_ema, "fid", args.data, num_gen=args.num, num_real=args.num,
                          device=trainer.device, inception=det, cache=not args.inception, progress=False)
            save_grid(trainer.fixed_grid(), out / f"{args.worker}-grid.png", cols=8)
        rec = {"run": args.worker, "at": point, "kimg": trainer.cur_nimg / 1000,
               "fid": round(float(res["fid"]["value"]), 2),
               "train_seconds": round(t_train, 1), "cpu_seconds": round(cpu_train, 1),
               "p": round(float(trainer.augment_pipe.p), 4) if trainer.augment_pipe is not None else 0.0}
        with log.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        print(json.dumps(rec), flush=True)


def cpu_speed(args) -> None:
    """Images/s of real training steps for each variant, one after another on this CPU."""
    import torch
    from learn import advance

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    rows = []
    for name in _names(args):
        trainer = _setup(name, args.data, out / "speed", "cpu", args.seed)
        advance(trainer, args.speed_kimg / 4)  # warm-up
        t0, n0 = time.perf_counter(), trainer.cur_nimg
        advance(trainer, args.speed_kimg / 4 + args.speed_kimg)
        rate = (trainer.cur_nimg - n0) / (time.perf_counter() - t0)
        rows.append({"run": name, "cpu_img_per_s": round(rate, 2), "threads": torch.get_num_threads()})
        print(json.dumps(rows[-1]), flush=True)
    (out / "cpu_speed.json").write_text(json.dumps(rows, indent=2))


def _names(args) -> list[str]:
    names = args.variants.split(",") if args.variants else list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    return names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench/out/sweep")
    ap.add_argument("--data", default=None, help="dataset zip (default: 2,000 procedural 32x32 flowers, seed 0)")
    ap.add_argument("--variants", default=None, help=f"comma list (default all: {', '.join(VARIANTS)})")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--kimg", type=float, default=96.0)
    ap.add_argument("--every", type=float, default=24.0, help="kimg between FID points")
    ap.add_argument("--num", type=int, default=1000, help="images per FID side")
    ap.add_argument("--jobs", type=int, default=4, help="variants trained at once (separate processes)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads per process")
    ap.add_argument("--deadline", type=float, default=None, help="seconds after which no new point is started")
    ap.add_argument("--cpu-budget", type=float, default=None,
                    help="instead of kimg points: train for this many CPU seconds per process, then one FID")
    ap.add_argument("--inception", default=None, help="TorchScript Inception file used as is (your own copy)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cpu-speed", action="store_true", help="measure CPU images/s of each variant instead")
    ap.add_argument("--speed-kimg", type=float, default=2.0)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.data is None:
        from flowergan.data.synthetic import prepare_synthetic

        args.data = str(out.parent / "flowers32-2000-s0.zip")
        if not Path(args.data).exists():
            prepare_synthetic(args.data, count=2000, resolution=32, seed=0, progress=False)
    if args.worker:
        return worker(args)
    if args.cpu_speed:
        return cpu_speed(args)
    names = _names(args)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads or 1)}
    base = [sys.executable, __file__, "--out", str(out), "--data", args.data, "--device", args.device,
            "--kimg", str(args.kimg), "--every", str(args.every), "--num", str(args.num), "--seed", str(args.seed)]
    for opt in ("threads", "deadline", "inception", "cpu_budget"):
        if getattr(args, opt) is not None:
            base += [f"--{opt.replace('_', '-')}", str(getattr(args, opt))]
    running: list[subprocess.Popen] = []
    for name in names:
        while len(running) >= args.jobs:
            running = [p for p in running if p.poll() is None]
            time.sleep(0.5)
        running.append(subprocess.Popen(base + ["--worker", name], env=env))
    for p in running:
        p.wait()
    table = {}
    for name in names:
        f = out / f"{name}.jsonl"
        table[name] = [json.loads(x) for x in f.read_text().splitlines()] if f.exists() else []
    (out / "sweep.json").write_text(json.dumps(table, indent=2))
    kimgs = sorted({r["at"] for rows in table.values() for r in rows})
    print("\n| variant | " + " | ".join(f"FID @ {k:g}" for k in kimgs) + " |")
    print("|---|" + "---|" * len(kimgs))
    for name, rows in table.items():
        by = {r["at"]: r["fid"] for r in rows}
        print(f"| {name} | " + " | ".join(f"{by[k]:.1f}" if k in by else "-" for k in kimgs) + " |")


if __name__ == "__main__":
    main()
