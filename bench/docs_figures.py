"""Make the figures of docs/use.md and docs/training.md into docs/images/ (small PNGs), with the real commands.

    PYTHONPATH=. .venv/bin/python bench/docs_figures.py --out /tmp/figs         # a random-weight tiny model
    PYTHONPATH=. .venv/bin/python bench/docs_figures.py --network runs/figs/00000-tiny-flowers-32-b16 \
        --log runs/figs/00000-tiny-flowers-32-b16/log.jsonl          # the docs' figures (run: docs/use.md)

Writes fig-mix.png, fig-truncation.png, fig-edit-strip.png (flowergan mix / truncation / directions + edit),
fig-walk-grid.png (the first frame of `flowergan interpolate --grid 3x2`), fig-progress.png (the progress plot
of `--log`, or of a synthetic log shaped like a long ADA run when none is given: the docs say which) and
fig-explorer.png (the explorer's first load in headless Chromium, when Chromium and Playwright are installed).
Without --network the model is `tiny` with random weights (as the tests use): its images are textures, not
flowers (a check of the layout only). Look at every image before committing it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import PIL.Image

REPO = Path(__file__).resolve().parents[1]


def tiny_model(folder: Path) -> Path:
    """The `tiny` generator with random weights, toRGB scaled by 0.4 (few clipped pixels) and w_avg set to the
    mean w of 2,000 seeds (so truncation does something), saved as a model folder."""
    import torch

    from flowergan.config import preset
    from flowergan.networks import build_networks
    from flowergan.networks.store import write_model_dir

    cfg = preset("tiny")
    G, D = build_networks(cfg, seed=0)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if "torgb.weight" in name:
                p.mul_(0.4)
        z = torch.from_numpy(np.random.RandomState(123).randn(2000, cfg.z_dim))
        G.mapping.w_avg.copy_(G.mapping(z, None)[:, 0].mean(0))
    return write_model_dir(folder / "tiny", cfg, {"G": G, "G_ema": G, "D": D})


def flowergan(*args) -> None:
    cmd = [sys.executable, "-m", "flowergan", *map(str, args)]
    print("$ flowergan " + " ".join(map(str, args)))
    subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL)


def small_png(src: Path, dest: Path, colors: int = 256) -> None:
    """Save as an adaptive-palette PNG (a fraction of the bytes; the figures have few colours)."""
    with PIL.Image.open(src) as im:
        im = im.convert("RGB")
        im.quantize(colors=colors, method=PIL.Image.Quantize.MEDIANCUT, dither=PIL.Image.Dither.NONE).save(
            dest, optimize=True)
    print(f"  -> {dest} ({dest.stat().st_size / 1024:.0f} KB, {im.size[0]}x{im.size[1]})")


def synthetic_log(path: Path, n: int = 400, seed: int = 0) -> None:
    """A log.jsonl shaped like a long ADA run (noisy losses, p rising while r_t is above 0.6, FID every 50
    lines): an illustration of the plot's layout, not a measurement."""
    rng = np.random.default_rng(seed)
    p, lines = 0.0, [{"config": {"note": "synthetic log made by bench/docs_figures.py"}}]
    for i in range(1, n + 1):
        kimg = i * 0.5
        rt = 0.6 + 0.25 * math.exp(-i / 120) + rng.normal(0, 0.05)
        p = max(0.0, p + (0.003 if rt > 0.6 else -0.003))
        rec = {"kimg": kimg, "Loss/G/loss": 1.2 + 0.6 * math.exp(-i / 60) + rng.normal(0, 0.25),
               "Loss/D/loss_real": 0.55 + rng.normal(0, 0.12), "Loss/D/loss_fake": 0.5 + rng.normal(0, 0.12),
               "Progress/augment": p, "Progress/rt": rt}
        if i % 4 == 0:
            rec["Loss/r1_penalty"] = 0.05 * math.exp(-i / 200) + abs(rng.normal(0, 0.005))
            rec["Loss/pl_penalty"] = 0.3 + abs(rng.normal(0, 0.1))
        lines.append(rec)
        if i % 50 == 0:
            lines.append({"kimg": kimg, "Metrics/fid": 300 * math.exp(-i / 150) + 40})
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))


