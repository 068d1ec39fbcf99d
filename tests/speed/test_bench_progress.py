"""`flowergan bench --what train` streams progress (issue #23): a line as each part ends, phases named, so a run
stopped at a time limit shows where its time went; the JSON on stdout is unchanged."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flowergan.benchmarking.training import bench_train
from flowergan.config import preset

ROOT = Path(__file__).resolve().parents[2]
PHASES = ("Gmain", "Greg", "Dmain", "Dreg")
CFG = preset("tiny").replace(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)


def test_progress_names_every_phase_call_as_it_happens():
    got: list[tuple[float, str]] = []
    t0 = time.perf_counter()
    rec = bench_train(CFG, batch=2, repeats=2, warmup=1, flops=False,
                      progress=lambda m: got.append((time.perf_counter(), m)))
    total = time.perf_counter() - t0
    msgs = [m for _, m in got]
    assert msgs[0].startswith("networks, data and optimisers built: ")
    for name in PHASES:  # first call (the warm-up), then the two timed repeats, in order
        mine = [m for m in msgs if m.startswith(name + " ")]
        assert [m.split(":")[0] for m in mine] == [f"{name} first call 1/3", f"{name} repeat 2/3",
                                                    f"{name} repeat 3/3"]
    assert msgs[-2].startswith("timed: ") and msgs[-1].startswith("done: ")
    assert got[-1][0] - t0 <= total
    reported = [float(re.search(r": ([0-9.]+) s$", m).group(1)) for m in msgs if " call " in m or " repeat " in m]
    assert max(reported) > 0.01  # long enough for lines printed only at the end to fail the check below
    for (t_prev, _), (t, m) in zip(got, got[1:]):  # each line came as its part ended, not batched at the end:
        if " call " in m or " repeat " in m:        # the gap before it holds the whole timed call it reports
            assert t - t_prev >= float(re.search(r": ([0-9.]+) s$", m).group(1)) - 5e-4, m
    secs = {m.split(":")[0]: float(re.search(r": ([0-9.]+) s$", m).group(1)) for m in msgs if " repeat " in m}
    for name in PHASES:  # the reported median is the median of the repeats the lines showed
        reps = sorted(v for k, v in secs.items() if k.startswith(name))
        assert rec["phase_sec"][name] == pytest.approx(sum(reps) / 2, rel=1e-2, abs=1e-3)


@pytest.mark.slow
def test_cli_streams_timestamped_lines_before_the_json():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    p = subprocess.run([sys.executable, "-m", "flowergan", "bench", "--what", "train", "--preset", "tiny",
                        "--batch", "2", "--repeats", "1", "--warmup", "0"], cwd=ROOT, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-2000:]
    lines = p.stdout.splitlines()
    js = [i for i, line in enumerate(lines) if line.startswith("{")]
    assert len(js) == 1 and js[0] == len(lines) - 1  # the one JSON line, last
    assert json.loads(lines[-1])["what"] == "train"
    bench = [line for line in lines if " bench: " in line]
    assert all(re.match(r"^\[\d\d:\d\d:\d\d \+\d+\.\ds\] bench: ", line) for line in bench)
    for name in PHASES:
        assert any(f"bench: {name} first call 1/1: " in line for line in bench)
        assert any(f"bench: {name} operators counted: " in line for line in bench)
    assert bench[-1].split("bench: ")[1].startswith("done: ")
