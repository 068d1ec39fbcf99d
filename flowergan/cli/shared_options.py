"""Options that more than one command takes, each declared once: `--network`, `--device`, `--class`,
`--noise-mode` and `--truncation-cutoff`."""

from __future__ import annotations

import functools

import click

from flowergan.cli.checks import network_path
from flowergan.config import NOISE_MODES

NETWORK_HELP = "Model folder, run folder (its newest checkpoint), folder of runs (the newest) or official .pkl."


def network_option(required: bool = True, help: str = NETWORK_HELP):
    """--network: a path that must exist (the error lists the networks that do)."""
    return click.option("--network", required=required, default=None, type=click.Path(), callback=network_path,
                        help=help)


device_option = click.option("--device", default="auto", show_default=True,
                             help="auto (CUDA if available), cpu, cuda, cuda:1…")

class_option = click.option("--class", "class_idx", type=int, default=None,
                            help="Class index (conditional models only).")
noise_mode_option = click.option("--noise-mode", type=click.Choice(NOISE_MODES), default="const", show_default=True,
                                  help="Per-pixel noise: the model's fixed maps, random (seeded per image), or none.")
truncation_cutoff_option = click.option("--truncation-cutoff", type=click.IntRange(min=0), default=None,
                                        help="Truncate only the first N ws (default: all).")


def network_options(fn):
    """--network and --device."""

    @network_option()
    @device_option
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapper
