"""Does the default mixed precision learn like fp32? (issue #12) Train `tiny` with `--amp auto` (on CUDA the
official fp16 scheme: fp16 in the blocks at 8x8 and above, conv clamp 256) and with `--amp off` (fp32), from the
same seeds, on the same procedural flowers, side by side as parallel processes; then score the same snapshots
(same number of images) with FID here.

    # on the GPU machine (bench/gpu.sh's learn stage): train, then pack every snapshot's G_ema small (fp16 tensors,
    # ~0.6 MB each) under OUT/<amp>-s<seed>/checkpoints/ with each run's config.json and log.jsonl
    python bench/precision_race.py train --device cuda --kimg 40 --snap 4 --seeds 0,1 --seconds 150 --out OUT
    # here (the Inception file stays on this machine): FID 1,000 vs 1,000 at the largest kimg every run reached
    python bench/precision_race.py score OUT --data flowers32-2000-s0.zip [--kimg 8,40]

One `tiny` run is bound by kernel launches on a GPU, so the runs share one card well. The data is made by
`flowergan prepare synthetic --count 2000 --resolution 32 --seed 0` on both machines (the same bytes). The
recipe is the learning race's (lr 0.004, R1 gamma 0.0128, EMA 5 kimg, ADA, x-flips, batch 16) with the default
path-length regularisation and style mixing left on, so the fp16 path's every phase is in the comparison.
`score` prints JSON lines (one per snapshot, with the precision each run resolved) and a table: per kimg, each
run's FID, the auto - off difference for each seed, and the spread between seeds of each precision (the noise to
compare it with).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

RECIPE = ["--preset", "tiny", "--batch", "16", "--lr", "0.004", "--gamma", "0.0128", "--ema", "5", "--aug", "ada",
          "--mirror", "--keep", "1000", "--no-progress"]
DATA_ARGS = ["--count", "2000", "--resolution", "32", "--seed", "0"]


def _flowergan(*args: str) -> list[str]:
    return [sys.executable, "-m", "flowergan", *args]


def pack_run(run_root: Path, out: Path) -> int:
    """Every checkpoint's G_ema of the run under `run_root` -> out/checkpoints/<name>/ (fp16); -> how many."""
    from pack_gema import pack_checkpoint

    from flowergan.networks.locate import list_checkpoints

    runs = [r for r in sorted(run_root.iterdir()) if r.is_dir() and list_checkpoints(r)] if run_root.is_dir() else []
    if not runs:
        return 0
    run = runs[-1]
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "log.jsonl"):
        if (run / name).is_file():
            (out / name).write_bytes((run / name).read_bytes())
    if (run_root.parent / f"{run_root.name}.log").is_file():  # the run's console output
        (out / "train.log").write_bytes((run_root.parent / f"{run_root.name}.log").read_bytes())
    ckpts = list_checkpoints(run)
    for c in ckpts:
        pack_checkpoint(c, out / "checkpoints" / c.name)
    return len(ckpts)


def train(a: argparse.Namespace) -> None:
    out, work = Path(a.out), Path(a.work)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    data = Path(a.data) if a.data else work / "flowers32-2000-s0.zip"
    if not data.is_file():
        with open(work / "prepare.log", "w") as log:
            subprocess.run(_flowergan("prepare", "synthetic", "--out", str(data), *DATA_ARGS, "--overwrite"),
                           check=True, stdout=log, stderr=subprocess.STDOUT)
    jobs = {}
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads)}
    t0 = time.time()
    for amp in a.amps.split(","):
        for seed in a.seeds.split(","):
            name = f"{amp}-s{seed}"
            for old in (work / name, out / name):  # a rerun starts afresh (no snapshots of an earlier run)
                shutil.rmtree(old, ignore_errors=True)
            cmd = _flowergan("train", "--data", str(data), *RECIPE, "--kimg", str(a.kimg), "--snap", str(a.snap),
                             "--seed", seed, "--amp", amp, "--device", a.device, "--out", str(work / name))
            log = open(work / f"{name}.log", "w")
            jobs[name] = (cmd, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), log)
    deadline, stopped = t0 + a.seconds, set()
    for name, (_, proc, _) in jobs.items():
        try:
            proc.wait(timeout=max(deadline - time.time(), 0.1))
        except subprocess.TimeoutExpired:  # out of time: stop it (exit status 1); its snapshots so far count
            stopped.add(name)
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    summary = {"bench": "precision_race", "device": a.device, "kimg": a.kimg, "snap": a.snap,
               "seconds": round(time.time() - t0, 1), "runs": {}}
    for name, (cmd, proc, log) in jobs.items():
        log.close()
        packed = pack_run(work / name, out / name)
        summary["runs"][name] = {"rc": proc.returncode, "stopped_at_deadline": name in stopped, "snapshots": packed,
                                 "command": " ".join(cmd[1:])}
    print(json.dumps(summary))
    if not all(r["snapshots"] for r in summary["runs"].values()):
        sys.exit(1)


