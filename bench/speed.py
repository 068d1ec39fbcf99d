"""The speed table of docs/BENCHMARKS.md: our CPU figures beside the official implementation's, measured
side by side in one run on this machine (a figure from another machine is no baseline).

    .venv/bin/python bench/speed.py --official ../official/venv/bin/python   # paper-128, batch 8, 2 threads

Runs `flowergan bench` for generator inference, discriminator forward+backward and the full training
iteration, each in a fresh process (so peak memory is per measurement), then the official code's
`../shared/official-bench/bench_official.py` on the same workload (set it up with that folder's README), and
prints a markdown table of both with their ratios plus the raw JSON lines. Without `--official` it prints
our figures only. `--amp off,bf16,auto` measures our training step once per precision (bf16 autocast pays on
CPUs with native bf16: avx512_bf16 or AMX, where `auto`, the `train` default, chooses it; the official code has
no bf16 path, so its step is fp32 in every row).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

OFFICIAL_BENCH = Path(__file__).resolve().parents[1].parent / "shared" / "official-bench" / "bench_official.py"
GOALS = {"generator": 1.5, "discriminator": None, "train": 2.0}


def bench(what: str, preset: str, batch: int, threads: int, repeats: int, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "flowergan", "bench", "--what", what, "--preset", preset, "--batch", str(batch),
           "--threads", str(threads), "--repeats", str(repeats), *extra]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rec = json.loads(out.strip().splitlines()[-1])
    rec["command"] = "flowergan " + " ".join(cmd[3:])
    return rec


def official(python: str, preset: str, batch: int, threads: int, repeats: int) -> dict:
    """The official code's figures on the same workload: {what: {'img_per_s', 'peak_mem_mb'}} and its raw JSON."""
    maps = {"paper-128": 8, "auto-128": 2}
    if preset not in maps:
        raise SystemExit(f"--official: only {sorted(maps)} have an official counterpart here")
    cmd = [str(Path(python).absolute()), str(OFFICIAL_BENCH), "--res", "128", "--batch", str(batch),
           "--preset", "auto", "--map", str(maps[preset]), "--threads", str(threads), "--reps", str(repeats),
           "--what", "g,d,train"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=OFFICIAL_BENCH.parent).stdout
    raw = json.loads([line for line in out.splitlines() if line.startswith("JSON: ")][-1][len("JSON: "):])
    return {"generator": {"img_per_s": raw["G_forward"]["img_per_s"]},
            "discriminator": {"img_per_s": raw["D_fwd_bwd"]["img_per_s"]},
            "train": {"img_per_s": raw["train"]["amortized_img_per_s"], "peak_mem_mb": raw.get("peak_rss_mb")},
            "raw": raw, "command": " ".join(cmd)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="paper-128")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--amp", default="off",
                    help="comma list of our training precisions: off (fp32), bf16, auto (the `train` default: bf16 "
                         "on CPUs with native bf16, else fp32)")
    ap.add_argument("--official", metavar="PYTHON", default=None,
                    help="the official code's venv python (../official/venv/bin/python): measure it in the same run")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    if args.official and not Path(args.official).is_file():
        raise SystemExit(f"--official {args.official}: no such file (the official code's venv python; see "
                         f"../shared/official-bench/README.md)")
    amps = [a.strip() for a in args.amp.split(",") if a.strip()]
    if not amps or any(a not in ("off", "bf16", "auto") for a in amps):
        raise SystemExit(f"--amp {args.amp}: give a comma list of off, bf16 and auto")
    recs = {}
    jobs = [("generator", "generator", []), ("discriminator", "discriminator", [])]
    jobs += [("train" if a == "off" else f"train ({a})", "train", ["--amp", a]) for a in amps]
    for row, w, extra in jobs:
        r = bench(w, args.preset, args.batch, args.threads, args.repeats if w != "train" else 2, extra)
        row = f"train (auto: {r['amp']})" if extra == ["--amp", "auto"] else row  # what auto chose here
        recs[row] = r
        # printed now, so it is kept if a later step fails
        print(json.dumps({k: v for k, v in recs[row].items() if k != "config"}), flush=True)
    off = official(args.official, args.preset, args.batch, args.threads, args.repeats) if args.official else None
    print("| measurement | official img/s | ours img/s | ratio | goal | ours peak RSS MB | command |")
    print("|---|---|---|---|---|---|---|")
    for row, r in recs.items():
        w = r["what"]
        goal = f">= {GOALS[w]}x" if GOALS[w] else "-"
        o = f"{off[w]['img_per_s']:.3f}" if off else "-"
        ratio = f"{r['img_per_s'] / off[w]['img_per_s']:.2f}x" if off else "-"
        print(f"| {row} | {o} | {r['img_per_s']:.3f} | {ratio} | {goal} | {r['peak_mem_mb']:.0f} | `{r['command']}` |")
    for row, t in recs.items():
        if t["what"] == "train":
            _train_lines(row, t, off)
    if off:
        print(f"official: `{off['command']}`")
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
        print("\nraw (official):")
        print(json.dumps({"official": off["raw"]}))


def _train_lines(row: str, t: dict, off: dict | None) -> None:
    off_mem = f" vs official {off['train']['peak_mem_mb']:.0f} MB" if off and off["train"]["peak_mem_mb"] else ""
    print(f"\n{row}: {t['sec_per_batch']:.1f} s per iteration ({t['sec_per_kimg']:.0f} s/kimg), peak RSS "
          f"{t['peak_mem_mb']:.0f} MB{off_mem}; phases (s): "
          + ", ".join(f"{k} {v:.2f}" for k, v in t["phase_sec"].items()))
    if "achieved_gflops" in t:
        print(f"achieved {t['achieved_gflops']:.1f} GFLOP/s over the whole step ({t['gflop_per_iter']:.0f} GFLOP per "
              f"iteration) vs plain conv2d fwd+bwd at the same sizes {t['conv2d_ref_gflops']:.1f} GFLOP/s "
              f"= {100 * t['fraction_of_conv2d']:.0f}%")


if __name__ == "__main__":
    main()
