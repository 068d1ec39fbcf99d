"""Write the newest checkpoint's G_ema of a run folder as a small model folder (fp16 tensors: a 20M-parameter
generator is ~42 MB), for bringing a GPU run's generator back to compute FID elsewhere. Loading it
(`flowergan.networks.store.load_model_dir`) casts the weights back to float32.

    python bench/pack_gema.py RUNS_DIR OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from flowergan.networks.locate import list_checkpoints
from flowergan.networks.store import load_model_dir, write_model_dir


def pack_checkpoint(ckpt: Path, out: Path | str) -> None:
    """The G_ema of checkpoint folder `ckpt` -> model folder `out`, its tensors in fp16."""
    d = load_model_dir(ckpt, which=("G_ema",))
    write_model_dir(out, d["config"], {"G_ema": d["G_ema"].to(torch.float16)},
                    meta={"source": str(ckpt), "dtype": "float16"})


def main(runs: str, out: str) -> None:
    ckpts = sorted((c for run in Path(runs).iterdir() if run.is_dir() for c in list_checkpoints(run)),
                   key=lambda p: p.stat().st_mtime)
    if not ckpts:
        raise SystemExit(f"pack_gema: no checkpoint under {runs}")
    pack_checkpoint(ckpts[-1], out)
    print(json.dumps({"bench": "pack_gema", "checkpoint": str(ckpts[-1]), "out": out}))


if __name__ == "__main__":
    main(*sys.argv[1:3])