def explorer_screenshot(network: Path, dest: Path) -> bool:
    """The explorer's first load, full page, in headless Chromium; False when Chromium/Playwright are missing."""
    chromium = os.environ.get("FLOWERGAN_CHROMIUM", "/usr/bin/chromium")
    if not os.path.isfile(chromium):
        chromium = shutil.which("chromium") or ""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        chromium = ""
    if not chromium:
        print("  (no Chromium/Playwright: skipping the explorer screenshot; see .ci/install-browser.sh)")
        return False
    import flowergan as fg
    from flowergan.web import make_server

    server = make_server(fg.load(network, device="cpu"), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(server.url, wait_until="domcontentloaded")
            page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=120_000)
            page.evaluate("() => document.querySelector('#walk-play').click()")  # a still frame, not mid-swap
            with tempfile.TemporaryDirectory() as tmp:
                shot = Path(tmp) / "explorer.png"
                page.screenshot(path=str(shot), full_page=True)
                small_png(shot, dest)
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return True


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--network", type=Path, default=None, help="A model or run folder (default: random tiny).")
    ap.add_argument("--log", type=Path, default=None, help="A run's log.jsonl for fig-progress.png.")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="docs-figures-") as tmp:
        tmp = Path(tmp)
        net = args.network or tiny_model(tmp)
        flowergan("mix", "--network", net, "--rows", "1,2,3", "--cols", "4,5,6,7", "--styles", "coarse",
                  "--out", tmp / "mix.png")
        small_png(tmp / "mix.png", args.out / "fig-mix.png")
        flowergan("truncation", "--network", net, "--seeds", "1,2", "--psi", "1,0.7,0.4,0",
                  "--out", tmp / "trunc.png")
        small_png(tmp / "trunc.png", args.out / "fig-truncation.png")
        dirs = tmp / "dirs.safetensors"
        flowergan("directions", "--network", net, "--method", "sefa", "--num", "4", "--samples", "2000",
                  "--out", dirs)
        flowergan("edit", "--network", net, "--directions", dirs, "--dir", "0", "--seeds", "1,2",
                  "--strength", "-4:4:5", "--out", tmp / "strip.png")
        small_png(tmp / "strip.png", args.out / "fig-edit-strip.png")
        flowergan("interpolate", "--network", net, "--seeds", "0-11", "--grid", "3x2", "--frames", "4",
                  "--out", tmp / "walk.gif")
        with PIL.Image.open(tmp / "walk.gif") as gif:
            gif.seek(0)
            gif.convert("RGB").save(tmp / "walk0.png")
        small_png(tmp / "walk0.png", args.out / "fig-walk-grid.png")

        from flowergan.training.progress import plot_progress

        log = args.log
        if log is None:
            log = tmp / "log.jsonl"
            synthetic_log(log)
        print(f"$ plot_progress({log if args.log else 'a synthetic log'})")
        if not plot_progress(log, tmp / "progress.png"):
            raise SystemExit(f"{log}: nothing to plot (or matplotlib is missing)")
        small_png(tmp / "progress.png", args.out / "fig-progress.png")
        print("$ the explorer's first load in headless Chromium")
        explorer_screenshot(net, args.out / "fig-explorer.png")
    total = sum((args.out / n).stat().st_size for n in ("fig-mix.png", "fig-truncation.png", "fig-edit-strip.png",
                                                         "fig-walk-grid.png", "fig-progress.png", "fig-explorer.png")
                if (args.out / n).exists())
    print(f"total {total / 1024:.0f} KB in {args.out}")


if __name__ == "__main__":
    main()
