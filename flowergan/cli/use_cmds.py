"""`flowergan generate | mix | truncation | interpolate | project`: thin wrappers over flowergan.inference."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import click

from flowergan import bounds
from flowergan.cli.checks import count, finite, load_pipeline
from flowergan.cli.shared_options import class_option, network_options, noise_mode_option

PSI_RANGE = bounds.PSI_RANGE  # truncation psi accepted from outside (the web API uses the same)


@contextlib.contextmanager
def _usage_errors():
    """Turn the library's input errors into click usage errors (message kept)."""
    try:
        yield
    except (ValueError, FileNotFoundError) as e:
        raise click.UsageError(str(e)) from None


def _load(network: str, device: str):
    return load_pipeline(network, device)


def _image_bytes(pipe, n: int) -> int:
    """Bytes of n uint8 images of this model."""
    return n * pipe.resolution * pipe.resolution * pipe.img_channels


def style_options(fn):
    """--trunc, --class and --noise-mode."""

    @click.option("--trunc", "truncation_psi", type=float, default=1.0, show_default=True,
                  callback=finite(*PSI_RANGE), help="Truncation psi: 1 = none, 0 = the average image (-1 to 2).")
    @class_option
    @noise_mode_option
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapper


def _seeds(text: str, what: str = "--seeds", limit: str = "seeds") -> list[int]:
    from flowergan.inference.latents import MAX_SEED

    try:
        if not text.strip():
            raise ValueError(f"{what}: empty; give seeds like '0-63' or '1,5,7-9'")
        return bounds.parse_int_ranges(text, what, 0, MAX_SEED, limit)
    except ValueError as e:
        raise click.BadParameter(str(e).removeprefix(f"{what}: "), param_hint=what) from None


def _check_png(out: str, what: str = "--out") -> Path:
    p = Path(out)
    if p.suffix.lower() != ".png":
        raise click.BadParameter(f"{out}: the figure is written as PNG; use a name ending in .png", param_hint=what)
    return p


@click.command()
@network_options
@click.option("--seeds", default=None, help="Seeds: a range '0-63', a list '1,5,7-9' or both.")
@style_options
@click.option("--outdir", required=True, type=click.Path(file_okay=False), help="Folder for seedNNNN.png files.")
@click.option("--grid", is_flag=True, help="Also write grid.png with all images.")
@click.option("--grid-cols", type=click.IntRange(min=1), default=None, callback=count("seeds"),
              help="Grid columns (default: square).")
