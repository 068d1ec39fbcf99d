"""The `flowergan` command: a click group whose subcommands are imported only when used."""

from __future__ import annotations

import importlib
import logging

import click

from flowergan.cli.errors import CommandFailed, classify, debug_enabled

# command name -> "module:attribute"; modules are imported lazily so `flowergan --help` stays fast.
COMMANDS: dict[str, str] = {
    "info": "flowergan.cli.model_cmds:info",
    "bench": "flowergan.cli.bench_cmd:bench",
    "import-official": "flowergan.cli.model_cmds:import_official",
    "import-rosinality": "flowergan.cli.rosinality_cmds:import_rosinality",
    "prepare": "flowergan.cli.prepare_cmd:prepare",
    "train": "flowergan.cli.train_cmd:train",
    "generate": "flowergan.cli.use_cmds:generate",
    "mix": "flowergan.cli.use_cmds:mix",
    "truncation": "flowergan.cli.use_cmds:truncation",
    "interpolate": "flowergan.cli.use_cmds:interpolate",
    "project": "flowergan.cli.use_cmds:project",
    "directions": "flowergan.cli.edit_cmds:directions",
    "edit": "flowergan.cli.edit_cmds:edit",
    "metrics": "flowergan.cli.metrics_cmds:metrics",
    "fid": "flowergan.cli.metrics_cmds:fid",
    "serve": "flowergan.cli.serve_cmd:serve",
    "export": "flowergan.cli.export_cmd:export",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        mod_name, attr = target.split(":")
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as e:
            if e.name == mod_name:  # the command's module is not part of this build
                return None
            raise
        return getattr(mod, attr)

    def invoke(self, ctx):
        """Run the command; an expected failure becomes one line and exit status 2 (bad input) or 1."""
        try:
            return super().invoke(ctx)
        except Exception as e:
            if debug_enabled(ctx.params.get("debug", False)):
                raise
            got = classify(e)
            if got is None:
                raise
            raise CommandFailed(got[1], got[0]) from e


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
@click.option("--debug", is_flag=True,
              help="On failure show the full Python traceback instead of one line (also FLOWERGAN_DEBUG=1).")
@click.version_option(package_name="flowergan")
def cli(verbose: bool, debug: bool) -> None:
    """flowergan: StyleGAN2-ADA in pure PyTorch.

    \b
    Examples:
      flowergan info --preset lite-128
      flowergan prepare synthetic --out data/flowers.zip --count 2000 --resolution 32
      flowergan train --data data/flowers.zip --out runs --preset tiny --kimg 5
      flowergan generate --network runs/00000-tiny --seeds 0-15 --outdir out --grid

    Failures print one line; exit status 2 means bad input, 1 a failure of the run (--debug: traceback).
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s")


def main() -> None:
    cli(prog_name="flowergan")


if __name__ == "__main__":
    main()
