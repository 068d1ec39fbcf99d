"""Training options (typed, saved as JSON with every run) and the official `auto` hyperparameters."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from flowergan.config import ConfigError, from_dict_strict
from flowergan.infra import NOISE_MODES

LOG_BACKENDS = ("jsonl", "tensorboard", "wandb")  # see training.loggers


@dataclass(frozen=True)
class TrainConfig:
    """How to train. `None` fields are resolved by `resolve_auto` from the resolution and batch."""

    data: str = ""                       # dataset zip or folder
    kimg: float = 25000                  # training length in thousands of real images shown to D
    batch: int = 32                      # total batch over all processes
    gamma: float | None = None           # R1 weight (auto: 0.0002 * res^2 / batch)
    lr_g: float = 0.0025                 # Adam learning rate of G
    lr_d: float = 0.0025                 # Adam learning rate of D
    betas: tuple[float, float] = (0.0, 0.99)
    eps: float = 1e-8
    ema_kimg: float | None = None        # EMA half-life in kimg (auto: batch * 10 / 32)
    ema_rampup: float | None = 0.05      # EMA ramp-up: half-life <= rampup * images so far (None: off)
    r1_interval: int = 16                # lazy R1 every N minibatches (0: in every D step; gamma 0 turns it off)
    pl_interval: int = 4                 # lazy path-length every N minibatches (0: in every G step)
    pl_weight: float = 2.0               # path-length weight (0: off, the official CIFAR setting)
    pl_decay: float = 0.01
    pl_batch_shrink: int = 2
    style_mixing: float = 0.9            # probability of mixing two latents per batch
    aug: str = "ada"                     # 'ada' | 'fixed' | 'none'
    aug_preset: str = "bgc"
    p: float = 0.0                       # initial (ada) or fixed augmentation probability
    target: float = 0.6                  # ADA target for r_t
    ada_kimg: float = 500                # images (thousands) for p to move by 1
    ada_interval: int = 4                # minibatches between p adjustments
    mirror: bool = False                 # x-flip doubling of the dataset
    cond: bool = False                   # condition on dataset labels
    snap: float = 50                     # kimg between snapshots (checkpoint + grid + metrics)
    keep: int = 3                        # checkpoints kept (plus the best by FID)
    metrics: tuple[str, ...] = ()        # metrics at each snapshot, e.g. ('fid',)
    metrics_num: int = 1000              # generated images for metrics during training
    seed: int = 0
    noise_mode: str = "random"           # noise inputs of G while training
    freeze_d: int = 0                    # freeze the first N layers of D (fine-tuning)
    log_every: float = 0.0               # kimg between log lines (0: every snapshot / 20 lines per run)
    device: str = "cpu"
    amp: str = "off"                     # 'off' | 'bf16' | 'fp16' (CUDA only)
    compile: bool = False                # torch.compile the main phases' networks
    workers: int = 0                     # data loader worker processes
    log: tuple[str, ...] = field(default=("jsonl",), metadata={
        "help": "Log backends, several allowed: jsonl (run_dir/log.jsonl, always written), tensorboard "
                "(run_dir/tensorboard, extra 'tensorboard'), wandb (Weights & Biases, extra 'wandb'; "
                "WANDB_MODE=offline works without an account). Each gets the same scalars, grids and config."})

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        d["metrics"] = list(self.metrics)
        d["log"] = list(self.log)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "train config") -> TrainConfig:
        d = dict(d)
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        if "metrics" in d:
            d["metrics"] = tuple(d["metrics"])
        if "log" in d:
            d["log"] = tuple(d["log"]) if isinstance(d["log"], (list, tuple)) else d["log"]
        return from_dict_strict(cls, d, where)

    def replace(self, **kw: Any) -> TrainConfig:
        return dataclasses.replace(self, **kw)

    def validate(self) -> None:
        if self.batch < 1:
            raise ConfigError(f"batch={self.batch}: must be >= 1")
        if self.kimg <= 0:
            raise ConfigError(f"kimg={self.kimg}: must be > 0 (fractions such as 0.5 are fine)")
        if self.snap <= 0:
            raise ConfigError(f"snap={self.snap}: must be > 0 kimg")
        if self.aug not in ("ada", "fixed", "none"):
            raise ConfigError(f"aug={self.aug!r}: choose 'ada', 'fixed' or 'none'")
        if self.amp not in ("off", "bf16", "fp16"):
            raise ConfigError(f"amp={self.amp!r}: choose 'off', 'bf16' or 'fp16'")
        if self.amp != "off" and not self.device.startswith("cuda"):
            raise ConfigError(f"amp={self.amp!r} needs a CUDA device; on the CPU train in fp32 (--amp off)")
        if self.noise_mode not in NOISE_MODES:
            raise ConfigError(f"noise_mode={self.noise_mode!r}: choose one of {', '.join(NOISE_MODES)}")
        if not 0 <= self.p <= 1:
            raise ConfigError(f"p={self.p}: must be in [0, 1]")
        if self.pl_weight < 0 or (self.gamma is not None and self.gamma < 0):
            raise ConfigError(f"pl_weight={self.pl_weight}, gamma={self.gamma}: regularisation weights must be >= 0 "
                              f"(0 turns that regulariser off)")
        if self.keep < 1:
            raise ConfigError(f"keep={self.keep}: keep at least 1 checkpoint")
        bad_log = [b for b in self.log if b not in LOG_BACKENDS]
        if not isinstance(self.log, tuple) or bad_log:
            raise ConfigError(f"log={self.log!r}: each backend must be one of {', '.join(LOG_BACKENDS)}")


def resolve_auto(cfg: TrainConfig, resolution: int) -> TrainConfig:
    """Fill the `auto` hyperparameters the official trainer derives from resolution and batch."""
    changes: dict[str, Any] = {}
    if cfg.gamma is None:
        changes["gamma"] = 0.0002 * resolution**2 / cfg.batch
    if cfg.ema_kimg is None:
        changes["ema_kimg"] = cfg.batch * 10 / 32
    return cfg.replace(**changes)
