"""Checks of command-line input on top of flowergan.bounds: click callbacks for bounded counts and finite
floats, the --device check, and loading a --network with its path in every error."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click

from flowergan import bounds
from flowergan.cli.errors import BAD_INPUT, classify
from flowergan.errors import BadInput

__all__ = ["count", "finite", "resolve_device", "about", "load_pipeline", "network_path", "say_loaded"]


def _flag(param: click.Parameter | None) -> str:
    return param.opts[0] if param is not None and param.opts else "value"


def count(limit_name: str):
    """A click callback: an integer option must not exceed limit `limit_name` (see flowergan.bounds)."""

    def check(ctx: click.Context, param: click.Parameter, value):
        if value is None:
            return value
        try:
            return bounds.check_count(value, limit_name, _flag(param))
        except BadInput as e:
            raise click.BadParameter(str(e).removeprefix(f"{_flag(param)}: "), ctx, param) from None

    return check


def finite(lo: float | None = None, hi: float | None = None, positive: bool = False):
    """A click callback: a float option must be finite (no nan/inf), within [lo, hi], and > 0 if `positive`."""

    def check(ctx: click.Context, param: click.Parameter, value):
        if value is None:
            return value
        try:
            v = bounds.check_float(value, _flag(param), lo, hi)
        except BadInput as e:
            raise click.BadParameter(str(e).removeprefix(f"{_flag(param)}: "), ctx, param) from None
        if positive and v <= 0:
            raise click.BadParameter(f"{v:g}: must be greater than 0", ctx, param)
        return v

    return check


def resolve_device(name: str, where: str = "--device") -> str:
    """'auto' -> 'cuda' if available else 'cpu'; any other name must be a device torch knows and can use here."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise BadInput(f"{where} {name!r}: not a device name; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA support" if torch.version.cuda is None else "no GPU is visible"
            raise BadInput(f"{where} {name}: CUDA is not available here ({why}); use --device cpu or auto")
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise BadInput(f"{where} {name}: there are {n} CUDA device(s), numbered 0 to {n - 1}")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise BadInput(f"{where} {name}: MPS is not available here; use --device cpu or auto")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise BadInput(f"{where} {name}: flowergan runs on cpu, cuda or mps")
    return name


@contextlib.contextmanager
def about(where: str) -> Iterator[None]:
    """Bad-input failures inside the block get `where: ` (the flag and its value) in front of their message."""
    try:
        yield
    except BadInput:
        raise
    except Exception as e:  # noqa: BLE001 - classified, re-raised with context, or passed on untouched
        got = classify(e)
        if got is None or got[0] != BAD_INPUT:
            raise
        msg = got[1]
        raise BadInput(msg if msg.startswith(where) else f"{where}: {msg}") from e


def network_path(ctx: click.Context, param: click.Parameter, value):
    """A click callback for --network: the path must exist; if not, the error names the networks that do."""
    from pathlib import Path

    from flowergan.networks.locate import available_networks

    if value is None or Path(value).exists():
        return value
    raise click.BadParameter(f"{value}: does not exist. {available_networks(Path(value))}", ctx, param)


def say_loaded(source) -> None:
    """Tell the user which file or checkpoint a command loaded (on stderr: stdout stays the command's output)."""
    click.echo(f"network: {source}", err=True)


def load_pipeline(network: str, device: str):
    """flowergan.load with the device checked first and the network's path in every load error; says which
    checkpoint it loaded."""
    from flowergan.inference import load

    dev = resolve_device(device)
    with about(f"--network {network}"):
        pipe = load(network, device=dev)
    say_loaded(pipe.source)
    return pipe