def _snapshots(run: Path) -> dict[float, Path]:
    from flowergan.networks.locate import list_checkpoints

    return {int(c.name.split("-")[1]) / 1000: c for c in list_checkpoints(run)}


def table(scores: list[dict]) -> str:
    """Markdown: one row per kimg; each run's FID, auto - off (on CUDA fp16 - fp32) per seed, and each
    precision's spread over the seeds."""
    runs = sorted({s["run"] for s in scores})
    by = {(s["run"], s["kimg"]): s["fid"] for s in scores}
    seeds = sorted({r.split("-s")[1] for r in runs})
    lines = ["| kimg | " + " | ".join(runs) + " | auto - off per seed | seed spread auto / off |",
             "|---" * (len(runs) + 3) + "|"]
    for k in sorted({s["kimg"] for s in scores}):
        cells = [f"{by[(r, k)]:.1f}" if (r, k) in by else "-" for r in runs]
        diffs = [by[(f"auto-s{s}", k)] - by[(f"off-s{s}", k)] for s in seeds
                 if (f"auto-s{s}", k) in by and (f"off-s{s}", k) in by]
        spread = []
        for amp in ("auto", "off"):
            v = [by[(f"{amp}-s{s}", k)] for s in seeds if (f"{amp}-s{s}", k) in by]
            spread.append(f"{max(v) - min(v):.1f}" if len(v) > 1 else "-")
        lines.append(f"| {k:g} | " + " | ".join(cells) + f" | {', '.join(f'{d:+.1f}' for d in diffs) or '-'} | "
                     + " / ".join(spread) + " |")
    return "\n".join(lines)


def score(a: argparse.Namespace) -> None:
    import torch

    from flowergan.inference.loader import load_networks
    from flowergan.metrics.registry import compute

    torch.set_num_threads(a.threads)
    if not Path(a.data).exists():
        raise SystemExit(f"--data {a.data}: no such file; make it with: flowergan prepare synthetic --out {a.data} "
                         + " ".join(DATA_ARGS))
    root = Path(a.dir)
    runs = sorted(p for p in root.iterdir() if p.is_dir() and _snapshots(p)) if root.is_dir() else []
    if not runs:
        raise SystemExit(f"{root}: no packed runs (OUT/<amp>-s<seed>/checkpoints/snapshot-*)")
    snaps = {r.name: _snapshots(r) for r in runs}
    common = sorted(set.intersection(*(set(s) for s in snaps.values())))
    if not common:
        raise SystemExit(f"{root}: the runs share no snapshot kimg: {({k: sorted(v) for k, v in snaps.items()})}")
    points = [float(k) for k in a.kimg.split(",")] if a.kimg else [common[-1]]
    missing = [k for k in points if k not in common]
    if missing:
        raise SystemExit(f"--kimg {missing}: not reached by every run; common snapshots: {common}")
    scores = []
    for k in points:
        for r in runs:
            m = load_networks(snaps[r.name][k], "cpu")
            t0 = time.perf_counter()
            with torch.random.fork_rng(devices=[]):  # the same noise stream for every network
                torch.manual_seed(0)
                fid = float(compute(m.G, "fid", a.data, num_gen=a.num, num_real=a.num, device="cpu",
                                    progress=False)["fid"]["value"])
            amp = json.loads((r / "config.json").read_text())["train"]["amp"] if (r / "config.json").is_file() else None
            rec = {"run": r.name, "amp": amp, "kimg": k, "fid": fid, "num": a.num, "data": str(a.data),
                   "fid_seconds": round(time.perf_counter() - t0, 1)}
            scores.append(rec)
            print(json.dumps(rec), flush=True)
    print(table(scores))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train the runs side by side and pack their snapshots")
    t.add_argument("--device", default="cuda")
    t.add_argument("--kimg", type=float, default=40)
    t.add_argument("--snap", type=float, default=4, help="snapshot (and compare) every this many kimg")
    t.add_argument("--seeds", default="0,1")
    t.add_argument("--amps", default="auto,off")
    t.add_argument("--seconds", type=float, default=150, help="stop every run after this long (snapshots stay)")
    t.add_argument("--threads", type=int, default=2, help="CPU threads per run")
    t.add_argument("--data", default=None, help="dataset zip (default: made in --work as above)")
    t.add_argument("--work", default="/tmp/flowergan-precision-race")
    t.add_argument("--out", required=True)
    s = sub.add_parser("score", help="FID of the packed snapshots (CPU)")
    s.add_argument("dir")
    s.add_argument("--data", required=True, help="flowers32-2000-s0.zip (its first --num images are the reals)")
    s.add_argument("--num", type=int, default=1000)
    s.add_argument("--kimg", default=None, help="comma list (default: the largest kimg every run reached)")
    s.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    train(a) if a.cmd == "train" else score(a)


if __name__ == "__main__":
    main()
