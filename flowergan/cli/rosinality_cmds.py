"""`flowergan import-rosinality` and the rosinality branch of `flowergan export`: weights for the editing and
inversion tools built on rosinality's stylegan2-pytorch (pSp, e4e, HyperStyle, GANSpace, InterFaceGAN)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from click.core import ParameterSource

from flowergan.cli.checks import about

TOLERANCE = 1e-4  # the largest |image difference| accepted when the written file is read back

# export options that describe a graph; a rosinality checkpoint holds weights, so they have no meaning there
_GRAPH_ONLY = {"what": "--what", "batch": "--batch", "truncation_psi": "--truncation-psi",
               "truncation_cutoff": "--truncation-cutoff", "noise_mode": "--noise-mode"}


def _refuse_graph_options() -> None:
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return
    given = [flag for name, flag in _GRAPH_ONLY.items()
             if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)]
    if given:
        raise click.UsageError(
            f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} not apply to --format rosinality: the "
            f"checkpoint holds weights and latent_avg; "
            f"truncation and noise are chosen when sampling (g([z], truncation=psi, truncation_latent=latent_avg, "
            f"randomize_noise=False)). Drop the option.")


def export_rosinality(network: str, out: str, overwrite: bool, no_verify: bool) -> None:
    """`flowergan export --format rosinality`: refuse what does not apply, write, print the Generator
    arguments, read the file back (weights_only) and compare images."""
    from flowergan.compat.rosinality import rosinality_args
    from flowergan.export.rosinality import verify_rosinality, write_rosinality
    from flowergan.inference.loader import load_networks

    _refuse_graph_options()
    path = Path(out)
    if path.exists() and not overwrite:
        raise click.UsageError(f"--out {out} already exists; pass --overwrite to replace it")
    if path.suffix != ".pt":
        click.echo("note: rosinality checkpoints usually end in .pt", err=True)
    with about(f"--network {network}"):
        m = load_networks(network)
        args = rosinality_args(m.config)  # refuses what rosinality's Generator cannot represent, before writing
    info = write_rosinality(m.G, path)
    click.echo(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB) and {path.name}.json")
    click.echo(f"rosinality: {args.call()}; load_state_dict(ckpt['g_ema']), truncation_latent=ckpt['latent_avg']")
    click.echo("generator_args: " + json.dumps(info["generator_args"]))
    for note in info["notes"]:
        click.echo(f"note: {note}")
    if not no_verify:
        diff = verify_rosinality(m.G, path)
        click.echo(f"checked: read back with torch.load(weights_only=True) and converted again: max |image "
                   f"difference| = {diff:.3g} on seeded z")
        if not diff <= TOLERANCE:
            raise click.ClickException(f"{path}: reads back {diff:.3g} away from the generator (> {TOLERANCE:g}); "
                                       f"the file is kept for inspection")


@click.command("import-rosinality")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--overwrite", is_flag=True, help="Replace OUT_DIR if it exists.")
def import_rosinality(checkpoint: str, out_dir: str, overwrite: bool) -> None:
    """Convert a rosinality stylegan2-pytorch checkpoint (.pt with 'g_ema') into a flowergan model folder.

    Read safely: only tensors, containers, numbers and argparse Namespaces (as plain fields) are rebuilt;
    nothing in the file runs. size, style_dim, n_mlp and channel_multiplier come from the tensor shapes.
    The generators ('g_ema', and 'g' if present) and the discriminator ('d', if present) are converted.

    \b
    Example:
      flowergan import-rosinality stylegan2-ffhq-config-f.pt models/ffhq
    """
    from flowergan.compat.rosinality import read_rosinality
    from flowergan.networks.store import write_model_dir

    if Path(out_dir).exists() and not overwrite:
        raise click.UsageError(f"{out_dir} already exists; pass --overwrite to replace it")
    with about(checkpoint):
        d = read_rosinality(checkpoint)
    args = d["args"]
    write_model_dir(out_dir, d["config"], {"G": d["G"], "G_ema": d["G_ema"], "D": d["D"]},
                    meta={"imported_from": Path(checkpoint).name, "rosinality_args": args.to_dict(),
                          "latent_avg": d["latent_avg_source"]})
    nets = ", ".join(k for k, m in (("g", d["G"]), ("g_ema", d["G_ema"]), ("d", d["D"])) if m is not None)
    click.echo(f"wrote {out_dir}: {args.call()}; w_avg from the {d['latent_avg_source']}; converted: {nets}")
    if d["D"] is None:
        click.echo(f"note: no discriminator imported ({d['d_skipped']}); fine-tuning starts from a new one")
