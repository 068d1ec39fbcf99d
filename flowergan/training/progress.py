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
from flowergan.networks.run_folder import LOG_FILE, SAMPLES_DIR

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
    path = run_dir / LOG_FILE
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
    samples = run_dir / SAMPLES_DIR
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


# the curves of progress.png: log key -> legend label (which network each loss belongs to, in words)
LOSS_CURVES = {"Loss/G/loss": "G loss (fakes judged real)", "Loss/D/loss_real": "D loss on reals",
               "Loss/D/loss_fake": "D loss on fakes"}
REG_CURVES = {"Loss/r1_penalty": "D: R1 penalty", "Loss/pl_penalty": "G: path-length penalty"}
ADA_TARGET = 0.6  # the official ADA target of r_t (sign of D on reals)


def smooth(ys: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over `window` points (shrinking at the ends): same length as `ys`."""
    ys = np.asarray(ys, dtype=np.float64)
    n = len(ys)
    if window <= 1 or n < 3:
        return ys.copy()
    h = window // 2
    c = np.concatenate([[0.0], np.cumsum(ys)])
    lo, hi = np.maximum(np.arange(n) - h, 0), np.minimum(np.arange(n) + h + 1, n)
    return (c[hi] - c[lo]) / (hi - lo)


def _series(recs: list[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray] | None:
    pts = [(r["kimg"], r[key]) for r in recs
           if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool) and math.isfinite(r[key])]
    if not pts:
        return None
    xs, ys = np.array(pts, dtype=np.float64).T
    return xs, ys


def _curve(ax, xs: np.ndarray, ys: np.ndarray, label: str, color) -> None:
    """The raw values faint, a smoothed curve over them (markers when there are few points)."""
    if len(xs) < 30:
        ax.plot(xs, ys, marker="o", ms=3, color=color, label=label)
        return
    ax.plot(xs, ys, color=color, alpha=0.25, lw=0.8)
    ax.plot(xs, smooth(ys, max(3, len(xs) // 25)), color=color, lw=1.8, label=label)


def progress_figure(records: list[dict[str, Any]]):
    """A matplotlib Figure of training progress against kimg, or None when there is nothing to plot.

    Panels, each only when the log holds its values: "Losses" (G and D, named), "Regularisers" (R1 of D,
    path length of G), "ADA" (p on the left axis, r_t on its own right axis with the 0.6 target line; only when
    p moved or r_t was logged) and "Metrics" (FID etc., only when metrics ran).
    """
    import matplotlib
    from matplotlib.figure import Figure

    recs = [r for r in records if isinstance(r, dict) and isinstance(r.get("kimg"), (int, float))]
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]

    def group(curves: dict[str, str]) -> list[tuple[str, np.ndarray, np.ndarray]]:
        return [(label, *xy) for key, label in curves.items() if (xy := _series(recs, key)) is not None]

    losses, regs = group(LOSS_CURVES), group(REG_CURVES)
    p, rt = _series(recs, "Progress/augment"), _series(recs, "Progress/rt")
    ada = rt is not None or (p is not None and bool(np.any(p[1] != 0)))
    metric_keys = sorted({k for r in recs for k in r if k.startswith("Metrics/")})
    metrics = [(k.split("/", 1)[1].upper(), *xy) for k in metric_keys if (xy := _series(recs, k)) is not None]
    panels = [name for name, show in (("Losses", losses), ("Regularisers", regs), ("ADA", ada),
                                      ("Metrics", metrics)) if show]
    if not panels:
        return None
    cols = len(panels) if len(panels) <= 3 else 2
    rows = (len(panels) + cols - 1) // cols
    fig = Figure(figsize=(5.0 * cols, 3.6 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(panels):]:
        ax.remove()
    for ax, name in zip(axes, panels):
        ax.set_xlabel("kimg (thousands of real images shown)")
        ax.grid(alpha=0.3)
        if name in ("Losses", "Regularisers"):
            curves = losses if name == "Losses" else regs
            for i, (label, xs, ys) in enumerate(curves):
                _curve(ax, xs, ys, label, colors[i % len(colors)])
            ax.set_title("Losses: G and D" if name == "Losses" else "Regularisers")
            if name == "Regularisers" and all(np.all(ys > 0) for _, _, ys in curves):
                ax.set_yscale("log")
            ax.legend(fontsize=8)
        elif name == "ADA":
            ax.set_title(f"ADA: augmentation p, and r_t against its target {ADA_TARGET}")
            if p is not None:
                _curve(ax, p[0], p[1], "p (augment probability)", colors[0])
            ax.set_ylabel("p", color=colors[0])
            ax.set_ylim(bottom=0)
            handles, labels = ax.get_legend_handles_labels()
            if rt is not None:
                ax_rt = ax.twinx()
                _curve(ax_rt, rt[0], rt[1], "r_t (D's sign on reals)", colors[1])
                ax_rt.axhline(ADA_TARGET, color=colors[1], ls="--", lw=1, label=f"r_t target {ADA_TARGET}")
                ax_rt.set_ylabel("r_t", color=colors[1])
                ax_rt.set_ylim(min(0.0, float(rt[1].min())), max(1.0, float(rt[1].max())))
                h2, l2 = ax_rt.get_legend_handles_labels()
                handles, labels = handles + h2, labels + l2
            ax.legend(handles, labels, fontsize=8, loc="upper left")
        else:
            for i, (label, xs, ys) in enumerate(metrics):
                ax.plot(xs, ys, marker="o", ms=4, color=colors[(i + 3) % len(colors)], label=label)
            ax.set_title("Metrics (lower is better)" if all(m[0].startswith(("FID", "KID")) for m in metrics)
                         else "Metrics")
            ax.legend(fontsize=8)
    return fig


def plot_progress(log_path: Path, out_path: Path) -> bool:
    """Plot the training log (see `progress_figure`) into a PNG; False when matplotlib is missing or the log
    holds nothing to plot."""
    try:
        import matplotlib  # noqa: F401 - only to see that it is installed
    except ImportError:
        log.warning("matplotlib is not installed: no progress plot (pip install matplotlib)")
        return False
    fig = progress_figure(read_log(log_path))
    if fig is None:
        return False
    atomic_write(out_path, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    return True
