"""Turn what bench/gpu.sh brought back ($OUT) into issue #23's table, as markdown for docs/BENCHMARKS.md.

    python bench/gpu_report.py OUT [--json]

Reads OUT/summary.jsonl (each stage's exit code, start and duration) and OUT/stages.tar.gz (or an unpacked
OUT/stages/): the card (env.txt), each `flowergan train` run's log.jsonl (a line per kimg with its wall clock
`Timing/unix_time`, that tick's peak GPU memory and each phase's first-call seconds), the official run's stamped
tick lines (official.log: `[clock +SECONDS] official| tick N kimg K ... sec/kimg S ... gpumem G ... augment P`) and
the bench stages' JSON. Both codes' progress becomes (kimg, seconds since launch) points, so every window is
measured the same way: s/kimg over 0-4 (launch included), 4-8, 8-12, 12-16 kimg, and launch to 4 kimg; the ratio
is the official's seconds over ours (above 1: we are faster), both measured in the same call on the same card.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import statistics
import sys
import tarfile
from pathlib import Path
from typing import Any

WINDOWS = ((0, 4), (4, 8), (8, 12), (12, 16))
TRAIN_STAGES = ("train-auto128", "cap12", "train-lite128")
_TICK = re.compile(r"^\[[^\]]*\+([0-9.]+)s\] official\| (tick .*)$")
_PLUGIN = re.compile(r"^\[[^\]]*\+([0-9.]+)s\] official\| Setting up PyTorch plugin .*Done")
_FIELD = re.compile(r"(?<![\w/])(tick|kimg|sec/kimg|gpumem|augment)\s+([0-9.]+)")


def read_stages(out: Path) -> dict[str, str]:
    """{file name: text} of the stages folder: OUT/stages/ if unpacked, else OUT/stages.tar.gz."""
    folder = out / "stages"
    if folder.is_dir():
        return {p.name: p.read_text(errors="replace") for p in folder.iterdir() if p.is_file()}
    tgz = out / "stages.tar.gz"
    if not tgz.is_file():
        return {}
    files = {}
    with tarfile.open(tgz) as tar:
        for m in tar.getmembers():
            if m.isfile():
                files[Path(m.name).name] = io.TextIOWrapper(tar.extractfile(m), errors="replace").read()
    return files


def read_summary(out: Path) -> dict[str, dict[str, Any]]:
    p = out / "summary.jsonl"
    if not p.is_file():
        return {}
    return {r["stage"]: r for r in map(json.loads, filter(str.strip, p.read_text().splitlines()))}


def ours(text: str, start: float | None) -> dict[str, Any]:
    """A `flowergan train` log.jsonl -> points [(kimg, seconds since launch)], per-tick peaks, first calls."""
    rows = list(map(json.loads, filter(str.strip, text.splitlines())))
    recs = [r for r in rows if "kimg" in r and "batch_idx" in r]
    target = next((r["config"].get("train", {}).get("kimg") for r in rows if "config" in r), None)
    t0 = start if start is not None else None
    points = [(r["kimg"], r["Timing/unix_time"] - t0) for r in recs if t0 is not None and "Timing/unix_time" in r]
    peaks = [r["Resources/peak_gpu_mem_gb"] for r in recs if "Resources/peak_gpu_mem_gb" in r]
    first = {k.rsplit("/", 1)[1]: v for r in recs for k, v in r.items() if k.startswith("Timing/first_call_sec/")}
    return {"points": points, "peaks": peaks, "first_call_sec": first, "kimg_target": target,
            "kimg": max((r["kimg"] for r in recs), default=0.0),
            "tick_sec_per_kimg": [(r["kimg"], r["Timing/sec_per_kimg"]) for r in recs]}


def official(text: str) -> dict[str, Any]:
    """The official run's stamped log -> points [(kimg, seconds since launch)] and per-tick peaks (tick 0 apart:
    it holds the start-up)."""
    ticks, plugins = [], None
    for line in text.splitlines():
        p = _PLUGIN.match(line)
        if p:
            plugins = float(p.group(1))  # the last plugin built: its CUDA compilation is part of the launch
        m = _TICK.match(line)
        if m:
            f = {k: float(v) for k, v in _FIELD.findall(m.group(2))}
            ticks.append({**f, "t": float(m.group(1))})
    return {"points": [(t["kimg"], t["t"]) for t in ticks if "kimg" in t],
            "peaks": [t["gpumem"] for t in ticks if "gpumem" in t],
            "kimg": max((t.get("kimg", 0.0) for t in ticks), default=0.0), "ticks": ticks, "plugins_s": plugins,
            "tick_sec_per_kimg": [(t["kimg"], t["sec/kimg"]) for t in ticks if "sec/kimg" in t]}


def at(points: list[tuple[float, float]], kimg: float) -> tuple[float, float] | None:
    """The first point at or past `kimg` (0: the launch itself)."""
    if kimg == 0:
        return (0.0, 0.0)
    return next(((k, t) for k, t in points if k >= kimg - 1e-6), None)


def window(points: list[tuple[float, float]], a: float, b: float) -> float | None:
    """Seconds per kimg between the points at a and b kimg, or None when b was not reached."""
    pa, pb = at(points, a), at(points, b)
    if pa is None or pb is None or pb[0] <= pa[0]:
        return None
    return (pb[1] - pa[1]) / (pb[0] - pa[0])


def figures(run: dict[str, Any]) -> dict[str, Any]:
    pts = run["points"]
    p4 = at(pts, 4)
    steady = [sec for k, sec in run["tick_sec_per_kimg"] if k > 4 + 1e-6]  # ticks ending past the first 4 kimg
    return {"windows": {f"{a}-{b}": window(pts, a, b) for a, b in WINDOWS},
            "steady_sec_per_kimg": statistics.median(steady) if steady else None,
            "launch_to_4kimg_s": p4[1] if p4 else None, "kimg_reached": run["kimg"],
            "peak_first_tick_gb": run["peaks"][0] if run["peaks"] else None,
            "peak_after_first_tick_gb": max(run["peaks"][1:]) if len(run["peaks"]) > 1 else None}


def _bench(files: dict[str, str], name: str) -> dict[str, Any] | None:
    for line in reversed(files.get(f"{name}.out", "").splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return None


def collect(out: Path) -> dict[str, Any]:
    files, summary = read_stages(out), read_summary(out)
    env = files.get("env.txt", "").splitlines()  # nvidia-smi's CSV (a header, a line per card), then torch's line
    cards = [line.split(",")[0].strip() for line in env if "," in line and not line.startswith("name,")]
    torch_line = next((line for line in env if line.startswith("torch ")), None)
    res: dict[str, Any] = {"card": cards[0] if cards else None, "torch": torch_line, "stages": summary, "runs": {}}
    for name in TRAIN_STAGES:
        if f"{name}.log.jsonl" in files:
            run = ours(files[f"{name}.log.jsonl"], summary.get(name, {}).get("start"))
            res["runs"][name] = {**figures(run), "first_call_sec": run["first_call_sec"],
                                 "kimg_target": run["kimg_target"]}
    if "official.log" in files:
        run = official(files["official.log"])
        res["runs"]["official"] = {**figures(run), "plugins_s": run["plugins_s"]}
    for name in ("tiny-imgs", "bench-profile"):
        rec = _bench(files, name)
        if rec is not None:
            keep = ("img_per_s", "sec_per_kimg", "amp", "batch", "op_calls_per_iter", "phase_saved_mb",
                    "peak_gpu_mem_gb_timed", "phase_sec")
            res[name] = {k: rec[k] for k in keep if k in rec}
    return res


def _f(v: float | None, fmt: str = "{:.2f}", none: str = "not reached") -> str:
    return none if v is None else fmt.format(v)


def markdown(res: dict[str, Any]) -> str:
    runs, st = res["runs"], res["stages"]
    us, off = runs.get("train-auto128"), runs.get("official")
    lines = [f"Card: {res['card'] or 'none found'} ({res['torch'] or 'torch unknown'}), one "
             "`bench/gpu.sh` call; the official code and ours on the same data in the same call.", "",
             "| | official train.py | `flowergan train` (defaults) | official s / ours |", "|---|---|---|---|"]

    def cell(run, key, fmt="{:.2f}", none="not reached"):
        v = run["windows"][key] if run is not None and key in run["windows"] else (run or {}).get(key)
        return "not run" if run is None else _f(v, fmt, none)

    def ratio(a, b):
        return f"{a / b:.2f}x" if a is not None and b is not None and b > 0 else "-"

    for a, b in WINDOWS:
        key = f"{a}-{b}"
        o = off["windows"][key] if off else None
        u = us["windows"][key] if us else None
        if o is None and u is None:
            continue
        lines.append(f"| s/kimg, {key} kimg{' (launch included)' if a == 0 else ''} | {cell(off, key)} | "
                     f"{cell(us, key)} | {ratio(o, u)} |")
    os_, us_ = (off or {}).get("steady_sec_per_kimg"), (us or {}).get("steady_sec_per_kimg")
    lines.append(f"| s/kimg after 4 kimg, median of the ticks (the bar: <= 2.8) | {cell(off, 'steady_sec_per_kimg')} | "
                 f"{cell(us, 'steady_sec_per_kimg')} | {ratio(os_, us_)} |")
    o4, u4 = (off or {}).get("launch_to_4kimg_s"), (us or {}).get("launch_to_4kimg_s")
    lines.append(f"| launch to 4 kimg, s (the bar: <= 60) | {cell(off, 'launch_to_4kimg_s', '{:.1f}')} | "
                 f"{cell(us, 'launch_to_4kimg_s', '{:.1f}')} | {ratio(o4, u4)} |")
    for key, label in (("peak_first_tick_gb", "first tick"), ("peak_after_first_tick_gb", "largest after")):
        lines.append(f"| per-tick peak GPU memory, GB: {label} | {cell(off, key, none='-')} | "
                     f"{cell(us, key, none='-')} | |")
    lines.append(f"| kimg reached | {cell(off, 'kimg_reached', '{:.1f}')} | {cell(us, 'kimg_reached', '{:.1f}')} "
                 "| |")
    lines += ["", "Ticks: the official's are 4 kimg (tick 0: its first iteration, the start-up), ours 1 kimg "
              "(`--log-every 1`); both peaks are reset every tick.", ""]
    if off and off.get("plugins_s") is not None:
        lines.append(f"The official launch includes compiling its CUDA plugins: the last was ready "
                     f"{off['plugins_s']:.1f} s after launch.")
    if us and us.get("first_call_sec"):
        lines.append("Start-up, each phase's first call (s): " + ", ".join(
            f"{k} {v:.1f}" for k, v in us["first_call_sec"].items()) + ".")
    cap = st.get("cap12")
    if cap is not None:
        run = runs.get("cap12", {})
        target = run.get("kimg_target") or 1
        ok = cap.get("rc") == 0 and run.get("kimg_reached", 0) >= target - 1e-6
        lines.append(f"12 GiB cap (`--cuda-memory-gb 12`, {target:g} kimg): "
                     f"{'completed' if ok else 'FAILED' if not cap.get('skipped') else 'skipped'} "
                     f"(exit {cap.get('rc', '-')}, {cap.get('seconds', '-')} s).")
    lite = runs.get("train-lite128")
    if lite:
        done = [f"{k} kimg {v:.2f}" for k, v in lite["windows"].items() if v is not None]
        lines.append(f"lite-128 s/kimg: {', '.join(done) or 'no 4-kimg window reached'}; launch to 4 kimg: "
                     f"{_f(lite['launch_to_4kimg_s'], '{:.1f} s')}; {lite['kimg_reached']:.1f} kimg reached.")
    tiny = res.get("tiny-imgs")
    if tiny:
        lines.append(f"tiny (32x32, batch {tiny.get('batch')}, {tiny.get('amp')}): {tiny['img_per_s']:.0f} img/s "
                     "(the bar: >= 1,000).")
    prof = res.get("bench-profile")
    if prof:
        lines.append(f"bench --profile (batch {prof.get('batch')}): {prof.get('sec_per_kimg', 0):.2f} s/kimg "
                     f"by phase, {prof.get('op_calls_per_iter', 0):.0f} operator calls per iteration, saved for "
                     "backward (MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in prof.get("phase_saved_mb", {}).items())
                     + ".")
    lines += ["", "| stage | exit | seconds | limit |", "|---|---|---|---|"]
    for name, r in st.items():
        lines.append(f"| {name} | {'skipped: ' + r.get('why', '') if r.get('skipped') else r.get('rc')} | "
                     f"{r.get('seconds', '-')} | {r.get('limit', '-')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="the folder bench/gpu.sh wrote ($OUT)")
    ap.add_argument("--json", action="store_true", help="print the collected figures as JSON instead")
    a = ap.parse_args(argv)
    if not (a.out / "summary.jsonl").is_file():
        print(f"gpu_report.py: {a.out}/summary.jsonl not found; give the folder bench/gpu.sh wrote", file=sys.stderr)
        return 2
    res = collect(a.out)
    print(json.dumps(res, indent=1) if a.json else markdown(res), end="" if not a.json else "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
