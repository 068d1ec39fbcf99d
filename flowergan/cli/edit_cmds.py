"""`flowergan directions | edit`: discover latent directions and move seeds or projections along them."""

from __future__ import annotations

from pathlib import Path

import click

from flowergan import bounds
from flowergan.cli.shared_options import network_options, truncation_cutoff_option
from flowergan.cli.use_cmds import (
    _check_figure_memory,
    _image_bytes,
    _load,
    _usage_errors,
    check_plain,
    figure_options,
    figure_size,
    style_options,
)


def default_directions_path(source: Path, method: str, layers: str) -> Path:
    """<model or run folder>/directions/<method>-<layers>.safetensors (beside the file for an official .pkl)."""
    base = source if source.is_dir() else source.parent
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in layers)
    return base / "directions" / f"{method}-{safe}.safetensors"


def _check_new(path: Path, overwrite: bool, default: bool = False) -> None:
    """Refuse to replace NAME.safetensors or NAME.json without --overwrite (before any work)."""
    for p in (path, path.with_suffix(".json")):
        if p.exists() and not overwrite:
            what = " (the default file, the one flowergan serve shows for this model)" if default else ""
            raise click.UsageError(f"{p} already exists{what}; pass --overwrite to replace it, or --out NAME."
                                   f"safetensors to write another file")


@click.command()
@network_options
@click.option("--method", type=click.Choice(["sefa", "pca", "class"]), default="sefa", show_default=True,
              help="sefa: closed form from the style weights; pca: GANSpace PCA of sampled w; "
                   "class: difference of class means (conditional models).")
@click.option("--layers", default="all", show_default=True,
              help="ws range the directions steer: all, coarse, middle, fine, or A-B (e.g. 0-3).")
@click.option("--num", type=click.IntRange(1, 512), default=10, show_default=True,
              help="Directions to keep (class: one per class).")
@click.option("--samples", type=click.IntRange(2, 1_000_000), default=10000, show_default=True,
              help="Sampled w for PCA and for every direction's std.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seed of the sampled z.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="NAME.safetensors (NAME.json is written beside it). "
                   "Default: <network folder>/directions/<method>-<layers>.safetensors.")
@click.option("--overwrite", is_flag=True,
              help="Replace NAME.safetensors and NAME.json if they exist (the default file is the one "
                   "flowergan serve shows).")
def directions(network, device, method, layers, num, samples, seed, out, overwrite):
    """Find latent directions to steer (SeFa, GANSpace PCA or class directions) and save them.

    \b
    Examples:
      flowergan directions --network models/flowers --method sefa --layers coarse --num 10
      flowergan directions --network models/flowers --method pca --num 20 --out dirs/pca.safetensors
    """
    if out is not None and Path(out).suffix != ".safetensors":
        raise click.BadParameter(f"{out}: use a name ending in .safetensors (NAME.json is written beside it)",
                                 param_hint="--out")
    if out is not None:
        _check_new(Path(out), overwrite)
    pipe = _load(network, device)
    # measured peak (bench: tiny model, 400,000 samples): pca 35 bytes per sample and w dimension (z, w in float64,
    # their concatenation, the centred copy and the SVD's U), sefa 25; 40 covers both with room
    bounds.check_memory(samples * max(pipe.w_dim, pipe.z_dim) * 40, "--samples",
                        "sampled z and w (float64), their centred copy and the decomposition")
    if out is None:
        from flowergan.inference.directions import parse_layers

        with _usage_errors():
            layer_name = parse_layers(layers, pipe.num_ws)[0]
        _check_new(default_directions_path(Path(network), method, layer_name), overwrite, default=True)
    with _usage_errors():
        d = pipe.directions(method=method, layers=layers, num=num, samples=samples, seed=seed)
    path = Path(out) if out is not None else default_directions_path(Path(network), method, d.layer_name)
    d.save(path)
    click.echo(f"wrote {path} and {path.with_suffix('.json').name}: {len(d)} {method} directions on ws "
               f"{d.layers[0]}-{d.layers[-1]}")
    for i in range(min(len(d), 10)):
        score = f"  score {d.scores[i]:.4g}" if d.scores else ""
        click.echo(f"  {i:3d} {d.names[i]:<16} std {float(d.std[i]):.4f}{score}")


