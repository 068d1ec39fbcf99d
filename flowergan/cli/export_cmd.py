"""`flowergan export`: a generator as an ONNX / TorchScript / torch.export file, checked by running it."""

from __future__ import annotations

import json
from pathlib import Path

import click

from flowergan.cli.checks import network_path, say_loaded
from flowergan.cli.errors import debug_enabled
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
        raise click.BadParameter(f"{value!r}: a batch size >= 1, or 'dynamic'", param_hint="--batch")
    return n


@click.command()
@click.option("--network", required=True, type=click.Path(), callback=network_path,
              help="Model folder, run folder (latest checkpoint) or official .pkl.")
@click.option("--format", "fmt", required=True, type=click.Choice(FORMATS),
              help="onnx (runs in onnxruntime), torchscript (torch.jit.load) or exported-program (torch.export.load).")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="File to write (.onnx / .pt / .pt2 by convention); its interface goes to FILE.json.")
@click.option("--what", type=click.Choice(WHATS), default="generator", show_default=True,
              help="generator: z (, c) -> img; mapping: z (, c) -> ws; synthesis: ws -> img.")
@click.option("--batch", "batch", default="1", show_default=True,
              help="Batch size fixed in the file, or 'dynamic' (any batch from 1 to 4096).")
@click.option("--truncation-psi", type=click.FloatRange(-2, 2), default=1.0, show_default=True,
              help="Truncation towards w_avg, fixed in the file (generator / mapping).")
@click.option("--truncation-cutoff", type=click.IntRange(min=0), default=None,
              help="Truncate only the first N ws (default: all).")
@click.option("--noise-mode", type=click.Choice(EXPORT_NOISE_MODES), default="const", show_default=True,
              help="const: the model's stored noise, a constant of the graph; none: no noise.")
@click.option("--no-verify", is_flag=True, help="Skip running the written file against PyTorch.")
@click.option("--overwrite", is_flag=True, help="Replace FILE if it exists.")
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
    from flowergan.export.graph import ExportSpec
    from flowergan.export.writers import export_network, verify
    from flowergan.inference.loader import load_networks

    n = _batch(batch)
    spec = ExportSpec(what=what, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                      noise_mode=noise_mode, batch=n)
    try:
        spec.validate()
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    path = Path(out)
    if path.exists() and not overwrite:
        raise click.UsageError(f"--out {out} already exists; pass --overwrite to replace it")
    if path.suffix != SUFFIXES[fmt]:
        click.echo(f"note: {fmt} files usually end in {SUFFIXES[fmt]}", err=True)
    m = load_networks(network)
    say_loaded(m.source)
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
