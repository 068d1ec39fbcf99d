"""Evidence that training learns: train `tiny` on procedural flowers on the CPU and report FID
(Inception-v3 features, 1,000 generated vs 1,000 real images) at the start, middle and end.

    .venv/bin/python bench/learn.py --kimg 96 --batch 16 --lr 0.004 --pl-weight 0 --style-mixing 0 \\
        --out bench/out/learn-96
    .venv/bin/python bench/learn.py --ablation --kimg 12 --out bench/out/ablation

--ablation trains two variants with the same budget and seed (the flower experiment at CPU scale):
`tiny` with an 8-layer mapping and z = w = 512 vs `tiny` with a 4-layer mapping and z = w = 256.
Everything is seeded; results are written as JSON plus sample grids, and a markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from flowergan.config import preset
from flowergan.data.dataset import ImageDataset
from flowergan.data.synthetic import prepare_synthetic
from flowergan.metrics.registry import compute
from flowergan.networks import count_params
from flowergan.training.config import TrainConfig
from flowergan.training.loop import Trainer, train
from flowergan.training.plan import plan_training
from flowergan.training.progress import save_grid
from flowergan.training.recipe import cfg_spec


def fid(trainer: Trainer, data: str, num: int) -> float:
    with torch.random.fork_rng(devices=[]):
        res = compute(trainer.G_ema, "fid", data, num_gen=num, num_real=num, device=trainer.device, progress=False)
    return float(res["fid"]["value"])


def make_trainer(model_cfg, data: str, run_dir: Path, device: str = "cpu", **train_kw) -> Trainer:
    """A trainer on `data` (x-flips, cached in memory) writing to `run_dir`; `train_kw` are TrainConfig fields."""
    run_dir.mkdir(parents=True, exist_ok=True)
    ds = ImageDataset(data, xflip=True, cache="memory", progress=False)
    # This benchmark's recipe: R1 gamma and EMA follow the batch actually used (the auto formulas applied to it),
    # fp32 on every device. Given explicitly: the official --batch rule would keep those of auto's batch 32.
    batch = train_kw.get("batch", 32)
    auto = cfg_spec("auto", model_cfg.resolution, 1, batch=batch)
    train_kw = {"batch": batch, "gamma": auto["gamma"], "ema_kimg": auto["ema"], "amp": "off", **train_kw}
    tcfg = TrainConfig(data=data, kimg=1, snap=1, mirror=True, keep=1, device=device).replace(**train_kw)
    return Trainer(plan_training(model_cfg, tcfg, device=device), run_dir, ds, device=torch.device(device))


def advance(trainer: Trainer, kimg: float) -> None:
    """Train until `kimg` in total, with one snapshot at the end."""
    trainer.cfg = trainer.cfg.replace(kimg=kimg, snap=kimg)
    train(trainer, progress=False)


def run(name: str, model_cfg, data: str, out: Path, kimg: float, evals: list[float], num: int, batch: int,
        seed: int, train_kw: dict) -> dict:
    run_dir = out / name
    if run_dir.exists():
        shutil.rmtree(run_dir)
    trainer = make_trainer(model_cfg, data, run_dir, batch=batch, seed=seed, kimg=kimg, snap=kimg, **train_kw)
    rec = {"name": name, "G_params": count_params(trainer.G), "D_params": count_params(trainer.D),
           "model": model_cfg.to_dict(), "train": trainer.cfg.to_dict(), "batch": batch, "seed": seed,
           "num_fid_images": num, "points": []}
    t_train = 0.0
    for point in evals:
        if point > 0:
            t0 = time.perf_counter()
            advance(trainer, point)
            t_train += time.perf_counter() - t0
        t0 = time.perf_counter()
        value = fid(trainer, data, num)
        with torch.random.fork_rng(devices=[]):
            save_grid(trainer.fixed_grid(), run_dir / f"grid-{point:06.2f}kimg.png", cols=8)
        rec["points"].append({"kimg": trainer.cur_nimg / 1000, "fid": value, "train_seconds": round(t_train, 1),
                              "fid_seconds": round(time.perf_counter() - t0, 1)})
        print(json.dumps({"run": name, **rec["points"][-1]}), flush=True)
    (run_dir / "result.json").write_text(json.dumps(rec, indent=2))
    return rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench/out/learn")
    ap.add_argument("--kimg", type=float, default=36.0, help="training budget (thousands of real images)")
    ap.add_argument("--count", type=int, default=2000, help="procedural flowers in the dataset")
    ap.add_argument("--num", type=int, default=1000, help="images per FID side")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=0.0025, help="Adam learning rate of G and D")
    ap.add_argument("--pl-weight", type=float, default=2.0, help="path-length weight (0: off)")
    ap.add_argument("--style-mixing", type=float, default=0.9, help="style-mixing probability")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--ablation", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = out.parent / f"flowers32-{args.count}-s{args.seed}.zip"
    if not data.exists():
        prepare_synthetic(data, count=args.count, resolution=32, seed=args.seed, progress=False)
    t0 = time.perf_counter()
    base = preset("tiny")
    if args.ablation:
        runs = [("tiny-map8-z512", base.replace(map_layers=8, z_dim=512, w_dim=512)),
                ("tiny-map4-z256", base.replace(map_layers=4, z_dim=256, w_dim=256))]
        evals = [args.kimg]
    else:
        runs = [("tiny", base)]
        evals = [0.0, args.kimg / 2, args.kimg]
    train_kw = dict(lr=args.lr, pl_weight=args.pl_weight, style_mixing=args.style_mixing)
    results = [run(n, c, str(data), out, args.kimg, evals, args.num, args.batch, args.seed, train_kw)
               for n, c in runs]
    summary = {"kimg": args.kimg, "batch": args.batch, **train_kw, "threads": torch.get_num_threads(),
               "torch": torch.__version__, "wall_seconds": round(time.perf_counter() - t0, 1), "runs": results}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    fid_cols = " | ".join(f"FID @ {p['kimg']:g} kimg" for p in results[0]["points"])
    print("\n| run | G params | D params | " + fid_cols + " |")
    print("|---|---|---|" + "---|" * len(results[0]["points"]))
    for r in results:
        print(f"| {r['name']} | {r['G_params']:,} | {r['D_params']:,} | " +
              " | ".join(f"{p['fid']:.1f}" for p in r["points"]) + " |")
    print(f"\nwall time {summary['wall_seconds']:.0f} s, {summary['threads']} threads")


if __name__ == "__main__":
    main()
