"""The speed table of docs/BENCHMARKS.md: our CPU figures beside the official implementation's.

    .venv/bin/python bench/speed.py            # paper-128, batch 8, 2 threads (about 5 minutes)

Runs `flowergan bench` for generator inference, discriminator forward+backward and the full training
iteration, each in a fresh process (so peak memory is per measurement), and prints a markdown table
plus the raw JSON lines. The official figures are the ones measured on the same kind of machine
(2-core AVX2, torch 2.13.0 CPU, fp32, 2 threads, paper-128 at batch 8), given in the speed issue.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

OFFICIAL = {  # images/s, and peak RSS MB for the training iteration
    "generator": {"img_per_s": 1.66},
    "discriminator": {"img_per_s": 0.97},
    "train": {"img_per_s": 0.186, "peak_mem_mb": 4.6 * 1024},
}
GOALS = {"generator": 1.5, "discriminator": None, "train": 2.0}


def bench(what: str, preset: str, batch: int, threads: int, repeats: int, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "flowergan", "bench", "--what", what, "--preset", preset, "--batch", str(batch),
           "--threads", str(threads), "--repeats", str(repeats), *extra]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rec = json.loads(out.strip().splitlines()[-1])
    rec["command"] = "flowergan " + " ".join(cmd[3:])
    return rec


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="paper-128")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    recs = {w: bench(w, args.preset, args.batch, args.threads, args.repeats if w != "train" else 2, [])
            for w in ("generator", "discriminator", "train")}
    print("| measurement | official img/s | ours img/s | ratio | goal | ours peak RSS MB | command |")
    print("|---|---|---|---|---|---|---|")
    for w, r in recs.items():
        off = OFFICIAL[w]["img_per_s"]
        goal = f">= {GOALS[w]}x" if GOALS[w] else "-"
        print(f"| {w} | {off} | {r['img_per_s']:.3f} | {r['img_per_s'] / off:.2f}x | {goal} | {r['peak_mem_mb']:.0f} "
              f"| `{r['command']}` |")
    t = recs["train"]
    print(f"\ntraining: {t['sec_per_batch']:.1f} s per iteration ({t['sec_per_kimg']:.0f} s/kimg), peak RSS "
          f"{t['peak_mem_mb']:.0f} MB vs official {OFFICIAL['train']['peak_mem_mb']:.0f} MB; phases (s): "
          + ", ".join(f"{k} {v:.2f}" for k, v in t["phase_sec"].items()))
    if "achieved_gflops" in t:
        print(f"achieved {t['achieved_gflops']:.1f} GFLOP/s over the whole step ({t['gflop_per_iter']:.0f} GFLOP per "
              f"iteration) vs plain conv2d fwd+bwd at the same sizes {t['conv2d_ref_gflops']:.1f} GFLOP/s "
              f"= {100 * t['fraction_of_conv2d']:.0f}%")
    print("\nraw:")
    for r in recs.values():
        print(json.dumps({k: v for k, v in r.items() if k != "config"}))


if __name__ == "__main__":
    main()
