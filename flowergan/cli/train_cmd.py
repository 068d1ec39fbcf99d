"""`flowergan train`: StyleGAN2-ADA training (one process, or many through torchrun)."""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from flowergan.cli.errors import FAILURE, CommandFailed
from flowergan.cli.model_flags import model_options, pop_model_fields
from flowergan.cli.train_options import pop_train_values, train_options
from flowergan.cli.train_summary import describe_plan
from flowergan.errors import BadInput, BoundsError

# Architecture fields that fine-tuning takes from the starting weights (the rest are training settings).
_TRAINING_MODEL_FIELDS = ("mbstd_group", "num_fp16_res", "conv_clamp")


@click.command()
@click.option("--out", "out_dir", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Parent folder of the numbered run folders.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Start from a saved run configuration (RUN/config.json); flags given here override it.")
@model_options(default_preset="auto-128")
@train_options
@click.option("--fp32", is_flag=True, help="No mixed precision (the official --fp32; the same as --amp off).")
@click.option("--resume", default=None, help="'latest' (newest run in --out), a run folder or a checkpoint folder. "
              "Only --kimg, --snap, --keep, --metrics, --metrics-num, --log-every and --log may change.")
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
    if plan.resume_ckpt is not None and plan.resume_nimg >= round(plan.resolved.train.kimg * 1000):
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


@dataclass
class _Plan:
    resolved: Any                              # recipe.Resolved
    record: dict[str, Any]                     # what config.json holds
    dataset: Any = None
    run_dir: Path | None = None                # set when resuming
    resume_ckpt: Path | None = None
    init_modules: dict[str, Any] | None = None
    desc: str = ""
    notes: list[str] = field(default_factory=list)
    resume_nimg: int = 0                       # images shown at the resumed checkpoint


def _explicit(ctx: click.Context, name: str) -> bool:
    src = ctx.get_parameter_source(name)
    return src is not None and src.name == "COMMANDLINE"


def _fail(e: Exception) -> click.UsageError:
    return click.UsageError(str(e))


def _check_log(tcfg) -> None:
    """--log backends whose optional package is missing are refused before the dataset is read."""
    from flowergan.training.loggers import check_backends

    try:
        check_backends(tcfg.log)
    except (ImportError, ValueError) as e:  # one line, exit 2: the fix is in the message
        raise BadInput(str(e)) from None


def _plan(kw: dict) -> _Plan:
    """Everything up to (not including) creating files or processes: read, check, resolve."""
    from flowergan.config import ConfigError, ModelConfig
    from flowergan.training.config import TrainConfig
    from flowergan.training.recipe import cuda_available, preset_fields, resolve, resume_conflicts

    ctx = click.get_current_context()
    world = _world_size()
    preset_name, model_given = pop_model_fields(kw)
    given = pop_train_values(kw)
    if kw["fp32"]:
        if given.get("amp", "off") != "off":
            raise click.UsageError(f"--fp32 and --amp {given['amp']} contradict each other; give one of them")
        given["amp"] = "off"
    if given.get("data"):
        given["data"] = str(Path(given["data"]).resolve())

    if kw["resume"]:
        if kw["config_file"]:
            raise click.UsageError("--resume continues with the run's own config.json; drop --config")
        run_dir, resume_ckpt, saved = _find_resume(kw["resume"], Path(kw["out_dir"]))
        try:
            saved_train = TrainConfig.from_dict(saved["train"])
            saved_model = ModelConfig.from_dict(saved["model"])
        except (ConfigError, KeyError) as e:
            raise click.UsageError(f"--resume {run_dir}: config.json is unreadable: {e}") from None
        conflicts = resume_conflicts(saved_train, given)
        if _explicit(ctx, "preset"):
            model_given = {**preset_fields(preset_name), **model_given}
        sm = saved_model.to_dict()
        conflicts += [f"--{k.replace('_', '-')} {v} conflicts with the run's {sm[k]}" for k, v in model_given.items()
                      if k in sm and sm[k] != v]
        if conflicts:
            raise click.UsageError(
                f"--resume {run_dir}: " + "; ".join(conflicts) + ". Resume without these flags (only --kimg, "
                f"--snap, --keep, --metrics, --metrics-num, --log-every and --log may change, and --amp between off "
                f"and bf16), or start a new run from its weights with --finetune {run_dir} and the new settings.")
        tcfg = saved_train.replace(**given)
        _check_workers(tcfg)
        if tcfg.amp != saved_train.amp:
            click.echo(f"--resume: precision {saved_train.amp} -> {tcfg.amp} from here on (the same weights and "
                       f"optimiser state; the steps round differently)", err=True)
        _check_log(tcfg)
        try:
            r = resolve(tcfg, saved_model, resolution=saved_model.resolution, world_size=world,
                        cuda=cuda_available())
        except ConfigError as e:
            raise _fail(e) from None
        dataset = _open_dataset(r.train) if not kw["dry_run"] else None
        state = _resume_state(resume_ckpt)
        if dataset is not None:
            _check_resume_data(dataset, saved_model, state, r.train.data, run_dir)
        return _Plan(r, {**saved, "train": r.train.to_dict()}, dataset, run_dir, resume_ckpt,
                     resume_nimg=state["cur_nimg"])

    # A new run: base (defaults or --config) <- flags.
    base, file_model, file_preset = TrainConfig(), {}, None
    if kw["config_file"]:
        base, file_model, file_preset = _read_config_file(Path(kw["config_file"]))
    if file_preset is not None and not _explicit(ctx, "preset"):
        preset_name = file_preset
    model_fields = {**preset_fields(preset_name), **file_model, **model_given}
    tcfg = base.replace(**given)
    try:
        tcfg.validate()
    except ConfigError as e:
        raise _fail(e) from None
    _check_workers(tcfg)
    _check_log(tcfg)

    # The data decides resolution, channels and label width.
    dataset = None
    if tcfg.data:
        dataset = _open_dataset(tcfg, cache=None if kw["dry_run"] else "auto")
        res, channels, labels = dataset.resolution, dataset.num_channels, dataset.label_dim if dataset.has_labels else None
    elif kw["dry_run"] and "resolution" in model_given:
        res, channels, labels = model_given["resolution"], model_fields.get("img_channels", 3), None
    else:
        raise click.UsageError("--data is required (a dataset zip or folder; see `flowergan prepare --help`); "
                               "--dry-run also takes --resolution N instead")
    if tcfg.data and "resolution" in model_given and model_given["resolution"] != res:
        raise click.UsageError(f"--resolution {model_given['resolution']} but the dataset is {res}x{res}; prepare "
                               f"it at {model_given['resolution']} or drop --resolution")
    adjusted = {}
    if model_fields.get("resolution", res) != res:
        adjusted["resolution"] = res
    model_fields["resolution"] = res
    if model_fields.get("img_channels", 3) != channels:
        adjusted["img_channels"] = channels
    model_fields["img_channels"] = channels
    if tcfg.cond:
        if tcfg.data and labels is None:
            raise click.UsageError(f"--cond: {tcfg.data} has no labels (dataset.json 'labels' is null)")
        if labels is not None:
            if "c_dim" in model_given and model_given["c_dim"] != labels:
                raise click.UsageError(f"--c-dim {model_given['c_dim']} but the dataset has {labels} classes")
            model_fields["c_dim"] = labels
    elif model_fields.get("c_dim"):
        raise click.UsageError("--c-dim > 0 needs --cond (labels from the dataset)")
    if adjusted:
        click.echo(f"model adjusted to the data: {adjusted}", err=True)

    # Fine-tuning: the architecture comes from the starting weights.
    init_modules, notes = None, []
    request = {"preset": preset_name, "model": dict(model_fields), "train": tcfg.explicit()}
    if tcfg.finetune:
        from flowergan.cli.checks import about
        from flowergan.training.loop import load_start_networks

        with about(f"--finetune {tcfg.finetune}"):  # bad input: one message with the flag in front, once
            start = load_start_networks(tcfg.finetune)
        sc = start["config"]
        if sc.resolution != res:
            raise click.UsageError(f"--finetune {tcfg.finetune} is a {sc.resolution}x{sc.resolution} model but the "
                                   f"dataset is {res}x{res}; prepare the data at {sc.resolution} "
                                   f"(flowergan prepare --resolution)")
        if sc.c_dim != model_fields.get("c_dim", 0):
            raise click.UsageError(f"--finetune {tcfg.finetune} has label width {sc.c_dim} but this run has "
                                   f"{model_fields.get('c_dim', 0)} (--cond with the same classes, or without)")
        arch = {k: v for k, v in sc.to_dict().items() if k not in _TRAINING_MODEL_FIELDS}
        try:
            would = resolve(tcfg, model_fields, resolution=res, world_size=world, cuda=cuda_available()).model
        except ConfigError as e:
            raise _fail(e) from None
        if any(would.to_dict()[k] != v for k, v in arch.items()):
            notes.append("--finetune: using the architecture of the starting weights (model flags ignored)")
        model_fields = {**arch, **{k: model_fields[k] for k in _TRAINING_MODEL_FIELDS if k in model_fields}}
        init_modules = {k: start[k] for k in ("G", "G_ema", "D")}
        preset_name = _preset_of(arch, tcfg, res, world)  # the run folder is named after what is trained
    try:
        r = resolve(tcfg, model_fields, resolution=res, world_size=world, cuda=cuda_available())
    except ConfigError as e:
        raise _fail(e) from None
    for n in notes:
        if _is_main():
            click.echo(n, err=True)  # stdout stays one JSON object under --dry-run --json
    import torch

    stem = Path(tcfg.data).stem if tcfg.data else f"res{res}"
    desc = f"{preset_name}-{stem}-b{r.train.batch}" + (f"-{r.train.cfg}" if r.train.cfg != "auto" else "") + \
        ("-cond" if r.train.cond else "")
    record = {"model": r.model.to_dict(), "train": r.train.to_dict(), "request": request, "world_size": world,
              "torch": torch.__version__, "command": " ".join(sys.argv)}
    return _Plan(r, record, dataset, None, None, init_modules, desc, notes)


def _run(plan: _Plan, kw: dict, info, device) -> None:
    from flowergan.config import save_json
    from flowergan.training.loop import Trainer, TrainingDiverged, new_run_dir, train

    r = plan.resolved
    dataset = plan.dataset if plan.dataset is not None and plan.dataset.cache_mode else _open_dataset(r.train)
    try:
        trainer = Trainer(r.model, r.train, None, dataset, device=device, info=info, resume=plan.resume_ckpt,
                          init_modules=plan.init_modules)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    run_dir = plan.run_dir
    if info.is_main:
        if run_dir is None:  # created only now that every check has passed
            run_dir = new_run_dir(Path(kw["out_dir"]), plan.desc)
            save_json(plan.record, run_dir / "config.json")
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
        from flowergan.networks.resolve import list_checkpoints

        kept = list_checkpoints(run_dir)
        then = (f"continue with `flowergan train --resume {run_dir}` (from {kept[-1].name}, the last complete "
                f"checkpoint)" if kept else "start the run again (it has no checkpoint yet)")
        raise CommandFailed(f"{e.filename or run_dir}: the disk is full ({e.strerror or e}) at "
                            f"{trainer.cur_nimg / 1000:g} kimg; free some space (or use --out on a larger disk), "
                            f"then {then}", FAILURE) from None
    if info.is_main:
        click.echo(f"done: {trainer.cur_nimg / 1000:.3f} kimg; samples in {run_dir / 'samples'}, "
                   f"plot {run_dir / 'progress.png'}")


def _check_workers(tcfg) -> None:
    """--data-workers: at most the usable CPU cores (more only decode slower and may exhaust the machine), and the
    "workers" limit; FLOWERGAN_MAX_WORKERS=N allows up to N whatever the core count."""
    from flowergan.bounds import LIMITS

    n, lim = tcfg.data_workers, LIMITS["workers"]
    if n <= 0:
        return
    cpus = _usable_cpus()
    raised = bool(os.environ.get(lim.env, "").strip())
    cap = lim.value() if raised else min(lim.value(), cpus)
    if n > cap:
        why = f"the limit {lim.env} allows" if raised else f"this machine has {cpus} usable CPU cores"
        raise BoundsError(f"--data-workers {n:,}: more background processes than {why} (at most {cap:,}); use "
                          f"--data-workers -1 (auto) or a number up to {cap:,}, or raise the limit with "
                          f"{lim.env}=N")


def _usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _preset_of(arch: dict[str, Any], tcfg, res: int, world: int) -> str:
    """The preset whose model (at this resolution) is `arch` (a fine-tune's starting architecture), the most
    specific first; 'custom' when none is."""
    from flowergan.config import PRESET_FIELDS, ConfigError
    from flowergan.training.recipe import cuda_available, resolve

    for name in sorted(PRESET_FIELDS, key=lambda n: -len(PRESET_FIELDS[n])):
        try:
            m = resolve(tcfg, {**PRESET_FIELDS[name], "resolution": res}, resolution=res, world_size=world,
                        cuda=cuda_available()).model.to_dict()
        except ConfigError:
            continue
        if all(m.get(k) == v for k, v in arch.items() if k != "c_dim"):
            return name
    return "custom"


def _resume_state(ckpt: Path) -> dict[str, Any]:
    from flowergan.config import ConfigError
    from flowergan.training.checkpoint import read_checkpoint_state

    try:
        return read_checkpoint_state(ckpt)[0]
    except ConfigError as e:
        raise click.UsageError(str(e)) from None


def _check_resume_data(dataset, model, state: dict[str, Any], data: str, run_dir: Path) -> None:
    """The run's data must still be what it was trained on: resolution, channels and image count."""
    have = f"{dataset.resolution}x{dataset.resolution} with {dataset.num_channels} channel(s)"
    want = f"{model.resolution}x{model.resolution} with {model.img_channels} channel(s)"
    if have != want:
        raise BadInput(f"--resume {run_dir}: the run was trained on {want} images but its data {data} now "
                               f"holds {have}; put the run's dataset back at that path, or start a new run "
                               f"(--finetune {run_dir} with data prepared at {model.resolution}x{model.resolution})")
    n = state["sampler"].get("n")
    if isinstance(n, int) and n != len(dataset):
        raise BadInput(f"--resume {run_dir}: the run was trained on {n:,} images (x-flips included) but "
                               f"its data {data} now holds {len(dataset):,}; put the run's dataset back, or start "
                               f"a new run from its weights with --finetune {run_dir}")


def _run_folder_line(plan: _Plan, kw: dict) -> str:
    if plan.run_dir is not None:
        return f"continues {plan.run_dir} from {plan.resume_ckpt.name} ({plan.resume_nimg / 1000:g} kimg)"
    from flowergan.training.loop import next_run_dir

    return f"{next_run_dir(Path(kw['out_dir']), plan.desc)} (made when training starts)"


def _world_size() -> int:
    raw = os.environ.get("WORLD_SIZE", "1") or "1"
    try:
        n = int(raw)
    except ValueError:
        raise click.UsageError(f"WORLD_SIZE={raw!r} in the environment: expected a whole number of processes") \
            from None
    if n < 1:
        raise click.UsageError(f"WORLD_SIZE={n} in the environment: must be >= 1")
    return n


def _is_main() -> bool:
    return os.environ.get("RANK", "0") in ("", "0")


def _find_resume(arg: str, out_dir: Path) -> tuple[Path, Path, dict[str, Any]]:
    """(run folder, newest checkpoint that loads and verifies, the run's saved options); skipped ones are named."""
    from flowergan.config import ConfigError
    from flowergan.training.checkpoint import find_resume

    try:
        point = find_resume(arg, out_dir)
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    for skipped, why in point.skipped:
        click.echo(f"--resume: skipped {skipped.name}: {why}", err=True)
    return point.run_dir, point.checkpoint, point.run_config


def _read_config_file(path: Path):
    """RUN/config.json -> (TrainConfig of what that run asked for, its explicit model fields, its preset)."""
    from flowergan.config import ConfigError
    from flowergan.readers import read_json
    from flowergan.training.config import TrainConfig

    try:
        doc = read_json(path, "--config")  # a bounded regular file (flowergan/readers.py)
        req = doc.get("request")
        if req is not None:  # what the run asked for: re-resolved here, so flags combine as on its command line
            return TrainConfig.from_dict(req.get("train", {}), where=f"{path} request.train"), \
                dict(req.get("model", {})), req.get("preset")
        train = TrainConfig.from_dict(doc.get("train", {}), where=f"{path} train")
        model = dict(doc.get("model", {}))
        for k in ("num_fp16_res", "conv_clamp"):  # unset precision follows --amp, as for a Python ModelConfig
            if model.get(k) in (0, None):
                model.pop(k, None)
        return train, model, None
    except (json.JSONDecodeError, ConfigError, AttributeError, TypeError) as e:
        raise click.UsageError(f"--config {path}: {e}") from None


def _open_dataset(tcfg, cache: str | None = "auto"):
    """The dataset; cache 'auto' follows --data-cache (memory when it fits, else lazy), None reads headers only."""
    from flowergan.data.dataset import ImageDataset
    from flowergan.data.loader import choose_cache

    try:
        ds = ImageDataset(tcfg.data, use_labels=tcfg.cond, xflip=tcfg.mirror, cache=None)
        if cache == "auto":
            ds.enable_cache(choose_cache(ds.decoded_bytes, tcfg.data_cache))
        elif cache is not None:
            ds.enable_cache(cache)
        return ds
    except (ValueError, FileNotFoundError) as e:
        raise click.UsageError(f"--data {tcfg.data}: {e}") from None
