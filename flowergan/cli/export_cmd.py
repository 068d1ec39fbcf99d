"""`flowergan export`: a generator as an ONNX / TorchScript / torch.export file, checked by running it."""

from __future__ import annotations

import json
from pathlib import Path

import click

from flowergan import bounds
from flowergan.cli.checks import say_loaded
from flowergan.cli.errors import debug_enabled
from flowergan.cli.shared_options import network_option, truncation_cutoff_option
from flowergan.export.graph import EXPORT_NOISE_MODES, WHATS
from flowergan.export.writers import FORMATS, SUFFIXES

TOLERANCE = 1e-4  # fp32: the largest |file - PyTorch| accepted by the check


def _batch(value: str) -> int | None:
    if value == "dynamic":
        return None
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise click.BadParameter(f"{value[:40]!r}: a batch size >= 1, or 'dynamic'", param_hint="--batch")
    return bounds.check_count(n, "batch", "--batch")


def _check_out(path: Path, network: str, overwrite: bool) -> None:
    """Refuse an --out whose file or FILE.json exists (without --overwrite), or that would replace a file of
    a model folder (its config.json or weights) or the --network file itself, even with --overwrite."""
    from flowergan.export.writers import interface_path
    from flowergan.networks.store import CONFIG_NAME, WEIGHTS_NAME

    companion = interface_path(path)
    src = Path(network).resolve()
    for p in (path, companion):
        rp = p.resolve()
        if rp == src or (p.name in (CONFIG_NAME, WEIGHTS_NAME) and (rp.parent / WEIGHTS_NAME).exists()):
            raise click.UsageError(f"--out {path}: writing {p} would replace a file of the model "
                                   f"{rp.parent if rp != src else src} (the export's interface goes to "
                                   f"FILE.json); choose a name outside the model's files")
        if p.exists() and not overwrite:
            raise click.UsageError(f"--out {path}: {p} already exists; pass --overwrite to replace it (the "
                                   f"export writes FILE and FILE.json: both are replaced)")
        if p.is_dir():
            raise click.UsageError(f"--out {path}: {p} is a folder; give a file name")


def _check_space(path: Path, nbytes: int) -> None:
    """Refuse to start an export whose file would not fit on its disk (a full disk during ONNX or TorchScript
    serialisation can abort the process in C++, with no Python error to report)."""
    import shutil

    folder = path.parent if path.parent.exists() else Path(".")
    free = shutil.disk_usage(folder).free
    if free < nbytes:
        raise click.ClickException(f"--out {path}: the export needs about {nbytes / 2**20:,.1f} MB but only "
                                   f"{free / 2**20:,.1f} MB are free there; free some space or write somewhere "
                                   f"else. Nothing was written.")


@click.command()
@network_option()
@click.option("--format", "fmt", required=True, type=click.Choice(FORMATS),
              help="onnx (runs in onnxruntime), torchscript (torch.jit.load), exported-program (torch.export.load) or "
                   "rosinality (a stylegan2-pytorch checkpoint for pSp, e4e, GANSpace...: docs/use.md).")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="File to write (.onnx / .pt / .pt2 by convention); its interface goes to FILE.json.")
@click.option("--what", type=click.Choice(WHATS), default="generator", show_default=True,
              help="generator: z (, c) -> img; mapping: z (, c) -> ws; synthesis: ws -> img.")
@click.option("--batch", "batch", default="1", show_default=True,
              help="Batch size fixed in the file, or 'dynamic' (any batch from 1 to 4096).")
@click.option("--truncation-psi", type=float, default=1.0, show_default=True,
              help="Truncation towards w_avg, fixed in the file (generator / mapping); a finite number in [-2, 2].")
@truncation_cutoff_option
@click.option("--noise-mode", type=click.Choice(EXPORT_NOISE_MODES), default="const", show_default=True,
              help="const: the model's stored noise, a constant of the graph; none: no noise.")
@click.option("--no-verify", is_flag=True, help="Skip running the written file against PyTorch.")
@click.option("--overwrite", is_flag=True, help="Replace FILE and FILE.json if they exist.")
def export(network: str, fmt: str, out: str, what: str, batch: str, truncation_psi: float,
           truncation_cutoff: int | None, noise_mode: str, no_verify: bool, overwrite: bool) -> None:
    """Export a generator to a file that runs without flowergan, then run it and compare with PyTorch.

    Inputs are float32 z [N, z_dim] (and c [N, c_dim] one-hot labels for a conditional model), or
    ws [N, num_ws, w_dim] for --what synthesis; the output is float32 img [N, C, H, W] in [-1, 1]
    (uint8 = clip(img * 127.5 + 128)). Truncation and noise are constants of the file.

    \b
    Examples:
      flowergan export --network runs/00000-tiny --format onnx --out tiny.onnx --batch dynamic
      flowergan export --network models/ffhq --format torchscript --out g.pt --truncation-psi 0.7
      flowergan export --network models/ffhq --format exported-program --out synth.pt2 --what synthesis
    """
    if fmt == "rosinality":  # its own checks and output: flowergan/cli/rosinality_cmds.py
        from flowergan.cli.rosinality_cmds import export_rosinality
        return export_rosinality(network, out, overwrite, no_verify)
    from flowergan.export.graph import ExportSpec
    from flowergan.export.writers import estimate_bytes, export_network, verify
    from flowergan.inference.loader import load_networks

    n = _batch(batch)
    bounds.check_float(truncation_psi, "--truncation-psi", -2.0, 2.0)
    spec = ExportSpec(what=what, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                      noise_mode=noise_mode, batch=n)
    try:
        spec.validate()
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    path = Path(out)
    _check_out(path, network, overwrite)
    if path.suffix != SUFFIXES[fmt]:
        click.echo(f"note: {fmt} files usually end in {SUFFIXES[fmt]}", err=True)
    m = load_networks(network)
    say_loaded(m.source)
    _check_space(path, estimate_bytes(m.G))  # before a byte is written (the old file stays until the rename)
    try:
        info = export_network(m.G, spec, fmt, path, quiet=not debug_enabled(click.get_current_context()
                                                                            .find_root().params.get("debug", False)))
    except ImportError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB) and {path.name}.json")
    click.echo(json.dumps({k: info[k] for k in ("inputs", "output", "noise", "onnx_opset", "batch")}))
    if not no_verify:
        diff = verify(m.G, spec, fmt, path)
        click.echo(f"checked: max |{fmt} - PyTorch| = {diff:.3g} on seeded inputs")
        if not diff <= TOLERANCE:
            raise click.ClickException(f"{path}: differs from the PyTorch generator by {diff:.3g} "
                                       f"(> {TOLERANCE:g}); the file is kept for inspection")
