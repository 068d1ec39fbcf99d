"""`flowergan info` and `flowergan import-official`."""

from __future__ import annotations

import json

import click

from flowergan.cli.checks import say_loaded
from flowergan.cli.model_flags import model_options, pop_model_config
from flowergan.cli.shared_options import network_option


@click.command()
@model_options()
@network_option(required=False, help="Describe an existing model (folder, run folder or official .pkl) instead of "
                                      "a preset.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def info(as_json: bool, network: str | None, **kwargs) -> None:
    """Parameter counts and output shapes of a model configuration.

    \b
    Examples:
      flowergan info --preset auto-128
      flowergan info --preset paper-128 --map-layers 4 --z-dim 256 --w-dim 256 --json
    """
    from flowergan.networks.summary import summarize

    cfg = pop_model_config(kwargs)
    G = D = None
    if network:
        from flowergan.cli.checks import about
        from flowergan.inference.loader import load_networks

        with about(f"--network {network}"):
            m = load_networks(network)
        say_loaded(m.source)
        cfg, G, D = m.config, m.G, m.D
    s = summarize(cfg, G, D)
    if as_json:
        click.echo(json.dumps(s))
        return
    click.echo(f"Generator: {s['G_params']:,} parameters (mapping {s['mapping_params']:,}, "
               f"synthesis {s['synthesis_params']:,}), num_ws {s['num_ws']}")
    for r in s["G_modules"]:
        click.echo(f"  {r['module']:<16} {r['params']:>12,}  -> {r['output_shapes']}")
    click.echo(f"Discriminator: {s['D_params']:,} parameters")
    for r in s["D_modules"]:
        click.echo(f"  {r['module']:<16} {r['params']:>12,}  -> {r['output_shapes']}")
    click.echo("config: " + json.dumps(s["config"]))


@click.command("import-official")
@click.argument("snapshot", type=click.Path(exists=True, dir_okay=False))
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--overwrite", is_flag=True, help="Replace OUT_DIR if it exists.")
def import_official(snapshot: str, out_dir: str, overwrite: bool) -> None:
    """Convert an official network-snapshot-*.pkl into a flowergan model folder (safely: no code runs).

    \b
    Example:
      flowergan import-official network-snapshot-025000.pkl models/ffhq
    """
    from pathlib import Path

    from flowergan.cli.checks import about
    from flowergan.compat.official import load_official_pickle
    from flowergan.networks.store import write_model_dir

    if Path(out_dir).exists() and not overwrite:
        raise click.UsageError(f"{out_dir} already exists; pass --overwrite to replace it")
    with about(snapshot):
        d = load_official_pickle(snapshot)
    write_model_dir(out_dir, d["config"], {"G": d["G"], "G_ema": d["G_ema"], "D": d["D"]},
                    meta={"augment_p": d["augment_p"], "imported_from": str(snapshot)})
    click.echo(f"wrote {out_dir} (augment p = {d['augment_p']:.4f})")
