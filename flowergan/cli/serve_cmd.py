"""`flowergan serve`: run the local model explorer web page (flowergan.web) until Ctrl-C."""

from __future__ import annotations

import click

from flowergan.cli.shared_options import device_option, network_option


@click.command()
@network_option()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Anything but loopback exposes the model to your network (no authentication).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="0 = any free port.")
@device_option
@click.option("--queue-size", type=click.IntRange(min=1), default=4, show_default=True,
              help="Generation requests that may wait; more get 503.")
@click.option("--timeout", type=click.FloatRange(min=1, max=3600), default=60.0, show_default=True,
              help="Seconds a request may wait for its images (then 504).")
@click.option("--max-frames", type=click.IntRange(min=2, max=512), default=64, show_default=True,
              help="Most frames per latent walk.")
@click.option("--max-batch", type=click.IntRange(min=1, max=256), default=16, show_default=True,
              help="Most seeds per generate request.")
@click.option("--max-connections", type=click.IntRange(min=1, max=4096), default=64, show_default=True,
              help="Open connections served at once; more are answered 503 (with Retry-After).")
@click.option("--directions", "dir_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Directions file(s) for the sliders (flowergan directions); default: the model's "
                   "directions/ folder. More can be computed from the page.")
@click.option("--classes", type=click.Path(exists=True), default=None,
              help="Dataset zip/folder (or dataset.json) whose class names label the classes, when the model "
                   "does not record them.")
@click.option("--max-project-steps", type=click.IntRange(1, 5000), default=500, show_default=True,
              help="Most optimisation steps for a photo uploaded for projection.")
def serve(network, host, port, device, queue_size, timeout, max_frames, max_batch, max_connections, dir_files,
          classes, max_project_steps):
    """Explore a model in the browser: seed grid, classes, truncation, style mixing, looping walks (GIF/MP4),
    direction sliders, photo projection and editing; the page's state is in its URL.

    \b
    Examples:
      flowergan serve --network models/flowers          # then open http://127.0.0.1:8000/
      flowergan serve --network models/flowers --directions models/flowers/directions/sefa-all.safetensors
    """
    from pathlib import Path

    from flowergan.cli.use_cmds import _load, _usage_errors
    from flowergan.inference.directions import Directions
    from flowergan.web import Limits, is_loopback, make_server
    from flowergan.web.edit_api import EditLimits

    if not is_loopback(host):
        click.secho(f"WARNING: binding to {host}: anyone who can reach this machine on port {port} can use this "
                    f"server. There is no authentication. Use --host 127.0.0.1 unless you mean it.",
                    fg="red", bold=True, err=True)
    pipe = _load(network, device)
    if classes is not None and pipe.c_dim:
        from flowergan.data.classes import read_class_names
        from flowergan.data.errors import DataError

        try:
            names = read_class_names(classes)
        except DataError as e:
            raise click.BadParameter(str(e), param_hint="--classes") from None
        if names is None or len(names) != pipe.c_dim:
            raise click.BadParameter(f"{classes}: no class names for this model's {pipe.c_dim} classes "
                                     f"(dataset.json needs 'class_names')", param_hint="--classes")
        pipe.class_names = names
    if not dir_files:  # the directions/ folder beside the model (as flowergan directions writes by default)
        net = Path(network)
        folder = (net if net.is_dir() else net.parent) / "directions"
        dir_files = sorted(str(p) for p in folder.glob("*.safetensors"))[:8] if folder.is_dir() else []
    dirs = []
    with _usage_errors():
        for f in dir_files:
            dirs.append((Path(f).stem, Directions.load(f)))
    limits = Limits(max_batch=max_batch, max_frames=max_frames, queue_size=queue_size, timeout_s=timeout,
                    max_connections=max_connections)
    extra = {}  # only what differs from make_server's defaults
    if dirs:
        extra["directions"] = dirs
    if max_project_steps != EditLimits.max_project_steps:
        extra["edit_limits"] = EditLimits(max_project_steps=max_project_steps)
    try:
        with _usage_errors():
            server = make_server(pipe, host, port, limits, **extra)
    except OSError as e:
        raise click.UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    click.echo(f"flowergan explorer for {pipe.source} at {server.url}  (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopping")
    finally:
        server.server_close()
