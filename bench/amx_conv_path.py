"""The cost of the AMX bf16 convolution workaround (flowergan/ops/conv.py, `_ConvExplicitGrad`) on a training step.

Runs `flowergan bench --what train` in fresh processes, alternating the workaround on (as shipped: taken on CPUs
with AMX) and forced off, and prints one JSON line with every run's images/s and the medians. Meaningful only on a
CPU with AMX (`grep -o amx_bf16 /proc/cpuinfo`); elsewhere both arms run the same code.

    PYTHONPATH=. .venv/bin/python bench/amx_conv_path.py --pairs 6
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

_CHILD = """
import json, sys
from click.testing import CliRunner
import flowergan.ops.conv as conv_ops
if sys.argv[1] == "off":
    conv_ops._cpu_has_amx = lambda: False
from flowergan.cli.main import cli
res = CliRunner().invoke(cli, sys.argv[2:])
print([line for line in res.output.splitlines() if line.startswith("{")][-1])
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=6, help="on/off pairs, alternated")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5, help="timed steps per run (bench's median)")
    a = ap.parse_args()
    bench = ["bench", "--what", "train", "--preset", a.preset, "--batch", str(a.batch), "--amp", "bf16",
             "--repeats", str(a.repeats)]
    runs: dict[str, list[float]] = {"on": [], "off": []}
    for i in range(a.pairs):
        for arm in ("on", "off"):
            out = subprocess.run([sys.executable, "-c", _CHILD, arm, *bench], capture_output=True, text=True,
                                 check=True).stdout
            runs[arm].append(round(json.loads(out.strip().splitlines()[-1])["img_per_s"], 2))
            print(f"pair {i + 1}/{a.pairs} {arm}: {runs[arm][-1]} img/s", file=sys.stderr)
    med = {arm: statistics.median(v) for arm, v in runs.items()}
    print(json.dumps({"command": "flowergan " + " ".join(bench), "img_per_s": runs, "median": med,
                      "cost": round(1 - med["on"] / med["off"], 4)}))


if __name__ == "__main__":
    main()
