"""The one resolver: (model fields, train config, resolution, process count, device) -> the run's final
settings, following the official StyleGAN2-ADA train.py (`--cfg` presets, the `auto` formulas and its
override rules). The run planner (`training/plan.py`) calls it once per run; `Trainer` takes its result.

Priority, highest first: an explicit value (flag, --set, --config, a TrainConfig/ModelConfig field given in
Python) > the model preset's fields (--preset tiny) > what --cfg derives > the dataclass defaults.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, fields
from typing import Any

from flowergan.config import PRESET_FIELDS, ConfigError, ModelConfig
from flowergan.training.config import TrainConfig, flag_of

log = logging.getLogger(__name__)

# The official train.py base configs (ref_gpus -1: the `auto` formulas below).
CFG_SPECS: dict[str, dict[str, Any]] = {
    "auto":      dict(ref_gpus=-1, kimg=25000,  mb=-1, mbstd=-1, fmaps=-1,  lrate=-1,     gamma=-1,   ema=-1,  ramp=0.05, map=2),   # noqa: E501
    "stylegan2": dict(ref_gpus=8,  kimg=25000,  mb=32, mbstd=4,  fmaps=1,   lrate=0.002,  gamma=10,   ema=10,  ramp=None, map=8),   # noqa: E501
    "paper256":  dict(ref_gpus=8,  kimg=25000,  mb=64, mbstd=8,  fmaps=0.5, lrate=0.0025, gamma=1,    ema=20,  ramp=None, map=8),   # noqa: E501
    "paper512":  dict(ref_gpus=8,  kimg=25000,  mb=64, mbstd=8,  fmaps=1,   lrate=0.0025, gamma=0.5,  ema=20,  ramp=None, map=8),   # noqa: E501
    "paper1024": dict(ref_gpus=8,  kimg=25000,  mb=32, mbstd=4,  fmaps=1,   lrate=0.002,  gamma=2,    ema=10,  ramp=None, map=8),   # noqa: E501
    "cifar":     dict(ref_gpus=2,  kimg=100000, mb=64, mbstd=32, fmaps=1,   lrate=0.0025, gamma=0.01, ema=500, ramp=0.05, map=2),   # noqa: E501
}
FP16_RES, CONV_CLAMP = 4, 256          # the official mixed-precision scheme
PRECISION_FIELDS = ("num_fp16_res", "conv_clamp")

SUMMARY_KEYS = ("cfg", "resolution", "world_size", "batch", "batch_gpu", "rounds", "mbstd_group", "channel_base",
                "channel_max", "map_layers", "z_dim", "w_dim", "lr", "gamma", "ema_kimg", "ema_rampup", "kimg",
                "num_fp16_res", "conv_clamp", "pl_weight", "style_mixing", "d_architecture", "amp", "device",
                "ada_kimg", "aug", "mirror", "finetune")


def cfg_spec(cfg: str, resolution: int, world_size: int, batch: int | None = None) -> dict[str, Any]:
    """The official base config `cfg` for this resolution and process count (train.py's `spec`); `batch`: the
    `auto` formulas (gamma, EMA) applied to this batch instead of auto's own."""
    if cfg not in CFG_SPECS:
        raise ConfigError(f"--cfg {cfg!r}: choose one of {', '.join(CFG_SPECS)}")
    spec = dict(CFG_SPECS[cfg])
    if cfg == "auto":
        gpus, res = world_size, resolution
        spec["ref_gpus"] = gpus
        spec["mb"] = batch or max(min(gpus * min(4096 // res, 32), 64), gpus)  # keeps memory in check at high res
        spec["mbstd"] = min(spec["mb"] // gpus, 4)
        spec["fmaps"] = 1 if res >= 512 else 0.5
        spec["lrate"] = 0.002 if res >= 1024 else 0.0025
        spec["gamma"] = 0.0002 * res**2 / spec["mb"]
        spec["ema"] = spec["mb"] * 10 / 32
    return spec


@dataclass(frozen=True)
class Resolved:
    """A run's final settings: every TrainConfig field concrete, the full model config, the process layout."""

    model: ModelConfig
    train: TrainConfig
    world_size: int
    batch_gpu: int                  # images per process per forward pass
    rounds: int                     # accumulation rounds per iteration: batch = batch_gpu * world_size * rounds
    device: str                     # 'cpu' or 'cuda' (or 'cuda:N')
    amp: str                        # 'off', 'fp16' or 'bf16'

    def summary(self) -> dict[str, Any]:
        """The flat dictionary `train --dry-run --json` prints: SUMMARY_KEYS, each from the process layout,
        the training options or the model, in that order (unset ramp-up and fine-tune source: None)."""
        own = {"world_size": self.world_size, "batch_gpu": self.batch_gpu, "rounds": self.rounds,
               "device": self.device, "amp": self.amp}
        train, model = self.train.to_dict(), self.model.to_dict()
        d = {k: own[k] if k in own else train[k] if k in train else model[k] for k in SUMMARY_KEYS}
        d["ema_rampup"], d["finetune"] = d["ema_rampup"] or None, d["finetune"] or None
        return d


def preset_fields(name: str) -> dict[str, Any]:
    """The explicit model fields a preset sets (`auto-128` sets none: everything follows --cfg)."""
    if name not in PRESET_FIELDS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESET_FIELDS)}")
    return dict(PRESET_FIELDS[name])


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


CPU_BF16_ENV = "FLOWERGAN_CPU_BF16"  # 1 / 0: say whether this CPU has native bf16 (skips the probe)
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # x86 flags of the bf16 dot-product and tile units oneDNN uses


def cpu_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX), so that `--amp auto` trains in bf16 on
    it: there a bf16 training step ran 1.3x (tiny) to 2.3x (paper-128) as fast as fp32 (docs/BENCHMARKS.md);
    without those units oneDNN emulates bf16, 20-100x slower. `$FLOWERGAN_CPU_BF16` (1 or 0) overrides the
    probe."""
    env = os.environ.get(CPU_BF16_ENV)
    if env is not None and env.strip() != "":
        if env.strip() not in ("0", "1"):
            raise ConfigError(f"{CPU_BF16_ENV}={env!r} in the environment: set it to 1 (this CPU has native "
                              f"bf16), 0 (it has not: auto trains in fp32) or unset it to detect")
        return env.strip() == "1"
    import torch

    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    probes = [p for p in probes if callable(p)]
    if probes:  # torch's own cpuinfo (private API; absent on some builds)
        try:
            return any(bool(p()) for p in probes)
        except Exception:  # noqa: BLE001 - a failing probe means "unknown": fall back to the kernel's flags
            pass
    return cpu_flags_have_bf16(_read_cpuinfo())


def _read_cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            return f.read(1 << 20)
    except OSError:
        return ""


def cpu_flags_have_bf16(cpuinfo: str) -> bool:
    """Whether a /proc/cpuinfo text lists a native bf16 unit in its `flags` lines."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags" and any(flag in value.split() for flag in _BF16_FLAGS):
            return True
    return False


def resolve_amp(amp: str, device: str, cpu_bf16: bool | None = None) -> str:
    """The precision `amp` resolves to on `device` ('cpu', 'cuda', 'cuda:N'): auto -> the official fp16 scheme
    on CUDA, bf16 autocast on a CPU with native bf16 (`cpu_bf16`; None: probe), else fp32 ('off')."""
    on_cuda = device.startswith("cuda")

    def native() -> bool:
        return cpu_native_bf16() if cpu_bf16 is None else cpu_bf16

    if amp == "auto":
        return "fp16" if on_cuda else ("bf16" if native() else "off")
    if amp == "fp16" and not on_cuda:
        raise ConfigError("--amp fp16: the fp16 blocks run in float16 only on CUDA; on the CPU train in fp32 "
                          "(--amp off), bf16 (--amp bf16, fast on CPUs with avx512_bf16 or AMX) or use "
                          "--device cuda")
    if amp == "bf16" and not on_cuda and not native():
        log.warning("--amp bf16 on a CPU without native bf16 (no avx512_bf16 or amx_bf16 flag): bf16 is emulated "
                    "there and training is many times slower than fp32; use --amp off (a resumed bf16 run may "
                    "switch: --resume RUN --amp off)")
    return amp


def resolve(train: TrainConfig, model: ModelConfig | dict[str, Any], *, resolution: int | None = None,
            world_size: int = 1, cuda: bool | None = None, cpu_bf16: bool | None = None) -> Resolved:
    """Resolve a run's settings.

    Args:
        train: the requested training options (None fields: from `train.cfg`).
        model: explicit model fields (preset fields and flags, as a dict; see `preset_fields`), or a whole
            ModelConfig (Python API: its architecture is kept as given; its precision fields follow `amp`
            while they are at their defaults 0 / None).
        resolution: the dataset's resolution (default: the model's `resolution` field, else 128).
        world_size: the number of training processes.
        cuda: whether CUDA is available (None: ask torch); decides `device auto` and `amp auto`.
        cpu_bf16: whether the CPU has native bf16 (None: `cpu_native_bf16()`); decides `amp auto` on the CPU.

    Raises ConfigError naming the option and the fix; nothing is built.
    """
    train.validate()
    return resolve_validated(train, model, resolution=resolution, world_size=world_size, cuda=cuda,
                             cpu_bf16=cpu_bf16)


def resolve_validated(train: TrainConfig, model: ModelConfig | dict[str, Any], *, resolution: int | None = None,
                      world_size: int = 1, cuda: bool | None = None, cpu_bf16: bool | None = None) -> Resolved:
    """`resolve` for a `train` already validated (the run planner validates once, before reading the data)."""
    if world_size < 1:
        raise ConfigError(f"world size {world_size}: must be >= 1 (WORLD_SIZE in the environment)")
    if isinstance(model, ModelConfig):
        explicit = model.to_dict()
        for name in PRECISION_FIELDS:
            if explicit[name] in (0, None):
                explicit.pop(name)
    else:
        explicit = dict(model)
        unknown = sorted(set(explicit) - {f.name for f in fields(ModelConfig)})
        if unknown:
            valid = sorted(f.name for f in fields(ModelConfig))
            raise ConfigError(f"model fields {unknown} are unknown; valid: {valid}")
    res = int(resolution or explicit.get("resolution") or ModelConfig().resolution)
    explicit["resolution"] = res  # the data decides; the CLI checks an explicit --resolution against it first

    # Device and precision.
    device = train.device
    if device == "auto":
        device = "cuda" if (cuda_available() if cuda is None else cuda) else "cpu"
    amp = resolve_amp(train.amp, device, cpu_bf16)

    spec = cfg_spec(train.cfg, res, world_size)
    t = train
    # Batch: `--batch` overrides batch and batch_gpu only (gamma and EMA stay as the base config resolves them).
    batch = t.batch if t.batch is not None else spec["mb"]
    if batch % world_size != 0:
        raise ConfigError(f"--batch {batch} must be divisible by the number of processes ({world_size})")
    if t.batch_gpu is not None:
        batch_gpu = t.batch_gpu
    elif t.batch is not None:
        batch_gpu = batch // world_size
    else:
        batch_gpu = max(spec["mb"] // spec["ref_gpus"], 1)
    if batch % (batch_gpu * world_size) != 0:
        raise ConfigError(f"--batch {batch} is not a multiple of --batch-gpu {batch_gpu} x {world_size} "
                          f"process(es); choose --batch-gpu dividing {batch // world_size}")
    finetune = bool(t.finetune)
    cifar = t.cfg == "cifar"
    train = t.replace(
        batch=batch, batch_gpu=batch_gpu,
        kimg=t.kimg if t.kimg is not None else spec["kimg"],
        gamma=t.gamma if t.gamma is not None else spec["gamma"],
        lr=t.lr if t.lr is not None else spec["lrate"],
        ema_kimg=t.ema_kimg if t.ema_kimg is not None else spec["ema"],
        ema_rampup=t.ema_rampup if t.ema_rampup is not None else (0.0 if finetune else (spec["ramp"] or 0.0)),
        pl_weight=t.pl_weight if t.pl_weight is not None else (0.0 if cifar else 2.0),
        style_mixing=t.style_mixing if t.style_mixing is not None else (0.0 if cifar else 0.9),
        ada_kimg=t.ada_kimg if t.ada_kimg is not None else (100.0 if finetune else 500.0),
        device=device, amp=amp)

    # Model: defaults < cfg-derived < explicit (preset fields, flags).
    derived = {"channel_base": int(spec["fmaps"] * 32768), "channel_max": 512, "map_layers": spec["map"],
               "mbstd_group": spec["mbstd"], "d_architecture": "orig" if cifar else "resnet",
               "num_fp16_res": FP16_RES if amp == "fp16" else 0, "conv_clamp": CONV_CLAMP if amp == "fp16" else None,
               "resolution": res}
    fields_ = {**derived, **explicit}
    if fields_["mbstd_group"] > batch_gpu:  # the official networks use min(group, batch) at run time
        log.info("minibatch-stddev group %d > per-process batch %d: using %d", fields_["mbstd_group"], batch_gpu,
                 batch_gpu)
        fields_["mbstd_group"] = batch_gpu
    try:
        model_cfg = ModelConfig(**fields_)
    except (ConfigError, TypeError) as e:
        raise ConfigError(str(e)) from None
    if model_cfg.mbstd_group and batch_gpu % model_cfg.mbstd_group != 0:
        raise ConfigError(f"the per-process batch {batch_gpu} (--batch {batch} over {world_size} process(es)) is not "
                          f"a multiple of the minibatch-stddev group {model_cfg.mbstd_group}; change --batch "
                          f"or --set mbstd_group=N with N dividing {batch_gpu}")
    return Resolved(model=model_cfg, train=train, world_size=world_size, batch_gpu=batch_gpu,
                    rounds=batch // (batch_gpu * world_size), device=device, amp=amp)


# Options that may change on --resume: they do not alter the training trajectory.
RESUME_MUTABLE = ("kimg", "snap", "keep", "metrics", "metrics_num", "log_every", "log", "data_cache",
                  "data_workers", "cuda_memory_gb")
# Precisions a resumed run may switch between: autocast only (weights, optimiser state and the model's fp16
# fields are the same); the step's rounding changes, so the trajectory is not bit-identical to a run without
# the switch. For a bf16 run resumed on a CPU without native bf16.
RESUME_AMP_SWITCH = ("off", "bf16")


def resume_conflicts(saved: TrainConfig, given: dict[str, Any]) -> list[str]:
    """Messages for options given with --resume that differ from the checkpoint's settings."""
    cur = saved.to_dict()
    out = []
    for name, value in given.items():
        if name in RESUME_MUTABLE or name not in cur:
            continue
        if name == "amp" and value in RESUME_AMP_SWITCH and cur[name] in RESUME_AMP_SWITCH:
            continue
        if _norm(value) != _norm(cur[name]):
            out.append(f"{flag_of(name)} {_show(value)} conflicts with the run's {_show(cur[name])}")
    return out


def _norm(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _show(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v)) or "(none)"
    return str(v)
