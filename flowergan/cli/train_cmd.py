"""`flowergan train`: StyleGAN2-ADA training (one process, or many through torchrun)."""

from __future__ import annotations

import errno
import json
import logging
import os
from pathlib import Path

import click

from flowergan.cli.errors import FAILURE, CommandFailed
from flowergan.cli.model_flags import model_options, pop_model_fields
from flowergan.cli.train_options import pop_train_values, train_options
from flowergan.cli.train_summary import describe_plan
from flowergan.errors import BadInput
from flowergan.training.plan import resume_mutable_text


@click.command()
@click.option("--out", "out_dir", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Parent folder of the numbered run folders.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Start from a saved run configuration (RUN/config.json); flags given here override it.")
@model_options(default_preset="auto-128")
@train_options
@click.option("--fp32", is_flag=True, help="No mixed precision (the official --fp32; the same as --amp off).")
@click.option("--resume", default=None, help="'latest' (newest run in --out), a run folder or a checkpoint folder. "
              f"{resume_mutable_text()[:1].upper()}{resume_mutable_text()[1:]}.")
@click.option("--dry-run", is_flag=True, help="Resolve and print the settings; create nothing, start nothing. "
              "WORLD_SIZE=N resolves for N processes; --device cuda works without CUDA.")
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: one JSON object of the resolved settings.")
@click.option("--no-progress", is_flag=True, help="No progress bar (log lines only).")
def train(**kw) -> None:
    """Train a StyleGAN2-ADA generator with the official settings for the data's resolution and the number
    of processes (--cfg auto), or another official base config; every option overrides its part of it.

    \b
    Examples:
      flowergan train --data data/flowers-32.zip --preset tiny --kimg 5 --batch 16 --gamma 0.0128 --ema 5 --snap 1
      flowergan train --data data/oxford102-128.zip --preset lite-128 --mirror --cond
      flowergan train --data data/ffhq-1024.zip --cfg paper1024 --dry-run --json
      flowergan train --data data/flowers-32.zip --out runs --resume latest
      flowergan train --config runs/00003-tiny-flowers-32-b16/config.json --seed 1
      torchrun --nproc_per_node 4 -m flowergan train --data data/oxford102-256.zip --mirror
    """
    plan = _plan(kw)
    if kw["dry_run"]:
        if kw["as_json"]:
            click.echo(json.dumps(plan.resolved.summary()))
        else:
            click.echo(describe_plan(plan.resolved.summary(), plan.record, _run_folder_line(plan, kw)))
        return
    if kw["as_json"]:
        raise click.UsageError("--json goes with --dry-run (a training run writes its settings to RUN/config.json)")
    if plan.done:
        if _is_main():
            click.echo(f"--resume {plan.run_dir}: the run is done at {plan.resume_nimg / 1000:g} kimg (its --kimg is "
                       f"{plan.resolved.train.kimg:g}); pass a larger --kimg to continue training it", err=True)
        return
    from flowergan.training.distributed import init_from_env, shutdown
    from flowergan.training.recipe import cuda_available

    if plan.resolved.device.startswith("cuda") and not cuda_available():
        raise click.UsageError(f"--device {plan.resolved.device}: CUDA is not available on this machine; use "
                               f"--device cpu (or auto), or --dry-run to only see the settings")
    info, device = init_from_env(plan.resolved.device)
    if not info.is_main:
        logging.getLogger().setLevel(logging.WARNING)
    try:
        _run(plan, kw, info, device)
    finally:
        shutdown(info)


def _explicit(ctx: click.Context, name: str) -> bool:
    src = ctx.get_parameter_source(name)
    return src is not None and src.name == "COMMANDLINE"


def _plan(kw: dict):
    """The flags -> `plan_run` arguments; its ConfigError -> a usage error (bad input in a file or the data: as
    itself), here and only here."""
    from flowergan.cli.checks import about
    from flowergan.config import ConfigError
    from flowergan.training import plan as planning

    def load_start(path: str):
        with about(f"--finetune {path}"):  # bad input: one message with the flag in front, once
            return planning.load_start_networks(path)

    def say(msg: str) -> None:
        click.echo(msg, err=True)  # stdout stays one JSON object under --dry-run --json

    try:
        world = planning.world_size_from_env()
        preset_name, model_given = pop_model_fields(kw)
        given = pop_train_values(kw)
        if kw["fp32"]:
            if given.get("amp", "off") != "off":
                raise ConfigError(f"--fp32 and --amp {given['amp']} contradict each other; give one of them")
            given["amp"] = "off"
        plan = planning.plan_run(train=given, preset=preset_name, model=model_given,
                                 preset_given=_explicit(click.get_current_context(), "preset"),
                                 config_file=kw["config_file"], resume=kw["resume"], out_dir=kw["out_dir"],
                                 world_size=world, dry_run=kw["dry_run"],
                                 is_main=_is_main(), say=say, load_start=load_start)
    except ConfigError as e:
        if isinstance(e, BadInput):  # a damaged file or mismatched data: reported as bad input, without usage
            raise
        raise click.UsageError(str(e)) from None
    for n in plan.notes:
        say(n)
    return plan


def _run(plan, kw: dict, info, device) -> None:
    from flowergan.config import save_json
    from flowergan.networks.run_folder import PROGRESS_PLOT, RUN_CONFIG, SAMPLES_DIR, new_run_dir
    from flowergan.training.loop import Trainer, TrainingDiverged, train

    r = plan.resolved
    try:  # the plan opened the dataset (cached as --data-cache says) for a run that trains
        trainer = Trainer(plan, None, plan.dataset, device=device, info=info)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    run_dir = plan.run_dir
    if info.is_main:
        if run_dir is None:  # created only now that every check has passed
            run_dir = new_run_dir(Path(kw["out_dir"]), plan.desc)
            save_json(plan.record, run_dir / RUN_CONFIG)
        trainer.run_dir = run_dir
        t = r.train
        click.echo(f"run folder: {run_dir}  (G {sum(p.numel() for p in trainer.G.parameters()):,} params, "
                   f"D {sum(p.numel() for p in trainer.D.parameters()):,}; cfg {t.cfg}, batch {t.batch}, "
                   f"gamma {t.gamma:g}, ema {t.ema_kimg:g} kimg, lr {t.lr:g}, {r.amp}, {device}, aug {t.aug})")
    try:
        train(trainer, progress=not kw["no_progress"])
    except TrainingDiverged as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT) or run_dir is None:
            raise
        from flowergan.networks.run_folder import list_checkpoints

        kept = list_checkpoints(run_dir)
        then = (f"continue with `flowergan train --resume {run_dir}` (from {kept[-1].name}, the last complete "
                f"checkpoint)" if kept else "start the run again (it has no checkpoint yet)")
        raise CommandFailed(f"{e.filename or run_dir}: the disk is full ({e.strerror or e}) at "
                            f"{trainer.cur_nimg / 1000:g} kimg; free some space (or use --out on a larger disk), "
                            f"then {then}", FAILURE) from None
    if info.is_main:
        click.echo(f"done: {trainer.cur_nimg / 1000:.3f} kimg; samples in {run_dir / SAMPLES_DIR}, "
                   f"plot {run_dir / PROGRESS_PLOT}")


def _run_folder_line(plan, kw: dict) -> str:
    if plan.run_dir is not None:
        return f"continues {plan.run_dir} from {plan.resume.name} ({plan.resume_nimg / 1000:g} kimg)"
    from flowergan.networks.run_folder import next_run_dir

    return f"{next_run_dir(Path(kw['out_dir']), plan.desc)} (made when training starts)"


def _is_main() -> bool:
    return os.environ.get("RANK", "0") in ("", "0")
