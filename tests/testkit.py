"""Helpers shared by the use-area and web tests: a tiny random-weight model, the official uint8 conversion, the CLI
in-process, PNG reading."""

from __future__ import annotations

import numpy as np
import torch

from flowergan.config import preset
from flowergan.networks import build_networks


def make_tiny(c_dim: int = 0, seed: int = 0):
    """A `tiny` generator with random weights, nudged to behave a little like a trained one:
    toRGB weights scaled by 0.4 (outputs mostly inside [-1, 1], so little clipping), noise strength 0.05
    (so 'random' and 'const' noise differ), and w_avg set to the mean w of 2000 seeds (so psi matters)."""
    cfg = preset("tiny").replace(c_dim=c_dim)
    G, D = build_networks(cfg, seed=seed)
    G, D = G.eval(), D.eval()
    with torch.no_grad():
        for name, p in G.named_parameters():
            if "torgb.weight" in name:
                p.mul_(0.4)
            if "noise_strength" in name:
                p.fill_(0.05)
        z = torch.from_numpy(np.random.RandomState(123).randn(2000, cfg.z_dim))
        c = torch.zeros([2000, c_dim])
        if c_dim:
            c[:, 0] = 1
        G.mapping.w_avg.copy_(G.mapping(z, c)[:, 0].mean(0))
    return cfg, G, D


def official_uint8(x: torch.Tensor) -> np.ndarray:
    """The official float -> uint8 conversion, written out independently of flowergan.inference."""
    return (x.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()


def one_thread():
    """Fixture body: tiny models run fastest on one thread, and the test machine's cores are shared."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def dry_run_sections(text: str) -> dict[str, dict[str, str]]:
    """`train --dry-run`'s readable report -> {'settings' | 'train' | 'model': {name: value as printed}}."""
    heads = {"Resolved settings:": "settings", 'Training options (RUN/config.json "train"):': "train",
             'Model (RUN/config.json "model"):': "model"}
    out: dict[str, dict[str, str]] = {}
    cur = None
    for line in text.splitlines():
        if line in heads:
            cur = out.setdefault(heads[line], {})
        elif cur is not None and line.startswith("  "):
            name, _, value = line.strip().partition("  ")
            cur[name] = value.strip()
        else:
            cur = None
    return out


def shown(v) -> str:
    """A value as the dry-run report prints it (None '-', booleans yes/no, lists comma-separated)."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (list, tuple)):
        return ", ".join(shown(x) for x in v) or "-"
    return str(v)


def run_cli(args, ok: bool = True):
    """`flowergan ARGS` in this process (click's runner, exceptions not caught); exit 0 checked unless `ok` is False."""
    from click.testing import CliRunner

    from flowergan.cli.main import cli

    res = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert res.exit_code == 0, res.output
    return res


def read_png(path) -> np.ndarray:
    """An image file as uint8 RGB [H, W, 3]."""
    import PIL.Image

    with PIL.Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def open_explorer(browser, url: str, timeout_ms: float = 30000, accept_downloads: bool = False):
    """A new page on the explorer at `url`, once its script says ready; -> (page, the page's errors so far and
    later: uncaught exceptions and console errors)."""
    page = browser.new_page(accept_downloads=accept_downloads)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=timeout_ms)
    return page, errors
