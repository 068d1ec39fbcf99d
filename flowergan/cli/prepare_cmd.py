"""`flowergan prepare`: build a dataset zip from photos, Oxford 102 (download) or procedural flowers."""

from __future__ import annotations

import click

from flowergan.cli.checks import count
from flowergan.data.images import TRANSFORMS

EPILOG = """\b
Examples:
  flowergan prepare synthetic --out data/flowers-32.zip --count 2000 --resolution 32
  flowergan prepare oxford102 --out data/oxford-128.zip --resolution 128
  flowergan prepare 102flowers.tgz --labels imagelabels.mat --out data/oxford-128.zip
  flowergan prepare ~/Pictures/garden --out data/garden-128.zip --transform pad
"""


def _print_summary(summary: dict, summary_file: str) -> None:
    c = summary["counts"]
    click.echo(f"Wrote {summary['output']}: {c['written']} images at {summary['resolution']}x"
               f"{summary['resolution']} ({summary['transform']}, {summary['resize_filter']}) from "
               f"{c['considered']} image files; {c['skipped']} skipped, {c['ignored']} other files ignored.")
    conv = {k: v for k, v in c.items() if k not in ("files_found", "image_files", "considered", "written",
                                                    "skipped", "ignored")}
    if conv:
        click.echo("Converted: " + ", ".join(f"{k.replace('_', '-')} {v}" for k, v in conv.items()))
    if summary["labels"]:
        lab = summary["labels"]
        click.echo(f"Labels: {lab['num_classes']} classes (0-based) from {lab['source']}")
    if summary["skipped"]:
        click.echo(f"Skipped {len(summary['skipped'])} file(s):")
        for s in summary["skipped"]:
            click.echo(f"  {s['file']}: {s['reason']}")
    if summary["ignored"]:
        click.echo(f"Ignored {len(summary['ignored'])} non-image file(s):")
        for s in summary["ignored"]:
            click.echo(f"  {s['file']}: {s['reason']}")
    for w in summary["warnings"]:
        click.echo(f"Warning: {w}")
    click.echo(f"Summary saved to {summary_file}")


@click.command("prepare", epilog=EPILOG)
@click.argument("source")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Dataset zip to write (official layout).")
@click.option("--resolution", type=int, default=128, show_default=True, help="Output size (a power of two).")
@click.option("--transform", type=click.Choice(TRANSFORMS), default="center-crop", show_default=True,
              help="How to make photos square: crop the centre, pad with black, or stretch.")
@click.option("--labels", "labels", type=click.Path(exists=True, dir_okay=False),
              help="Class labels: Oxford imagelabels.mat (1-based), dataset.json or CSV 'name,class'.")
@click.option("--max-images", type=click.IntRange(min=1), callback=count("images"),
              help="Use only the first N image files (sorted by path).")
@click.option("--workers", type=click.IntRange(min=1), callback=count("workers"),
              help="Worker processes [default: all CPU cores].")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("--min-size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Skip images whose short side is below this many pixels (icons, thumbnails).")
@click.option("--count", type=click.IntRange(min=1), callback=count("images"),
              help="synthetic: number of flowers [default: 1000].")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="synthetic: random seed.")
@click.option("--labels-by-family", is_flag=True, help="synthetic: class label = flower family (7 classes).")
@click.option("--cache-dir", type=click.Path(file_okay=False),
              help="oxford102: where downloads go [default: $FLOWERGAN_CACHE or ~/.cache/flowergan]/oxford102.")
@click.option("--base-url", hidden=True, envvar="FLOWERGAN_OXFORD102_URL", help="oxford102: mirror base URL.")
@click.option("--no-progress", is_flag=True, hidden=True)
@click.pass_context
def prepare(ctx: click.Context, source: str, out: str, resolution: int, transform: str, labels: str | None,
            max_images: int | None, workers: int | None, overwrite: bool, min_size: int, count: int | None,
            seed: int, labels_by_family: bool, cache_dir: str | None, base_url: str | None,
            no_progress: bool) -> None:
    """Make a training dataset zip from SOURCE.

    SOURCE is a folder (searched recursively), a .zip, a .tar/.tgz (e.g. Oxford's 102flowers.tgz as
    downloaded), the word 'oxford102' (download Oxford 102 Flowers with labels), or the word 'synthetic'
    (procedural flowers, no download). Bad files are skipped with a reason, listed here and in
    OUT.summary.json; the zip appears only when complete.
    """
    given = {p for p in ("count", "seed", "labels_by_family", "transform", "labels", "max_images", "min_size",
                         "cache_dir") if ctx.get_parameter_source(p) == click.core.ParameterSource.COMMANDLINE}
    progress = not no_progress
    word = source.lower()
    # DataError (bad input: exit 2) and DownloadError (exit 1) are classified by flowergan.cli.errors.
    if word == "synthetic":
        bad = given & {"transform", "labels", "max_images", "min_size", "cache_dir"}
        if bad:
            raise click.UsageError(f"--{sorted(bad)[0].replace('_', '-')} does not apply to 'synthetic' "
                                   f"(use --count, --seed, --labels-by-family)")
        from flowergan.data.archive import summary_path
        from flowergan.data.synthetic import FAMILIES, prepare_synthetic

        s = prepare_synthetic(out, count=count or 1000, resolution=resolution, seed=seed,
                              labels_by_family=labels_by_family, workers=workers, overwrite=overwrite,
                              progress=progress)
        labels_note = f", labels = family ({', '.join(FAMILIES)})" if labels_by_family else ""
        click.echo(f"Wrote {s['output']}: {s['count']} procedural flowers at {resolution}x{resolution} "
                   f"(seed {seed}{labels_note}) in {s['seconds']:.1f} s ({s['images_per_s']} img/s).")
        click.echo(f"Summary saved to {summary_path(s['output'])}")
        return
    bad = given & {"count", "seed", "labels_by_family"}
    if bad:
        raise click.UsageError(f"--{sorted(bad)[0].replace('_', '-')} only applies to 'synthetic'")
    from flowergan.data.archive import check_output, summary_path
    from flowergan.data.prepare import prepare_dataset

    if word == "oxford102":
        if labels:
            raise click.UsageError("'oxford102' downloads its own labels; drop --labels (or prepare the "
                                   "archive yourself: flowergan prepare 102flowers.tgz --labels FILE ...)")
        from flowergan.data.download import fetch_oxford102

        check_output(out, overwrite)  # fail before a long download
        tgz, mat = fetch_oxford102(cache_dir, base_url=base_url, progress=progress)
        source, labels = str(tgz), str(mat)
    elif cache_dir:
        raise click.UsageError("--cache-dir only applies to 'oxford102'")
    s = prepare_dataset(source, out, resolution=resolution, transform=transform, labels=labels,
                        max_images=max_images, workers=workers, overwrite=overwrite, min_size=min_size,
                        progress=progress)
    _print_summary(s, str(summary_path(s["output"])))
