"""`flowergan serve`: run the local model explorer web page (flowergan.web) until Ctrl-C."""

from __future__ import annotations

import click


@click.command()
@click.option("--network", required=True, type=click.Path(exists=True),
              help="Model folder, training run folder (latest checkpoint) or official .pkl.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Anything but loopback exposes the model to your network (no authentication).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="0 = any free port.")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA if available), cpu, cuda…")
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
def serve(network, host, port, device, queue_size, timeout, max_frames, max_batch, max_connections):
    """Explore a model in the browser: seeds, classes, truncation, noise, style mixing, latent walks.

    \b
    Example:
      flowergan serve --network models/flowers          # then open http://127.0.0.1:8000/
    """
    from flowergan.cli.use_cmds import _load
    from flowergan.web import Limits, is_loopback, make_server

    if not is_loopback(host):
        click.secho(f"WARNING: binding to {host}: anyone who can reach this machine on port {port} can use this "
                    f"server. There is no authentication. Use --host 127.0.0.1 unless you mean it.",
                    fg="red", bold=True, err=True)
    pipe = _load(network, device)
    limits = Limits(max_batch=max_batch, max_frames=max_frames, queue_size=queue_size, timeout_s=timeout,
                    max_connections=max_connections)
    try:
        server = make_server(pipe, host, port, limits)
    except OSError as e:
        raise click.UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    click.echo(f"flowergan explorer for {pipe.source} at {server.url}  (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopping")
    finally:
        server.server_close()
