"""Training options: one typed declaration per option (its help text in the field metadata, from which the
CLI flags are generated), saved as JSON with every run. `None` means "from the base config" (--cfg) and is
filled by `flowergan.training.recipe.resolve`."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from flowergan import bounds
from flowergan.config import NOISE_MODES, ConfigError, from_dict_strict
from flowergan.errors import BoundsError

LOG_BACKENDS = ("jsonl", "tensorboard", "wandb")  # see training.loggers

CFG_NAMES = ("auto", "stylegan2", "paper256", "paper512", "paper1024", "cifar")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
AMP_MODES = ("auto", "fp16", "bf16", "off")
AUG_PRESETS = ("blit", "geom", "color", "filter", "noise", "cutout", "bg", "bgc", "bgcf", "bgcfn", "bgcfnc")


def opt(default: Any, help: str, *, flag: str | None = None, choices: tuple[str, ...] | None = None,
        cli: bool = True, group: str = "Training") -> Any:
    """A TrainConfig field with its CLI help (`flag` overrides --field-name; cli=False: --config only)."""
    return field(default=default, metadata={"help": help, "flag": flag, "choices": choices, "cli": cli,
                                            "group": group})


@dataclass(frozen=True)
class TrainConfig:
    """How to train. Fields left at None are resolved from `cfg`, the resolution and the process count."""

    # Base configuration and length.
    cfg: str = opt("auto", "Base config (the official train.py presets): auto (from the resolution and the number "
                   "of processes), stylegan2, paper256, paper512, paper1024 or cifar.", choices=CFG_NAMES)
    data: str = opt("", "Dataset zip or folder (flowergan prepare).")
    kimg: float | None = opt(None, "Length in thousands of real images shown to D (fractions ok) "
                             "[default: from --cfg, 25000].")
    batch: int | None = opt(None, "Total batch over all processes [default: from --cfg]. Like the official "
                            "--batch, it keeps the base config's gamma and EMA half-life.")
    batch_gpu: int | None = opt(None, "Images per process per forward pass; batch / (batch_gpu * processes) "
                                "rounds are accumulated [default: from --cfg].")
    gamma: float | None = opt(None, "R1 regularisation weight [default: from --cfg; auto = 0.0002 * res^2 / "
                              "the base config's batch].")
    lr: float | None = opt(None, "Adam learning rate of G and D [default: from --cfg, 0.0025; 0.002 at 1024].")
    betas: tuple[float, float] = opt((0.0, 0.99), "Adam betas.", cli=False)
    eps: float = opt(1e-8, "Adam epsilon.", cli=False)
    ema_kimg: float | None = opt(None, "EMA half-life of G_ema in kimg [default: from --cfg; auto = batch * 10 "
                                 "/ 32 of the base config].", flag="--ema")
    ema_rampup: float | None = opt(None, "EMA ramp-up: half-life <= rampup * images so far; 0 turns it off "
                                   "[default: from --cfg (0.05 or off); off when fine-tuning].")
    # Regularisation.
    r1_interval: int = opt(16, "Minibatches between R1 steps (lazy regularisation); 0: R1 in every D step.",
                           group="Regularisation")
    pl_interval: int = opt(4, "Minibatches between path-length steps; 0: in every G step.", group="Regularisation")
    pl_weight: float | None = opt(None, "Path-length weight; 0 turns it off [default: 2; cifar: 0].",
                                  group="Regularisation")
    pl_decay: float = opt(0.01, "Decay of the path-length running mean.", cli=False)
    pl_batch_shrink: int = opt(2, "Path-length minibatch shrink factor.", cli=False)
    style_mixing: float | None = opt(None, "Style-mixing probability [default: 0.9; cifar: 0].",
                                     group="Regularisation")
    # Augmentation.
    aug: str = opt("ada", "Augmentation: adaptive p, fixed p, or off.", choices=("ada", "fixed", "none"),
                   group="Augmentation")
    aug_preset: str = opt("bgc", "Augmentation pipeline.", choices=AUG_PRESETS, group="Augmentation")
    p: float = opt(0.0, "Initial (ada) or fixed (fixed) augmentation probability.", group="Augmentation")
    target: float = opt(0.6, "ADA target for r_t.", group="Augmentation")
    ada_kimg: float | None = opt(None, "kimg for ADA's p to move by 1 [default: 500; 100 when fine-tuning].",
                                 group="Augmentation")
    ada_interval: int = opt(4, "Minibatches between ADA adjustments.", group="Augmentation")
    mirror: bool = opt(False, "Double the dataset with x-flips.", group="Augmentation")
    # Data, fine-tuning, snapshots.
    cond: bool = opt(False, "Condition on the dataset labels (sets the label width from the data).")
    finetune: str = opt("", "Start G, G_ema and D from this snapshot (our model folder, a run, or an official "
                        ".pkl) with fresh optimisers; ada_kimg 100 and no EMA ramp-up unless given.",
                        group="Fine-tuning")
    freeze_d: int = opt(0, "Freeze the first N layers of D (fine-tuning).", group="Fine-tuning")
    snap: float = opt(50, "kimg between snapshots (checkpoint + grid + metrics; fractions ok).", group="Snapshots")
    keep: int = opt(3, "Checkpoints to keep (plus the best by FID).", group="Snapshots")
    metrics: tuple[str, ...] = opt((), "Comma-separated metrics at each snapshot, e.g. fid.", group="Snapshots")
    metrics_num: int = opt(1000, "Generated images per metric evaluation.", group="Snapshots")
    log_every: float = opt(0.0, "kimg between log lines (0: 50 lines per run).", group="Snapshots")
    seed: int = opt(0, "Random seed.")
    noise_mode: str = opt("random", "Noise inputs of G during training.", choices=NOISE_MODES)
    log: tuple[str, ...] = opt(("jsonl",), "Log backends, repeat for several: jsonl (RUN/log.jsonl, always "
                               "written), tensorboard (RUN/tensorboard, extra 'tensorboard'), wandb (Weights & "
                               "Biases, extra 'wandb'; WANDB_MODE=offline needs no account). Each gets the same "
                               "scalars, image grids and config.", choices=LOG_BACKENDS, group="Snapshots")
    # Device and precision.
    device: str = opt("auto", "auto (CUDA when available), cpu, cuda or cuda:N (torchrun assigns "
                      "cuda:LOCAL_RANK).", group="Performance")
    amp: str = opt("auto", "Precision: auto (the official fp16 scheme on CUDA; on the CPU bf16 where it is native, "
                   "avx512_bf16 or AMX, else fp32), fp16 (fp16 in the 4 highest-resolution blocks of G and D, "
                   "conv clamp 256), bf16 (autocast) or off (fp32).",
                   choices=AMP_MODES, group="Performance")
    compile: bool = opt(False, "torch.compile the main phases' networks.", group="Performance")
    compile_mode: str = opt("default", "torch.compile mode with --compile: default, reduce-overhead (CUDA graphs "
                            "on GPUs: the main phases replay recorded kernels, no per-op launches) or "
                            "max-autotune (also tunes kernels; long first steps).",
                            choices=COMPILE_MODES, group="Performance")
    data_cache: str = opt("auto", "Where decoded images live: auto (memory when the decoded dataset takes at most "
                          "a quarter of the free RAM, else lazy), memory, mmap (a decoded .npy on disk) or lazy "
                          "(decode from the zip or folder per batch, bounded memory).",
                          choices=("auto", "memory", "mmap", "lazy"), group="Performance")
    cuda_memory_gb: float = opt(0.0, "Cap this process's CUDA memory at N GiB "
                                "(torch.cuda.set_per_process_memory_fraction), e.g. 12 to check that a run fits a "
                                "12 GB card: it fails with CUDA out of memory where it would not; 0: no cap. No "
                                "effect on the CPU.", group="Performance")
    data_workers: int = opt(-1, "Background processes decoding batches; -1: auto (0 when cached, else up to 4).",
                            group="Performance")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        d["metrics"] = list(self.metrics)
        d["log"] = list(self.log)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "train config") -> TrainConfig:
        d = dict(d)
        d.pop("workers", None)  # removed field (it was never used); older run configs still load
        if "lr_g" in d or "lr_d" in d:  # older run configs: one learning rate for both networks since #11
            lr_g, lr_d = d.pop("lr_g", None), d.pop("lr_d", None)
            if lr_g is not None and lr_d is not None and lr_g != lr_d:
                raise ConfigError(f"{where}: lr_g={lr_g} and lr_d={lr_d} differ; set one 'lr' for both networks")
            d.setdefault("lr", lr_g if lr_g is not None else lr_d)
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        if "metrics" in d:
            d["metrics"] = tuple(d["metrics"])
        if isinstance(d.get("log"), list):
            d["log"] = tuple(d["log"])
        return from_dict_strict(cls, d, where)

    def replace(self, **kw: Any) -> TrainConfig:
        return dataclasses.replace(self, **kw)

    def explicit(self) -> dict[str, Any]:
        """The fields that differ from the defaults (what a user asked for), as JSON values."""
        default = TrainConfig().to_dict()
        return {k: v for k, v in self.to_dict().items() if v != default[k]}

    def validate(self) -> None:
        """Refuse bad values with a message naming the option and the fix (before anything is created)."""
        def finite(name: str, *, positive: bool = False, nonneg: bool = False, optional: bool = True) -> None:
            v = getattr(self, name)
            if v is None and optional:
                return
            flag = _flag(name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"{flag} {v!r}: must be a finite number")
            if positive and not v > 0:
                raise ConfigError(f"{flag} {v}: must be > 0")
            if nonneg and v < 0:
                raise ConfigError(f"{flag} {v}: must be >= 0 (0 turns it off)")

        for f in dataclasses.fields(self):  # every option declared with choices, from that one declaration
            choices, v = f.metadata.get("choices"), getattr(self, f.name)
            if choices and not isinstance(f.default, tuple) and v not in choices:
                raise ConfigError(f"{_flag(f.name)} {v!r}: choose one of {', '.join(choices)}")
        for name in ("kimg", "snap", "lr", "ema_kimg", "ada_kimg"):
            finite(name, positive=True)
        for name in ("gamma", "pl_weight", "ema_rampup", "eps", "log_every", "cuda_memory_gb"):
            finite(name, nonneg=True)
        for name in ("p", "target", "style_mixing"):
            finite(name)
            v = getattr(self, name)
            if v is not None and not 0 <= v <= 1:
                raise ConfigError(f"{_flag(name)} {v}: must be in [0, 1]")
        for name, lo in (("batch", 1), ("batch_gpu", 1), ("seed", 0), ("r1_interval", 0), ("pl_interval", 0),
                         ("ada_interval", 1), ("keep", 1), ("metrics_num", 2), ("freeze_d", 0),
                         ("pl_batch_shrink", 1)):
            v = getattr(self, name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ConfigError(f"{_flag(name)} {v!r}: must be an integer >= {lo}")
        for name, limit in (("batch", "batch"), ("batch_gpu", "batch"), ("metrics_num", "images")):
            if getattr(self, name) is not None:  # the CLI-wide limits of flowergan.bounds (hostile-surface)
                try:
                    bounds.check_count(getattr(self, name), limit, _flag(name))
                except BoundsError as e:
                    raise ConfigError(str(e)) from None
        if len(self.betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in self.betas):
            raise ConfigError(f"betas={self.betas}: two numbers in [0, 1)")
        if isinstance(self.data_workers, bool) or not isinstance(self.data_workers, int) or self.data_workers < -1:
            raise ConfigError(f"--data-workers {self.data_workers!r}: must be an integer >= 0, or -1 for auto")
        if not isinstance(self.log, tuple) or not all(b in LOG_BACKENDS for b in self.log):
            raise ConfigError(f"--log {self.log!r}: each backend must be one of {', '.join(LOG_BACKENDS)}")
        dev = self.device.split(":")[0]
        if dev not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"--device {self.device!r}: choose auto, cpu, cuda or cuda:N")
        if self.metrics:
            from flowergan.metrics.registry import ALIASES, METRICS

            unknown = [m for m in self.metrics if m not in METRICS and m not in ALIASES]
            if unknown:
                raise ConfigError(f"--metrics: unknown {', '.join(map(repr, unknown))}; available: "
                                  f"{', '.join(sorted(METRICS) + sorted(ALIASES))}")


def _flag(name: str) -> str:
    f = next(f for f in dataclasses.fields(TrainConfig) if f.name == name)
    return f.metadata.get("flag") or "--" + name.replace("_", "-")


def flag_of(name: str) -> str:
    """The CLI flag of TrainConfig field `name` (e.g. 'ema_kimg' -> '--ema')."""
    return _flag(name)