@click.command()
@network_options
@click.option("--directions", "dir_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="A directions file (flowergan directions).")
@click.option("--dir", "index", type=click.IntRange(min=0), default=0, show_default=True,
              help="Which direction of the file.")
@click.option("--seeds", default=None, help="Start points: seeds '0-3' or '1,5,7' (mapped with --trunc first).")
@click.option("--projected-w", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Start point: a projected_w.npz (key 'w', from flowergan project), used as it is.")
@click.option("--strength", default="-3:3:7", show_default=True,
              help="Strengths in std units: 'start:stop:count' or a list '-2,0,2'.")
@style_options
@truncation_cutoff_option
@click.option("--fps", type=float, default=15.0, show_default=True, help="Frames per second of a video.")
@figure_options
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="grid.png (a row per start point, a column per strength) or video.mp4 / .gif "
                   "(frame t: every start point at strength t).")
def edit(network, device, dir_file, index, seeds, projected_w, strength, truncation_psi, class_idx, noise_mode,
         truncation_cutoff, fps, size, resample, plain, out):
    """Move seeds or a projected photo along a latent direction: a strip (PNG) or a video (MP4/GIF).

    The strip is labeled (start points, strengths; the unedited column marked in red), each image at --size px
    (default: the model resolution, at least 128), and a video's frames say their strength; --plain gives the
    bare grid (and frames) at the model resolution.

    \b
    Examples:
      flowergan edit --network models/flowers --directions models/flowers/directions/sefa-all.safetensors \\
          --seeds 0-3 --dir 0 --strength -3:3:7 --trunc 0.7 --out strip.png
      flowergan edit --network models/flowers --directions dirs/pca.safetensors \\
          --projected-w out/proj/projected_w.npz --dir 2 --strength -3:3:31 --out edit.mp4
    """
    from flowergan.inference import make_grid, save_png, write_video
    from flowergan.inference.directions import Directions, parse_strengths
    from flowergan.inference.video import VIDEO_SUFFIXES

    suffix = Path(out).suffix.lower()
    check_plain(plain, size)
    if suffix not in (".png",) + VIDEO_SUFFIXES:
        raise click.BadParameter(f"{out}: use a name ending in .png (a strip) or .mp4 / .gif (a video)",
                                 param_hint="--out")
    if (seeds is None) == (projected_w is None):
        raise click.UsageError("give --seeds (e.g. 0-3) or --projected-w FILE.npz (one of them)")
    bounds.check_float(fps, "--fps", lo=1e-3, hi=bounds.FPS_RANGE[1])
    try:
        strengths = parse_strengths(strength)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--strength") from None
    n = 1
    if seeds is not None:
        from flowergan.cli.use_cmds import _seeds

        seeds_list = _seeds(seeds)
        n = len(seeds_list)
    # every edited image is held at once (one strip or video): bounded before the model is loaded
    bounds.check_count(n * len(strengths), "batch", "--seeds x --strength")
    with _usage_errors():
        dirs = Directions.load(dir_file)
        if index >= len(dirs):
            raise click.BadParameter(f"{dir_file} holds {len(dirs)} directions: use 0-{len(dirs) - 1}",
                                     param_hint="--dir")
    pipe = _load(network, device)
    bounds.check_memory(_image_bytes(pipe, 2 * n * len(strengths)), "--seeds x --strength", "edited images and figure")
    with _usage_errors():
        start = seeds
        if projected_w is not None:
            from flowergan.cli.use_cmds import _read_projected_w

            start = _read_projected_w(projected_w, pipe)  # the one latents reader, as for generate
        images = pipe.edit(start, dirs, strengths, index=index, truncation_psi=truncation_psi, class_idx=class_idx,
                           noise_mode=noise_mode, truncation_cutoff=truncation_cutoff)
    N, T = images.shape[:2]
    if plain:
        px = pipe.resolution
    else:
        px = figure_size(pipe, size)
        _check_figure_memory(pipe, px, N * T, f"{N} x {T} edited images at {px} px")
    if suffix == ".png":
        if plain:
            fig = make_grid(images.reshape(N * T, *images.shape[2:]), cols=T)
        else:
            fig = edit_strip(images, px, resample, strengths, seeds_list if seeds is not None else None,
                             f"direction {index} ({dirs.names[index]}), strength in std of w")
        path = save_png(fig, out)
    elif plain:
        path = write_video(out, (make_grid(images[:, t], cols=N) for t in range(T)), fps=fps)
    else:
        path = write_video(out, edit_frames(images, px, resample, strengths, seeds_list if seeds is not None else None,
                                            f"direction {index} ({dirs.names[index]})"), fps=fps)
    click.echo(f"wrote {path}: direction {index} ({dirs.names[index]}) of {Path(dir_file).name}, "
               f"{N} start point(s) x strengths {strengths[0]:g}..{strengths[-1]:g} ({T})")


def edit_strip(images, size: int, resample: str, strengths, seeds: list[int] | None, title: str):
    """The labeled edit strip: a row per start point, a column per strength, the unedited column(s) marked."""
    from flowergan.inference.figures import labeled_grid, resize_all

    rows = [f"seed {s}" for s in seeds] if seeds is not None else ["projection"] * images.shape[0]
    cols = [("0 (unedited)" if v == 0 else f"{v:+g}") for v in strengths]
    return labeled_grid(resize_all(images, size, resample), rows, cols, title=title,
                        marked_cols=[i for i, v in enumerate(strengths) if v == 0])


def edit_frames(images, size: int, resample: str, strengths, seeds: list[int] | None, name: str):
    """Video frames of an edit: frame t shows every start point at strength t, labeled, all frames one size."""
    import numpy as np

    from flowergan.inference.figures import BG, labeled_grid, resize_all

    N = images.shape[0]
    cols = [f"seed {s}" for s in seeds] if seeds is not None else ["projection"] * N
    frames = [labeled_grid(resize_all(images[:, t], size, resample)[None], (), cols,
                           title=f"{name}: {v:+.2f} std") for t, v in enumerate(strengths)]
    H, W = max(f.shape[0] for f in frames), max(f.shape[1] for f in frames)
    for f in frames:  # a longer title may widen a frame: pad every frame to the largest (white, right/bottom)
        yield f if f.shape[:2] == (H, W) else np.pad(f, ((0, H - f.shape[0]), (0, W - f.shape[1]), (0, 0)),
                                                     constant_values=BG)
