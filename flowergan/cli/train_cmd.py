"""`flowergan train`: StyleGAN2-ADA training (one process, or many through torchrun)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from flowergan.cli.model_flags import model_options, pop_model_config


@click.command()
@click.option("--data", required=False, type=click.Path(exists=True), help="Dataset zip or folder (flowergan prepare).")
@click.option("--out", "out_dir", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Parent folder of the numbered run folders.")
@model_options(default_preset="auto-128")
@click.option("--kimg", type=float, default=25000, show_default=True, help="Length in thousands of real images (fractions ok).")
@click.option("--batch", type=click.IntRange(min=1), default=32, show_default=True, help="Total batch size.")
@click.option("--gamma", type=float, default=None, help="R1 weight [default: auto = 0.0002 * res^2 / batch].")
@click.option("--lr", type=float, default=None, help="Learning rate of G and D [default: 0.0025].")
@click.option("--ema", "ema_kimg", type=float, default=None, help="EMA half-life in kimg [default: batch * 10 / 32].")
@click.option("--aug", type=click.Choice(["ada", "fixed", "none"]), default="ada", show_default=True,
              help="Augmentation: adaptive p, fixed p, or off.")
@click.option("--aug-preset", type=click.Choice(["blit", "geom", "color", "filter", "noise", "cutout", "bg", "bgc",
                                                 "bgcf", "bgcfn", "bgcfnc"]), default="bgc", show_default=True)
@click.option("--target", type=float, default=0.6, show_default=True, help="ADA target for r_t.")
@click.option("--p", "aug_p", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Initial (ada) or fixed (fixed) augmentation probability.")
@click.option("--mirror", is_flag=True, help="Double the dataset with x-flips.")
@click.option("--cond", is_flag=True, help="Condition on the dataset labels (sets --c-dim from the data).")
@click.option("--snap", type=float, default=50, show_default=True, help="kimg between snapshots (fractions ok).")
@click.option("--keep", type=click.IntRange(min=1), default=3, show_default=True, help="Checkpoints to keep (plus the best).")
@click.option("--metrics", default="", help="Comma-separated metrics at each snapshot, e.g. fid.")
@click.option("--metrics-num", type=click.IntRange(min=2), default=1000, show_default=True,
              help="Generated images per metric evaluation.")
@click.option("--resume", default=None, help="'latest' (newest run in --out), a run folder or a checkpoint folder.")
@click.option("--finetune", type=click.Path(exists=True), default=None,
              help="Start from these weights (our model folder, a run, or an official .pkl) with fresh optimisers.")
@click.option("--freeze-d", type=click.IntRange(min=0), default=0, show_default=True,
              help="Freeze the first N layers of D (fine-tuning).")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda (torchrun assigns cuda:LOCAL_RANK).")
@click.option("--amp", type=click.Choice(["off", "bf16", "fp16"]), default="off", show_default=True,
              help="Mixed precision on CUDA: bf16 autocast, or fp16 in the 4 highest-resolution blocks with "
                   "conv clamping (the official scheme).")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the main phases.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--noise-mode", type=click.Choice(["random", "const", "none"]), default="random", show_default=True,
              help="Noise inputs of G during training.")
@click.option("--r1-interval", type=click.IntRange(min=0), default=16, show_default=True,
              help="Minibatches between R1 steps (lazy regularisation); 0: R1 in every D step.")
@click.option("--pl-interval", type=click.IntRange(min=0), default=4, show_default=True,
              help="Minibatches between path-length steps; 0: in every G step.")
@click.option("--pl-weight", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="Path-length regularisation weight; 0 turns it off (the official CIFAR setting).")
@click.option("--style-mixing", type=click.FloatRange(0, 1), default=0.9, show_default=True)
@click.option("--dry-run", is_flag=True, help="Print the resolved options and exit.")
@click.option("--no-progress", is_flag=True, help="No progress bar (log lines only).")
def train(**kw) -> None:
    """Train a StyleGAN2-ADA generator.

    \b
    Examples:
      flowergan train --data data/flowers-32.zip --preset tiny --kimg 5 --batch 16 --snap 1
      flowergan train --data data/oxford102-128.zip --preset lite-128 --mirror --cond --device cuda --batch 32
      flowergan train --data data/flowers-32.zip --out runs --resume latest
      torchrun --nproc_per_node 4 -m flowergan train --data ... --device cuda --batch 64
    """
    from flowergan.training.distributed import init_from_env, shutdown

    info, device = init_from_env(kw["device"])
    if not info.is_main:
        logging.getLogger().setLevel(logging.WARNING)
    try:
        _train(kw, info, device)
    finally:
        shutdown(info)


def _explicit(ctx: click.Context, name: str) -> bool:
    src = ctx.get_parameter_source(name)
    return src is not None and src.name == "COMMANDLINE"


def _train(kw: dict, info, device) -> None:
    import torch

    from flowergan.config import ConfigError, save_json
    from flowergan.training.config import TrainConfig, resolve_auto
    from flowergan.training.loop import Trainer, TrainingDiverged, new_run_dir, train

    ctx = click.get_current_context()
    preset_name = kw["preset"]
    model_cfg = pop_model_config(kw)
    out_dir = Path(kw["out_dir"])

    # --resume: find the checkpoint and take the run's own options.
    resume_ckpt = run_dir = None
    if kw["resume"]:
        from flowergan.training.checkpoint import find_resume  # newest checkpoint that verifies

        try:
            point = find_resume(kw["resume"], out_dir)
        except ConfigError as e:
            raise click.UsageError(str(e)) from None
        for skipped, why in point.skipped:
            click.echo(f"--resume: skipped {skipped.name}: {why}", err=True)
        run_dir, resume_ckpt, saved = point.run_dir, point.checkpoint, point.run_config
        from flowergan.config import ModelConfig

        model_cfg = ModelConfig.from_dict(saved["model"])
        tcfg = TrainConfig.from_dict(saved["train"])
        overrides = {}
        if _explicit(ctx, "kimg"):
            overrides["kimg"] = kw["kimg"]
        if _explicit(ctx, "snap"):
            overrides["snap"] = kw["snap"]
        tcfg = tcfg.replace(**overrides)
    else:
        if not kw["data"]:
            raise click.UsageError("--data is required (a dataset zip or folder; see `flowergan prepare --help`)")
        amp = kw["amp"]
        if amp == "fp16":
            model_cfg = model_cfg.replace(num_fp16_res=4, conv_clamp=model_cfg.conv_clamp or 256)
        lr = kw["lr"] if kw["lr"] is not None else 0.0025
        tcfg = TrainConfig(
            data=str(Path(kw["data"]).resolve()), kimg=kw["kimg"], batch=kw["batch"], gamma=kw["gamma"],
            lr_g=lr, lr_d=lr, ema_kimg=kw["ema_kimg"], aug=kw["aug"], aug_preset=kw["aug_preset"], p=kw["aug_p"],
            target=kw["target"], mirror=kw["mirror"], cond=kw["cond"], snap=kw["snap"], keep=kw["keep"],
            metrics=tuple(m for m in kw["metrics"].split(",") if m), metrics_num=kw["metrics_num"],
            seed=kw["seed"], noise_mode=kw["noise_mode"], freeze_d=kw["freeze_d"], device=kw["device"],
            amp="bf16" if amp == "bf16" else "off", compile=kw["compile_"], r1_interval=kw["r1_interval"],
            pl_interval=kw["pl_interval"], pl_weight=kw["pl_weight"], style_mixing=kw["style_mixing"])
    try:
        tcfg.validate()
    except ConfigError as e:
        raise click.UsageError(str(e)) from None

    dataset = _open_dataset(tcfg)
    if not kw["resume"]:
        model_cfg = _match_data(ctx, model_cfg, dataset, tcfg)
    tcfg = resolve_auto(tcfg, model_cfg.resolution)

    init_modules = None
    if kw["finetune"] and not kw["resume"]:
        from flowergan.inference.loader import load_networks

        m = load_networks(kw["finetune"])
        if m.config.resolution != model_cfg.resolution:
            raise click.UsageError(f"--finetune {kw['finetune']} is a {m.config.resolution}x{m.config.resolution} "
                                   f"model but the dataset is {model_cfg.resolution}x{model_cfg.resolution}; "
                                   f"prepare the data at {m.config.resolution} (flowergan prepare --resolution)")
        if m.config.to_dict() | {"c_dim": 0} != model_cfg.to_dict() | {"c_dim": 0}:
            # The weights fix the architecture: take it from them (model flags that differ are ignored).
            if info.is_main:
                click.echo("--finetune: using the architecture of the starting weights (model flags ignored)")
            model_cfg = m.config.replace(mbstd_group=model_cfg.mbstd_group)
        init_modules = {"G_ema": m.G, "D": m.D}

    desc = f"{preset_name}-{Path(tcfg.data).stem}-b{tcfg.batch}" + ("-cond" if tcfg.cond else "")
    resolved = {"model": model_cfg.to_dict(), "train": tcfg.to_dict(), "world_size": info.world_size,
                "torch": torch.__version__, "command": " ".join(sys.argv)}
    if kw["dry_run"]:
        click.echo(json.dumps(resolved, indent=2))
        return
    if run_dir is None and info.is_main:
        run_dir = new_run_dir(out_dir, desc)
        save_json(resolved, run_dir / "config.json")
    trainer = Trainer(model_cfg, tcfg, run_dir if info.is_main else None, dataset, device=device, info=info,
                      resume=resume_ckpt, init_modules=init_modules)
    if info.is_main:
        click.echo(f"run folder: {run_dir}  (G {sum(p.numel() for p in trainer.G.parameters()):,} params, "
                   f"D {sum(p.numel() for p in trainer.D.parameters()):,}; batch {tcfg.batch}, "
                   f"gamma {tcfg.gamma:g}, aug {tcfg.aug})")
    try:
        train(trainer, progress=not kw["no_progress"])
    except TrainingDiverged as e:
        raise click.ClickException(str(e)) from None
    if info.is_main:
        click.echo(f"done: {trainer.cur_nimg / 1000:.3f} kimg; samples in {run_dir / 'samples'}, "
                   f"plot {run_dir / 'progress.png'}")


def _open_dataset(tcfg):
    from flowergan.data.dataset import ImageDataset

    try:
        return ImageDataset(tcfg.data, use_labels=tcfg.cond, xflip=tcfg.mirror, cache="memory")
    except (ValueError, FileNotFoundError) as e:
        raise click.UsageError(f"--data {tcfg.data}: {e}") from None


def _match_data(ctx, model_cfg, dataset, tcfg):
    """Take resolution, channels and label width from the data unless given explicitly (then they must agree)."""
    changes = {}
    if dataset.resolution != model_cfg.resolution:
        if _explicit(ctx, "resolution"):
            raise click.UsageError(f"--resolution {model_cfg.resolution} but the dataset is {dataset.resolution}x"
                                   f"{dataset.resolution}; prepare it at {model_cfg.resolution} or drop --resolution")
        changes["resolution"] = dataset.resolution
    if dataset.num_channels != model_cfg.img_channels:
        changes["img_channels"] = dataset.num_channels
    if tcfg.cond:
        if not dataset.has_labels:
            raise click.UsageError(f"--cond: {tcfg.data} has no labels (dataset.json 'labels' is null)")
        if _explicit(ctx, "c_dim") and model_cfg.c_dim != dataset.label_dim:
            raise click.UsageError(f"--c-dim {model_cfg.c_dim} but the dataset has {dataset.label_dim} classes")
        changes["c_dim"] = dataset.label_dim
    elif model_cfg.c_dim:
        raise click.UsageError("--c-dim > 0 needs --cond (labels from the dataset)")
    if changes:
        click.echo(f"model adjusted to the data: {changes}", err=True)
    return model_cfg.replace(**changes)
