"""What a person watching training sees: statistics accumulation, reading the JSON-lines log, sample
grids, and a PNG plot of losses, p and FID against kimg (the log backends are in `loggers`)."""

from __future__ import annotations

import json
import logging
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flowergan.infra import atomic_write, make_grid, to_uint8

log = logging.getLogger(__name__)


class StatsAccumulator:
    """Sums of detached scalar tensors on the device; read (one sync) only at log time."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = defaultdict(int)

    def add(self, stats: dict[str, torch.Tensor]) -> None:
        for k, v in stats.items():
            v = v.detach().float()
            self.sums[k] = self.sums[k] + v if k in self.sums else v.clone()
            self.counts[k] += 1

    def nonfinite(self) -> list[str]:
        return [k for k, v in self.sums.items() if not math.isfinite(float(v))]

    def means(self, reduce=None) -> dict[str, float]:
        if not self.sums:
            return {}
        keys = sorted(self.sums)
        t = torch.stack([self.sums[k] / self.counts[k] for k in keys])
        if reduce is not None:
            t = reduce(t)
        return dict(zip(keys, t.cpu().tolist()))

    def reset(self) -> None:
        self.sums.clear()
        self.counts.clear()


def read_log(path: Path) -> list[dict[str, Any]]:
    if not Path(path).is_file():
        return []
    out = []
    for line in Path(path).read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a crash
            continue
    return out


GRID_NAME = re.compile(r"^fakes-(\d+\.\d+)kimg\.png$")


def grid_name(kimg: float) -> str:
    """File name of the sample grid at `kimg` (inside run/samples/)."""
    return f"fakes-{kimg:010.3f}kimg.png"


def rewind_run(run_dir: Path, kimg: float) -> dict[str, int]:
    """After a crash, make the run folder agree with the checkpoint at `kimg` that training resumes from:
    log.jsonl lines past `kimg` (and lines cut by the crash) are dropped, sample grids past `kimg` deleted.
    The resumed run writes them again (identically: resume is exact). Returns what was removed."""
    run_dir = Path(run_dir)
    removed = {"log_lines": 0, "grids": 0}
    path = run_dir / "log.jsonl"
    if path.is_file():
        kept = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rec = json.loads(line)
                ok = isinstance(rec, dict) and not (isinstance(rec.get("kimg"), (int, float))
                                                    and rec["kimg"] > kimg + 1e-9)
            except json.JSONDecodeError:
                ok = False
            if ok:
                kept.append(line)
            else:
                removed["log_lines"] += 1
        if removed["log_lines"]:
            atomic_write(path, lambda tmp: Path(tmp).write_text("".join(line + "\n" for line in kept),
                                                                encoding="utf-8"))
    samples = run_dir / "samples"
    if samples.is_dir():
        for p in samples.iterdir():
            m = GRID_NAME.match(p.name)
            if m and float(m.group(1)) > kimg + 1e-9:
                p.unlink()
                removed["grids"] += 1
    for folder in (run_dir, samples):  # half-written temp files of the killed process (grid, log, plot, json)
        if folder.is_dir():
            for p in folder.iterdir():
                if p.is_file() and p.name.startswith(".") and ".tmp" in p.name:
                    p.unlink(missing_ok=True)
    if any(removed.values()):
        log.info("resume at %.3f kimg: dropped %d log line(s) and %d sample grid(s) written after that checkpoint",
                 kimg, removed["log_lines"], removed["grids"])
    return removed


def save_grid(images: torch.Tensor, path: Path, cols: int | None = None) -> np.ndarray:
    """images [N, C, H, W] float in ~[-1, 1] -> one PNG grid (written atomically); returns it, uint8 [H, W, C]."""
    from PIL import Image

    grid = make_grid(to_uint8(images.detach().float().cpu()), cols=cols)
    C = grid.shape[2]
    img = Image.fromarray(grid[:, :, 0] if C == 1 else grid, "L" if C == 1 else "RGB")
    atomic_write(path, lambda tmp: img.save(tmp, format="PNG"))
    return grid


def plot_progress(log_path: Path, out_path: Path) -> bool:
    """Plot losses, augmentation p and FID against kimg into a PNG; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no progress plot (pip install matplotlib)")
        return False
    recs = [r for r in read_log(log_path) if "kimg" in r]
    if not recs:
        return False
    panels = [("Losses", ["Loss/G/loss", "Loss/D/loss_real", "Loss/D/loss_fake"]),
              ("Regularisers", ["Loss/r1_penalty", "Loss/pl_penalty"]),
              ("Augmentation", ["Progress/augment", "Progress/rt"]),
              ("FID", ["Metrics/fid"])]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4))
    for ax, (title, keys) in zip(axes, panels):
        for k in keys:
            pts = [(r["kimg"], r[k]) for r in recs if isinstance(r.get(k), (int, float)) and math.isfinite(r[k])]
            if pts:
                xs, ys = np.array(pts).T
                ax.plot(xs, ys, marker="o" if len(pts) < 30 else None, ms=3, label=k.split("/")[-1])
        ax.set_title(title)
        ax.set_xlabel("kimg")
        if ax.lines:
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        atomic_write(out_path, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    finally:
        plt.close(fig)
    return True