@click.option("--projected-w", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Render the ws in a projected_w.npz (key 'w') instead of seeds: projNN.png.")
def generate(network, device, seeds, truncation_psi, class_idx, noise_mode, outdir, grid, grid_cols, projected_w):
    """Generate one PNG per seed (z from numpy RandomState(seed), as the official generate.py).

    \b
    Examples:
      flowergan generate --network models/flowers --seeds 0-63 --trunc 0.7 --outdir out --grid
      flowergan generate --network models/flowers --projected-w out/proj/projected_w.npz --outdir out
    """
    import numpy as np
    from tqdm.auto import tqdm

    from flowergan.inference import make_grid, save_png

    if (seeds is None) == (projected_w is None):
        raise click.UsageError("give --seeds (e.g. 0-63) or --projected-w FILE.npz (one of them)")
    seed_list = _seeds(seeds) if seeds is not None else None
    pipe = _load(network, device)
    out = Path(outdir)
    images, written = [], []
    if grid and seed_list is not None:
        bounds.check_memory(2 * _image_bytes(pipe, len(seed_list)), "--grid", f"a grid of {len(seed_list)} images")
    with _usage_errors():
        if projected_w is not None:
            ws = _read_projected_w(projected_w, pipe)
            if grid:
                bounds.check_memory(2 * _image_bytes(pipe, len(ws)), "--grid", f"a grid of {len(ws)} images")
            for i, w in enumerate(ws):
                img = pipe.synthesize(w[None], noise_mode)[0]
                written.append(save_png(img, out / f"proj{i:02d}.png"))
                images.append(img)
        else:
            for seed in tqdm(seed_list, desc="generate", unit="img"):
                img = pipe.generate([seed], truncation_psi, class_idx, noise_mode)[0]
                written.append(save_png(img, out / f"seed{seed:04d}.png"))
                if grid:
                    images.append(img)
    if grid:
        written.append(save_png(make_grid(np.stack(images), grid_cols), out / "grid.png"))
    click.echo(f"wrote {len(written)} file(s) to {out}" + (" (incl. grid.png)" if grid else ""))


def _read_projected_w(path: str, pipe):
    """ws [N, num_ws, w_dim] from a projected_w.npz (key 'w'): the one bounded reader of latents files (size,
    header, dtype, shape and finite values checked before use; shared with `edit` and the Python API)."""
    import torch

    from flowergan.readers import read_latents

    ws = read_latents(path, "--projected-w", shape=(pipe.num_ws, pipe.w_dim))
    pipe.check_ws(torch.from_numpy(ws), f"--projected-w {path}")  # all of them, before the first image is written
    return ws


def figure_options(fn):
    """--size, --resample and --plain of the PNG figures (mix, truncation, edit strips)."""

    @click.option("--size", type=click.IntRange(8, 2048), default=None,
                  help="Pixels per image in the figure (default: the model resolution, at least 128).")
    @click.option("--resample", type=click.Choice(["lanczos", "nearest"]), default="lanczos", show_default=True,
                  help="How images are scaled to --size.")
    @click.option("--plain", is_flag=True,
                  help="The bare official layout: images edge to edge at the model resolution, no labels or gaps.")
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapper


def check_plain(plain: bool, size: int | None) -> None:
    """--plain draws at the model resolution: refuse a --size beside it (before any work)."""
    if plain and size is not None:
        raise click.UsageError("--plain draws the images at the model resolution; leave out --size (or --plain)")


def figure_size(pipe, size: int | None, least: int = 128) -> int:
    """Pixels per image: `size`, else the model resolution but at least `least`."""
    return size if size is not None else max(pipe.resolution, least)


def _check_figure_memory(pipe, size: int, cells: int, what: str) -> None:
    bounds.check_memory(4 * cells * size * size * 3 + _image_bytes(pipe, cells), "--size", what)


def _fmt(v: float) -> str:
    return f"{v:g}"


@click.command()
@network_options
@click.option("--rows", required=True, help="Row seeds (their images keep their other layers), e.g. 85,100,75.")
@click.option("--cols", required=True, help="Column seeds (they give the chosen layers' styles), e.g. 55,821.")
@click.option("--styles", default="coarse", show_default=True,
              help="Layers taken from the column seed: '0-3', '0,2,5-7', or coarse / middle / fine / all.")
@style_options
@figure_options
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Figure file (.png).")
def mix(network, device, rows, cols, styles, truncation_psi, class_idx, noise_mode, size, resample, plain, out):
    """Style-mixing figure: top row = column seeds, left column = row seeds, cell = row seed with the column
    seed's styles on the chosen layers.

    Labeled (seeds, layers) with gaps, each image at --size px; --plain gives the bare official layout.

    \b
    Example:
      flowergan mix --network models/flowers --rows 1,2,3 --cols 4,5,6 --styles coarse --out mix.png
    """
    from flowergan.inference import save_png

    path = _check_png(out)
    check_plain(plain, size)
    row_seeds, col_seeds = _seeds(rows, "--rows", "mix_seeds"), _seeds(cols, "--cols", "mix_seeds")
    if len(styles) > 10_000:
        raise click.BadParameter(f"{len(styles):,} characters; give ranges like '0-3'", param_hint="--styles")
    pipe = _load(network, device)
    R, K = len(row_seeds), len(col_seeds)
    bounds.check_memory(_image_bytes(pipe, R + K + 2 * R * K + (R + 1) * (K + 1)), "--rows/--cols",
                        f"a {R} x {K} style-mixing figure")
    with _usage_errors():
        r = pipe.mix(row_seeds, col_seeds, styles, truncation_psi, class_idx, noise_mode)
    if not plain:
        px = figure_size(pipe, size)
        _check_figure_memory(pipe, px, (R + 1) * (K + 1), f"a {R} x {K} style-mixing figure at {px} px")
    save_png(r.figure() if plain else mix_figure(r, pipe.num_ws, px, resample), path)
    click.echo(f"wrote {path} ({len(r.row_seeds)} x {len(r.col_seeds)} cells, layers {r.styles} of {pipe.num_ws})")


def _layers_text(layers: list[int], num_ws: int) -> str:
    if not layers:
        return "no layers"
    if layers == list(range(layers[0], layers[-1] + 1)):
        span = f"{layers[0]}" if len(layers) == 1 else f"{layers[0]}-{layers[-1]}"
    else:
        span = ",".join(map(str, layers))
    return f"layers {span} of {num_ws}"


def mix_figure(r, num_ws: int, size: int, resample: str = "lanczos"):
    """The labeled style-mixing figure: column seeds on top, row seeds on the left, a text corner."""
    import numpy as np

    from flowergan.inference.figures import labeled_grid, resize_all, text_tile

    rows = resize_all(r.row_images, size, resample)   # [R, S, S, C]
    cols = resize_all(r.col_images, size, resample)   # [K, S, S, C]
    cells = resize_all(r.cells, size, resample)       # [R, K, S, S, C]
    if rows.shape[-1] == 1:
        rows, cols, cells = (np.repeat(a, 3, axis=-1) for a in (rows, cols, cells))
    corner = text_tile(["rows keep", "their image;", "columns give", _layers_text(r.styles, num_ws)], size, size)
    top = np.concatenate([corner[None], cols])[None]                        # [1, K+1, S, S, 3]
    body = np.concatenate([rows[:, None], cells], axis=1)                   # [R, K+1, S, S, 3]
    grid = np.concatenate([top, body])                                      # [R+1, K+1, S, S, 3]
    return labeled_grid(grid, [""] + [f"seed {s}" for s in r.row_seeds],
                        [""] + [f"seed {s}" for s in r.col_seeds],
                        title=f"style mixing: {_layers_text(r.styles, num_ws)} from the column seed")


@click.command()
@network_options
@click.option("--seeds", required=True, help="Seeds (rows), e.g. 1,2,3.")
@click.option("--psi", "psis", default="1,0.7,0.5,0", show_default=True, help="Truncation values (columns).")
@class_option
@noise_mode_option
@figure_options
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Figure file (.png).")
def truncation(network, device, seeds, psis, class_idx, noise_mode, size, resample, plain, out):
    """Truncation sweep figure: one row per seed, one column per psi (labeled, psi 1 = untruncated marked).

    \b
    Example:
      flowergan truncation --network models/flowers --seeds 1,2,3 --psi 1,0.7,0.5,0 --out trunc.png
    """
    from flowergan.inference import make_grid, save_png
    from flowergan.inference.latents import parse_floats

    path = _check_png(out)
    check_plain(plain, size)
    seed_list = _seeds(seeds, "--seeds", "mix_seeds")
    try:
        if len(psis) > 10_000:
            raise ValueError(f"{len(psis):,} characters; give a few values like '1,0.7,0.5,0'")
        psi_list = parse_floats(psis, "--psi")
        bounds.check_count(len(psi_list), "psis", "--psi")
        for v in psi_list:
            bounds.check_float(v, "--psi", *PSI_RANGE)
    except ValueError as e:
        raise click.BadParameter(str(e).removeprefix("--psi: "), param_hint="--psi") from None
    pipe = _load(network, device)
    bounds.check_memory(3 * _image_bytes(pipe, len(seed_list) * len(psi_list)), "--seeds/--psi",
                        f"a {len(seed_list)} x {len(psi_list)} truncation figure")
    with _usage_errors():
        sweep = pipe.truncation_sweep(seed_list, psi_list, class_idx, noise_mode)
    S, P = sweep.shape[:2]
    if plain:
        fig = make_grid(sweep.reshape(S * P, *sweep.shape[2:]), cols=P)
    else:
        from flowergan.inference.figures import labeled_grid, resize_all

        px = figure_size(pipe, size)
        _check_figure_memory(pipe, px, S * P, f"a {S} x {P} truncation figure at {px} px")
        fig = labeled_grid(resize_all(sweep, px, resample), [f"seed {s}" for s in seed_list],
                           [f"psi {_fmt(v)}" + (" (none)" if v == 1 else "") for v in psi_list],
                           title="truncation: w = w_avg + psi (w - w_avg)",
                           marked_cols=[i for i, v in enumerate(psi_list) if v == 1])
    save_png(fig, path)
    click.echo(f"wrote {path} ({S} seeds x psi {psi_list})")


@click.command()
@network_options
@click.option("--seeds", required=True, help="Key seeds in order, e.g. 1,2,3 (with --grid: every cell's seeds).")
@click.option("--frames", type=click.IntRange(min=1), default=30, show_default=True,
              help="Frames per transition between consecutive seeds.")
@click.option("--space", type=click.Choice(["z", "w"]), default="z", show_default=True,
              help="z: spherical interpolation of z; w: linear interpolation of w.")
@click.option("--loop", is_flag=True, help="Return to the first seed at the end (always on with --grid).")
@click.option("--grid", "grid_shape", default=None, metavar="COLSxROWS",
              help="A walk grid (as the official gen_video.py --grid): e.g. 3x2 splits --seeds into 6 equal runs, "
                   "each cell walks its own loop, all in one video.")
@click.option("--size", type=click.IntRange(8, 2048), default=None,
              help="Pixels per image (default: the model resolution, at least 256; with --grid at least 128).")
@click.option("--resample", type=click.Choice(["lanczos", "nearest"]), default="lanczos", show_default=True,
              help="How frames are scaled to --size.")
@click.option("--fps", type=float, default=30.0, show_default=True, callback=finite(0, 240, positive=True),
              help="Frames per second (up to 240).")
@style_options
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Video file: .mp4 or .gif.")
def interpolate(network, device, seeds, frames, space, loop, grid_shape, size, resample, fps, truncation_psi,
                class_idx, noise_mode, out):
    """Latent walk video through the seeds (MP4 via imageio-ffmpeg; GIF for .gif or when ffmpeg is missing).

    \b
    Examples:
      flowergan interpolate --network models/flowers --seeds 1,2,3 --frames 30 --space w --loop --out walk.mp4
      flowergan interpolate --network models/flowers --seeds 0-11 --grid 3x2 --frames 20 --out walk-grid.mp4
    """
    from flowergan.inference import write_video
    from flowergan.inference.figures import resize_all, tile_frame
    from flowergan.inference.video import VIDEO_SUFFIXES, ffmpeg_available

    if Path(out).suffix.lower() not in VIDEO_SUFFIXES:
        raise click.BadParameter(f"{out}: use a name ending in .mp4 or .gif", param_hint="--out")
    seed_list = _seeds(seeds)
    gcols, grows = _grid_shape(grid_shape) if grid_shape else (1, 1)
    cells = gcols * grows
    if len(seed_list) % cells or len(seed_list) // cells < 2:
        raise click.BadParameter(f"{len(seed_list)} seed(s) for a {gcols}x{grows} grid: give a multiple of {cells} "
                                 f"seeds, at least 2 per cell (e.g. 0-{2 * cells - 1})", param_hint="--seeds")
    loop = loop or cells > 1
    per_cell = len(seed_list) // cells
    walks = [seed_list[i * per_cell:(i + 1) * per_cell] for i in range(cells)]
    total = (per_cell if loop else per_cell - 1) * frames + 1
    bounds.check_count(total, "frames", "--frames")
    bounds.check_count(total * cells, "frames", "--frames x --grid")
    pipe = _load(network, device)
    px = figure_size(pipe, size, 256 if cells == 1 else 128)
    bounds.check_memory(2 * _image_bytes(pipe, total * cells) + 4 * total * cells * pipe.num_ws * pipe.w_dim
                        + 3 * px * px * 3 * cells, "--frames", f"a video of {total:,} frames")
    with _usage_errors():
        videos = [pipe.interpolate(w, frames, space, truncation_psi, class_idx, noise_mode, loop) for w in walks]
    if Path(out).suffix.lower() == ".mp4" and not ffmpeg_available():
        click.echo("ffmpeg is unavailable (pip install imageio-ffmpeg): writing a GIF instead of MP4", err=True)
    gap = 0 if cells == 1 else max(2, px // 64)

    def frames_out():
        for t in range(total):
            yield tile_frame(resize_all([v[t] for v in videos], px, resample), gcols, gap=gap)

    path = write_video(out, frames_out(), fps=fps)
    shape = f", a {gcols}x{grows} grid" if cells > 1 else ""
    click.echo(f"wrote {path} ({total} frames of {px} px{shape}, {space} space)")


def _grid_shape(text: str) -> tuple[int, int]:
    """'3x2' -> (3 columns, 2 rows)."""
    parts = text.lower().split("x")
    try:
        c, r = (int(v) for v in parts)
        if not (1 <= c <= 16 and 1 <= r <= 16):
            raise ValueError
    except ValueError:
        raise click.BadParameter(f"{text!r}: give COLSxROWS with 1-16 each, e.g. 3x2", param_hint="--grid") from None
    return c, r


def _sha256_option(ctx: click.Context, param: click.Parameter, value):
    from flowergan.inference.perceptual import PerceptualError, check_sha256

    if value is None:
        return value
    try:
        return check_sha256(value)
    except PerceptualError as e:
        raise click.BadParameter(str(e).removeprefix("--vgg16-sha256 "), ctx, param) from None


@click.command()
@network_options
@click.option("--target", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Photo to invert (center-cropped and resized to the model resolution).")
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True, callback=count("steps"),
              help="Optimisation steps.")
@click.option("--space", type=click.Choice(["w", "w+"]), default="w", show_default=True,
              help="w: one w for all layers (official); w+: one w per layer (closer fit, less editable).")
@click.option("--outdir", required=True, type=click.Path(file_okay=False))
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=303, show_default=True,
              help="Random seed of the optimisation.")
@click.option("--lr", type=float, default=0.1, show_default=True, callback=finite(0, 10, positive=True),
              help="Initial (peak) learning rate.")
@class_option
@click.option("--vgg16", default=None, metavar="download|none|PATH",
              help="LPIPS network: 'download' (NVlabs vgg16.pt into the cache), a local TorchScript file, or 'none' "
                   "for the fallback pixel loss. Default: $FLOWERGAN_VGG16 or the cache, else the fallback.")
@click.option("--vgg16-sha256", default=None, callback=_sha256_option,
              help="The vgg16.pt file's sha256 (64 hex digits), once you have checked it; the file must match.")
@click.option("--save-video/--no-save-video", default=True, show_default=True,
              help="Write proj.mp4 (target | projection at each step; GIF without ffmpeg).")
@click.option("--video-every", type=click.IntRange(min=1), default=1, show_default=True,
              help="Use every k-th step in the video.")
def project(network, device, target, steps, space, outdir, seed, lr, class_idx, vgg16, vgg16_sha256, save_video,
            video_every):
    """Project a photo into the generator's W (or W+) space (the official projector).

    Writes target.png, proj.png, projected_w.npz (key 'w', shape [1, num_ws, w_dim]) and proj.mp4.

    \b
    Example:
      flowergan project --network models/flowers --target rose.jpg --steps 1000 --outdir out/proj
    """
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from flowergan.inference import save_png, write_video
    from flowergan.inference.perceptual import PerceptualError

    pipe = _load(network, device)
    bounds.check_memory(4 * steps * pipe.num_ws * pipe.w_dim, "--steps", f"the ws of {steps:,} steps")
    out = Path(outdir)
    with _usage_errors():
        try:
            r = pipe.project(target, steps, space, seed=seed, lr=lr, vgg16=vgg16, vgg16_sha256=vgg16_sha256,
                             class_idx=class_idx)
        except PerceptualError as e:
            raise click.UsageError(str(e)) from None
    save_png(r.target, out / "target.png")
    save_png(r.image, out / "proj.png")
    r.save_npz(out / "projected_w.npz")
    msg = f"PSNR {r.psnr:.2f} dB ({r.loss_name} loss, {r.space.upper()} space, {steps} steps)"
    if save_video:
        idx = list(range(0, steps, video_every))
        if idx[-1] != steps - 1:
            idx.append(steps - 1)

        def frames():
            for i in tqdm(idx, desc="video", unit="frame", leave=False):
                img = pipe.synthesize(torch.from_numpy(r.w_steps[i][None]), "const")[0]
                yield np.concatenate([r.target, img], axis=1)

        video = write_video(out / "proj.mp4", frames(), fps=10)
        msg += f"; video {video.name}"
    click.echo(f"wrote {out}/{{target.png, proj.png, projected_w.npz}}: {msg}")
