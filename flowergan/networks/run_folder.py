"""The layout of a training run folder, in one place: its file and folder names, how runs are numbered, and
which checkpoints a run holds. The trainer writes this layout; `--network`, `--resume`, model cards and the
progress plot read it through these names and functions.

    OUT/NNNNN-<desc>/              one run (numbered like the official trainer's)
        config.json                the run record (training/run_record.py)
        log.jsonl                  one JSON object a line: the config, then the scalars of every tick
        samples/ , progress.png    sample grids, the plot of the log
        latest.json                the newest checkpoint, its kimg and whether the run is done
        checkpoints/snapshot-<nimg, 10 digits>/   one checkpoint (a model folder plus the training state)
"""

from __future__ import annotations

import re
from pathlib import Path

from flowergan.networks.store import is_model_dir

CHECKPOINTS_DIR = "checkpoints"
RUN_CONFIG = "config.json"
LOG_FILE = "log.jsonl"
SAMPLES_DIR = "samples"
PROGRESS_PLOT = "progress.png"
LATEST = "latest.json"

_RUN = re.compile(r"^(\d+)-")
_CHECKPOINT = re.compile(r"snapshot-(\d+)")


def checkpoint_name(cur_nimg: int) -> str:
    """The folder name of the checkpoint at `cur_nimg` images (names sort by image count)."""
    return f"snapshot-{cur_nimg:010d}"


def checkpoint_nimg(ckpt_dir: str | Path) -> int | None:
    """The image count a checkpoint folder is named for (None for another name)."""
    m = _CHECKPOINT.fullmatch(Path(ckpt_dir).name)
    return int(m.group(1)) if m else None


def checkpoint_dirs(run_dir: str | Path, complete: bool = False) -> list[Path]:
    """A run's checkpoint folders, oldest first; `complete`: only those holding a whole model folder (an
    interrupted save leaves a hidden temp folder, never a half-written `snapshot-*`; a damaged one stays listed
    without `complete`, so `--resume` can say why it skips it)."""
    d = Path(run_dir) / CHECKPOINTS_DIR
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir()
                  if p.is_dir() and _CHECKPOINT.fullmatch(p.name) and (not complete or is_model_dir(p)))


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    return checkpoint_dirs(run_dir, complete=True)


def runs_in(folder: str | Path, complete: bool = False) -> list[Path]:
    """The run folders directly inside `folder` (those holding checkpoints, complete ones with `complete`),
    oldest first: by name, which is by number for the runs flowergan makes."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(q for q in folder.iterdir()
                  if q.is_dir() and not q.name.startswith(".") and checkpoint_dirs(q, complete))


def next_run_dir(out: Path, desc: str) -> Path:
    """out/NNNNN-desc with the next free number (like the official trainer); nothing is created."""
    out = Path(out)
    ids = [int(m.group(1)) for p in out.iterdir() if (m := _RUN.match(p.name))] if out.is_dir() else []
    return out / f"{(max(ids) + 1 if ids else 0):05d}-{desc}"


def new_run_dir(out: Path, desc: str) -> Path:
    """Create out/NNNNN-desc with the next free number."""
    Path(out).mkdir(parents=True, exist_ok=True)
    run = next_run_dir(out, desc)
    run.mkdir()
    return run
