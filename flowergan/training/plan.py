"""Plan a training run once: (options, model fields, data, resume or fine-tune source) -> a `RunPlan` holding the
final settings, the run record (RUN/config.json), the start weights and the resume point. Everything is read and
checked here before anything is created; every refusal is a `ConfigError` naming the option and the fix.

`flowergan train` maps its flags to `plan_run`; Python users call `plan_training`; `Trainer` takes the plan and
never resolves again.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowergan.config import PRESET_FIELDS, ConfigError, ModelConfig
from flowergan.errors import BadInput
from flowergan.training.config import TrainConfig, flag_of
from flowergan.training.recipe import (
    RESUME_AMP_SWITCH,
    RESUME_MUTABLE,
    Resolved,
    cuda_available,
    preset_fields,
    resolve,
    resolve_validated,
    resume_conflicts,
)
from flowergan.training.run_record import RunRecord

log = logging.getLogger(__name__)

# Architecture fields that fine-tuning takes from the run's settings, not from the starting weights.
TRAINING_MODEL_FIELDS = ("mbstd_group", "num_fp16_res", "conv_clamp")


class PlanInputError(ConfigError, BadInput):
    """A file or the data (not a flag's form) is wrong: reported as bad input without the usage line."""


@dataclass(frozen=True)
class RunPlan:
    """A run, planned: what `Trainer` builds and what `flowergan train` writes and prints."""

    resolved: Resolved                          # the final settings (model, train, process layout)
    record: dict[str, Any]                      # RUN/config.json: model, train, request, world_size, ...
    start: dict[str, Any] | None = None         # fine-tuning: {'G', 'G_ema', 'D'} to start from (None: fresh)
    resume: Path | None = None                  # the checkpoint folder to continue from (None: a new run)
    resume_nimg: int = 0                        # images shown at that checkpoint
    run_dir: Path | None = None                 # the run folder when resuming (new runs get one when they start)
    desc: str = ""                              # the new run folder's name after its number
    dataset: Any = None                         # the dataset, cached for training (headers only or None: dry run)
    notes: list[str] = field(default_factory=list)  # what a person should know (printed by the main process)

    @property
    def done(self) -> bool:
        """A resumed run that already reached its --kimg."""
        return self.resume is not None and self.resume_nimg >= round(self.resolved.train.kimg * 1000)


def resume_mutable_text() -> str:
    """The options `--resume` may change, in words (the `--resume` help and its refusal both use it)."""
    flags = [flag_of(name) for name in RESUME_MUTABLE]
    return (f"only {', '.join(flags[:-1])} and {flags[-1]} may change, and {flag_of('amp')} between "
            f"{' and '.join(RESUME_AMP_SWITCH)}")


def world_size_from_env() -> int:
    """The process count torchrun announces (WORLD_SIZE; 1 when unset)."""
    raw = os.environ.get("WORLD_SIZE", "1") or "1"
    try:
        n = int(raw)
    except ValueError:
        raise ConfigError(f"WORLD_SIZE={raw!r} in the environment: expected a whole number of processes") from None
    if n < 1:
        raise ConfigError(f"WORLD_SIZE={n} in the environment: must be >= 1")
    return n


def plan_training(model: ModelConfig | str, train: TrainConfig | None = None, *, device: Any = "auto",
                  world_size: int = 1, resume: str | Path | None = None,
                  start: dict[str, Any] | None = None) -> RunPlan:
    """The plan for a Trainer built from Python: `model` (a ModelConfig, kept as given; its precision fields
    follow `train.amp` while they are 0 / None) or a preset name, `train` (None fields: from `train.cfg`).

    `device` ('auto', 'cpu', 'cuda', 'cuda:N' or a torch.device) decides `device auto` and `amp auto`;
    `resume` is a checkpoint folder to continue from; `start` ({'G', 'G_ema', 'D'}) the weights to start from
    (default: loaded from `train.finetune` when set and not resuming). Raises ConfigError.
    """
    train = train or TrainConfig()
    dev = str(device)
    if dev != "auto":
        train = train.replace(device=dev)
    if isinstance(model, str):
        model = ModelConfig(**preset_fields(model))
    r = resolve(train, model, resolution=model.resolution, world_size=world_size,
                cuda=None if dev == "auto" else dev.startswith("cuda"))
    if start is None and r.train.finetune and resume is None:
        start = _load_start(r.train.finetune, None)
    record = _record(r, {"model": model.to_dict(), "train": train.explicit()}, world_size)
    return RunPlan(r, record, start=start, resume=Path(resume) if resume is not None else None)


def plan_run(*, train: dict[str, Any], preset: str, model: dict[str, Any], preset_given: bool = False,
             config_file: str | Path | None = None, resume: str | None = None, out_dir: str | Path = "runs",
             world_size: int = 1, dry_run: bool = False, is_main: bool = True,
             say: Callable[[str], None] | None = None,
             load_start: Callable[[str], dict[str, Any]] | None = None) -> RunPlan:
    """Plan `flowergan train`: read, check and resolve; create nothing.

    Args:
        train: the training options given (TrainConfig field -> value; absent: not given).
        preset: the model preset's name; `preset_given`: whether the user named it.
        model: the model fields given (ModelConfig field -> value).
        config_file: a saved RUN/config.json to start from (new runs only).
        resume: 'latest', a run folder or a checkpoint folder to continue.
        out_dir: the parent of the numbered run folders.
        world_size: the number of training processes.
        dry_run: only the settings (the dataset's headers are read, nothing is cached).
        is_main: whether this is the main process (it alone gets the fine-tune notes).
        say: where progress notes go as they happen (default: the log).
        load_start: reads `--finetune` weights (default `load_start_networks`).

    Raises ConfigError (PlanInputError for a damaged file or mismatched data).
    """
    say = say or log.warning
    given = dict(train)
    if given.get("data"):
        given["data"] = str(Path(given["data"]).resolve())
    try:
        if resume:
            if config_file:
                raise ConfigError("--resume continues with the run's own config.json; drop --config")
            return _plan_resume(resume, Path(out_dir), given, preset, model, preset_given, world_size, dry_run,
                                say)
        return _plan_new(given, preset, model, preset_given, config_file, world_size, dry_run, is_main, say,
                         load_start)
    except BadInput as e:  # a damaged file read on the way (bounded readers raise BadInput): one error type
        if isinstance(e, ConfigError):
            raise
        raise PlanInputError(str(e)) from e


def _plan_resume(spec: str, out_dir: Path, given: dict[str, Any], preset: str, model_given: dict[str, Any],
                 preset_given: bool, world: int, dry_run: bool, say: Callable[[str], None]) -> RunPlan:
    from flowergan.training.checkpoint import find_resume

    point = find_resume(spec, out_dir)
    for skipped, why in point.skipped:
        say(f"--resume: skipped {skipped.name}: {why}")
    run_dir = point.run_dir
    try:
        saved = RunRecord.from_json(point.run_config)
        saved_train = TrainConfig.from_dict(saved.train)
        saved_model = ModelConfig.from_dict(saved.model)
    except ConfigError as e:
        raise ConfigError(f"--resume {run_dir}: config.json is unreadable: {e}") from None
    conflicts = resume_conflicts(saved_train, given)
    if preset_given:
        model_given = {**preset_fields(preset), **model_given}
    sm = saved_model.to_dict()
    conflicts += [f"--{k.replace('_', '-')} {v} conflicts with the run's {sm[k]}" for k, v in model_given.items()
                  if k in sm and sm[k] != v]
    if conflicts:
        raise ConfigError(f"--resume {run_dir}: " + "; ".join(conflicts) + f". Resume without these flags "
                          f"({resume_mutable_text()}), or start a new run from its weights with --finetune "
                          f"{run_dir} and the new settings.")
    tcfg = saved_train.replace(**given)
    check_workers(tcfg)
    if tcfg.amp != saved_train.amp:
        say(f"--resume: precision {saved_train.amp} -> {tcfg.amp} from here on (the same weights and optimiser "
            f"state; the steps round differently)")
    _check_log(tcfg)
    r = resolve(tcfg, saved_model, resolution=saved_model.resolution, world_size=world, cuda=cuda_available())
    dataset = open_dataset(r.train) if not dry_run else None
    state = _resume_state(point.checkpoint)
    if dataset is not None:
        _check_resume_data(dataset, saved_model, state, r.train.data, run_dir)
    return RunPlan(r, saved.replace(train=r.train.to_dict()).to_json(), resume=point.checkpoint,
                   resume_nimg=state["cur_nimg"], run_dir=run_dir, dataset=dataset)


def _plan_new(given: dict[str, Any], preset_name: str, model_given: dict[str, Any], preset_given: bool,
              config_file: str | Path | None, world: int, dry_run: bool, is_main: bool,
              say: Callable[[str], None], load_start: Callable[[str], dict[str, Any]] | None) -> RunPlan:
    # A new run: base (defaults or --config) <- flags.
    base, file_model, file_preset = TrainConfig(), {}, None
    if config_file:
        base, file_model, file_preset = read_config_file(Path(config_file))
    if file_preset is not None and not preset_given:
        preset_name = file_preset
    model_fields = {**preset_fields(preset_name), **file_model, **model_given}
    tcfg = base.replace(**given)
    tcfg.validate()  # the one validation: before the dataset is read; the resolves below take it as checked
    check_workers(tcfg)
    _check_log(tcfg)

    # The data decides resolution, channels and label width.
    dataset = None
    if tcfg.data:
        dataset = open_dataset(tcfg, cache=None if dry_run else "auto")
        res, channels = dataset.resolution, dataset.num_channels
        labels = dataset.label_dim if dataset.has_labels else None
    elif dry_run and "resolution" in model_given:
        res, channels, labels = model_given["resolution"], model_fields.get("img_channels", 3), None
    else:
        raise ConfigError("--data is required (a dataset zip or folder; see `flowergan prepare --help`); "
                          "--dry-run also takes --resolution N instead")
    if tcfg.data and "resolution" in model_given and model_given["resolution"] != res:
        raise ConfigError(f"--resolution {model_given['resolution']} but the dataset is {res}x{res}; prepare "
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
            raise ConfigError(f"--cond: {tcfg.data} has no labels (dataset.json 'labels' is null)")
        if labels is not None:
            if "c_dim" in model_given and model_given["c_dim"] != labels:
                raise ConfigError(f"--c-dim {model_given['c_dim']} but the dataset has {labels} classes")
            model_fields["c_dim"] = labels
    elif model_fields.get("c_dim"):
        raise ConfigError("--c-dim > 0 needs --cond (labels from the dataset)")
    if adjusted:
        say(f"model adjusted to the data: {adjusted}")

    # Fine-tuning: the architecture comes from the starting weights.
    start, notes = None, []
    request = {"preset": preset_name, "model": dict(model_fields), "train": tcfg.explicit()}
    if tcfg.finetune:
        start = _load_start(tcfg.finetune, load_start)
        sc = start["config"]
        if sc.resolution != res:
            raise ConfigError(f"--finetune {tcfg.finetune} is a {sc.resolution}x{sc.resolution} model but the "
                              f"dataset is {res}x{res}; prepare the data at {sc.resolution} "
                              f"(flowergan prepare --resolution)")
        if sc.c_dim != model_fields.get("c_dim", 0):
            raise ConfigError(f"--finetune {tcfg.finetune} has label width {sc.c_dim} but this run has "
                              f"{model_fields.get('c_dim', 0)} (--cond with the same classes, or without)")
        arch = {k: v for k, v in sc.to_dict().items() if k not in TRAINING_MODEL_FIELDS}
        would = resolve_validated(tcfg, model_fields, resolution=res, world_size=world, cuda=cuda_available()).model
        if any(would.to_dict()[k] != v for k, v in arch.items()):
            notes.append("--finetune: using the architecture of the starting weights (model flags ignored)")
        model_fields = {**arch, **{k: model_fields[k] for k in TRAINING_MODEL_FIELDS if k in model_fields}}
        start = {k: start[k] for k in ("G", "G_ema", "D")}
        preset_name = _preset_of(arch, tcfg, res, world)  # the run folder is named after what is trained
    r = resolve_validated(tcfg, model_fields, resolution=res, world_size=world, cuda=cuda_available())
    stem = Path(tcfg.data).stem if tcfg.data else f"res{res}"
    desc = f"{preset_name}-{stem}-b{r.train.batch}" + (f"-{r.train.cfg}" if r.train.cfg != "auto" else "") + \
        ("-cond" if r.train.cond else "")
    record = _record(r, request, world, " ".join(sys.argv))
    return RunPlan(r, record, start=start, desc=desc, dataset=dataset, notes=notes if is_main else [])


def _record(r: Resolved, request: dict[str, Any], world: int, command: str = "") -> dict[str, Any]:
    """RUN/config.json of a new run: the resolved model and options, what was asked for, the process count."""
    import torch

    return RunRecord(model=r.model.to_dict(), train=r.train.to_dict(), request=request, world_size=world,
                     torch=torch.__version__, command=command).to_json()


def _load_start(path: str, load: Callable[[str], dict[str, Any]] | None) -> dict[str, Any]:
    """The `--finetune` weights; a damaged or missing file is bad input named after the flag."""
    import pickle

    try:
        return (load or load_start_networks)(path)
    except (ValueError, OSError, EOFError, pickle.UnpicklingError) as e:
        msg = " ".join(str(e).split()) or type(e).__name__
        where = f"--finetune {path}"
        raise PlanInputError(msg if msg.startswith(where) else f"{where}: {msg}") from e


def load_start_networks(path: str | Path) -> dict[str, Any]:
    """A snapshot to fine-tune from (our model folder; a run folder: its newest checkpoint that loads; an official
    .pkl, read safely) -> {'config', 'G', 'G_ema', 'D', 'source'}, each network from its own tensors (None where
    the file has none)."""
    from flowergan.compat.official import load_official_pickle
    from flowergan.networks.locate import locate_and_load
    from flowergan.networks.store import load_model_dir

    _, src, d = locate_and_load(path, lambda p: load_model_dir(p, which=("G", "G_ema", "D")), load_official_pickle,
                                flag="--finetune")
    if d.get("G") is None and d.get("G_ema") is None:
        raise ValueError(f"--finetune {path}: {src} holds no generator weights")
    return {"config": d["config"], "G": d.get("G"), "G_ema": d.get("G_ema"), "D": d.get("D"), "source": src}


def _check_log(tcfg: TrainConfig) -> None:
    """--log backends whose optional package is missing are refused before the dataset is read."""
    from flowergan.training.loggers import check_backends

    try:
        check_backends(tcfg.log)
    except (ImportError, ValueError) as e:  # one line, exit 2: the fix is in the message
        raise PlanInputError(str(e)) from None


def check_workers(tcfg: TrainConfig) -> None:
    """--data-workers: at most the usable CPU cores (more only decode slower and may exhaust the machine), and the
    "workers" limit; FLOWERGAN_MAX_WORKERS=N allows up to N whatever the core count."""
    from flowergan.bounds import LIMITS

    n, lim = tcfg.data_workers, LIMITS["workers"]
    if n <= 0:
        return
    cpus = usable_cpus()
    raised = bool(os.environ.get(lim.env, "").strip())
    cap = lim.value() if raised else min(lim.value(), cpus)
    if n > cap:
        why = f"the limit {lim.env} allows" if raised else f"this machine has {cpus} usable CPU cores"
        raise PlanInputError(f"--data-workers {n:,}: more background processes than {why} (at most {cap:,}); use "
                             f"--data-workers -1 (auto) or a number up to {cap:,}, or raise the limit with "
                             f"{lim.env}=N")


def usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _preset_of(arch: dict[str, Any], tcfg: TrainConfig, res: int, world: int) -> str:
    """The preset whose model (at this resolution) is `arch` (a fine-tune's starting architecture), the most
    specific first; 'custom' when none is."""
    for name in sorted(PRESET_FIELDS, key=lambda n: -len(PRESET_FIELDS[n])):
        try:
            m = resolve_validated(tcfg, {**PRESET_FIELDS[name], "resolution": res}, resolution=res,
                                  world_size=world, cuda=cuda_available()).model.to_dict()
        except ConfigError:
            continue
        if all(m.get(k) == v for k, v in arch.items() if k != "c_dim"):
            return name
    return "custom"


def _resume_state(ckpt: Path) -> dict[str, Any]:
    from flowergan.training.checkpoint import read_checkpoint_state

    return read_checkpoint_state(ckpt)[0]


def _check_resume_data(dataset, model: ModelConfig, state: dict[str, Any], data: str, run_dir: Path) -> None:
    """The run's data must still be what it was trained on: resolution, channels and image count."""
    have = f"{dataset.resolution}x{dataset.resolution} with {dataset.num_channels} channel(s)"
    want = f"{model.resolution}x{model.resolution} with {model.img_channels} channel(s)"
    if have != want:
        raise PlanInputError(f"--resume {run_dir}: the run was trained on {want} images but its data {data} now "
                             f"holds {have}; put the run's dataset back at that path, or start a new run "
                             f"(--finetune {run_dir} with data prepared at {model.resolution}x{model.resolution})")
    n = state["sampler"].get("n")
    if isinstance(n, int) and n != len(dataset):
        raise PlanInputError(f"--resume {run_dir}: the run was trained on {n:,} images (x-flips included) but "
                             f"its data {data} now holds {len(dataset):,}; put the run's dataset back, or start "
                             f"a new run from its weights with --finetune {run_dir}")


def read_config_file(path: Path) -> tuple[TrainConfig, dict[str, Any], str | None]:
    """RUN/config.json -> (TrainConfig of what that run asked for, its explicit model fields, its preset)."""
    from flowergan.readers import read_json

    try:  # what the run asked for: re-resolved here, so flags combine as on its command line
        rec = RunRecord.from_json(read_json(path, "--config"))  # a bounded regular file (flowergan/readers.py)
        where = f"{path} {'train' if rec.derived else 'request.train'}"
        return TrainConfig.from_dict(rec.request["train"], where=where), rec.request["model"], \
            rec.request["preset"]
    except (json.JSONDecodeError, ConfigError, AttributeError, TypeError) as e:
        raise ConfigError(f"--config {path}: {e}") from None


def open_dataset(tcfg: TrainConfig, cache: str | None = "auto"):
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
        raise ConfigError(f"--data {tcfg.data}: {e}") from None
