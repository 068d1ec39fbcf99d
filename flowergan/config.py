"""Typed model configuration: frozen dataclasses, presets, validation and a strict JSON round trip."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from flowergan.infra import env_number

FORMAT_VERSION = 1

# The generator's per-pixel noise inputs: its stored buffers, fresh draws, or none. Declared here, beside the
# model's config, so that torch-free modules (the training options, the CLI) can offer the choice.
NOISE_MODES = ("const", "random", "none")


def check_noise_mode(noise_mode: str, what: str = "noise_mode") -> str:
    """Return `noise_mode`, or raise ValueError naming the choices."""
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"{what} {noise_mode!r}: choose one of {', '.join(NOISE_MODES)}")
    return noise_mode


class ConfigError(ValueError):
    """A configuration value or file is invalid; the message says which field and how to fix it."""


def _is_pow2(n: int) -> bool:
    return _is_int(n) and n >= 1 and (n & (n - 1)) == 0


# Ranges StyleGAN2 can use (inclusive). The official networks go to 1024x1024 with 512 channels, z = w = 512,
# 8 mapping layers; these bounds leave room above that but stop a typo (or a hostile file) from asking for
# a 2^15 image, 1e9 channels or 1e6 layers.
LIMITS: dict[str, tuple[int, int]] = {
    "resolution": (4, 8192),
    "img_channels": (1, 3),
    "z_dim": (1, 8192),
    "w_dim": (1, 8192),
    "c_dim": (0, 100_000),
    "map_layers": (1, 64),
    "map_hidden": (1, 8192),
    "map_embed": (1, 8192),
    "channel_base": (1, 2**22),
    "channel_max": (1, 8192),
    "num_fp16_res": (0, 12),
    "mbstd_group": (0, 4096),
    "mbstd_channels": (0, 64),
    "d_cmap_dim": (1, 8192),
    "d_map_layers": (1, 64),
}
_OPTIONAL = {"map_hidden", "map_embed", "d_cmap_dim"}
PARAM_LIMIT_ENV = "FLOWERGAN_MAX_PARAM_GB"
DEFAULT_PARAM_LIMIT_GB = 8.0


def max_param_bytes() -> int:
    """The parameter-memory limit: $FLOWERGAN_MAX_PARAM_GB GiB (default 8; the official 1024 model needs 0.23)."""
    gb = env_number(PARAM_LIMIT_ENV, DEFAULT_PARAM_LIMIT_GB, ConfigError,
                    f"a positive number of GiB, e.g. {PARAM_LIMIT_ENV}=16")
    return int(gb * 2**30)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _fc(i: int, o: int, bias: bool = True) -> int:
    return i * o + (o if bias else 0)


def _mapping_params(z_dim: int, c_dim: int, w_dim: int, layers: int, embed: int | None, hidden: int | None) -> int:
    embed = (w_dim if embed is None else embed) if c_dim > 0 else 0
    hidden = w_dim if hidden is None else hidden
    feats = [z_dim + embed] + [hidden] * (layers - 1) + [w_dim]
    n = _fc(c_dim, embed) if c_dim > 0 else 0
    return n + sum(_fc(feats[i], feats[i + 1]) for i in range(layers))


def _g_params(cfg: ModelConfig) -> int:
    w, C = cfg.w_dim, cfg.img_channels
    syn = lambda i, o: _fc(w, i) + 9 * o * i + 1 + o  # noqa: E731  affine, weight, noise strength, bias
    rgb = lambda i: _fc(w, i) + C * i + C  # noqa: E731
    n = _mapping_params(cfg.z_dim, cfg.c_dim, w, cfg.map_layers, cfg.map_embed, cfg.map_hidden)
    for k in range(2, cfg.log2_res + 1):
        res = 2**k
        o = cfg.channels_at(res)
        if res == 4:
            n += o * 16 + syn(o, o)
        else:
            i = cfg.channels_at(res // 2)
            n += syn(i, o) + syn(o, o) + (o * i if cfg.g_architecture == "resnet" else 0)
        if res == cfg.resolution or cfg.g_architecture == "skip":
            n += rgb(o)
    return n


def _d_params(cfg: ModelConfig) -> int:
    C, arch = cfg.img_channels, cfg.d_architecture
    n = 0
    for k in range(cfg.log2_res, 2, -1):
        res = 2**k
        t, o = cfg.channels_at(res), cfg.channels_at(res // 2)
        if res == cfg.resolution or arch == "skip":
            n += _fc(C, t)
        n += 9 * t * t + t + 9 * o * t + o + (o * t if arch == "resnet" else 0)
    c4 = cfg.channels_at(4)
    cmap = (cfg.d_cmap_dim or c4) if cfg.c_dim > 0 else 0
    if cfg.c_dim > 0:
        n += _mapping_params(0, cfg.c_dim, cmap, cfg.d_map_layers, None, None)
    n += (_fc(C, c4) if arch == "skip" else 0) + 9 * (c4 + cfg.mbstd_channels) * c4 + c4
    n += _fc(c4 * 16, c4) + _fc(c4, cmap or 1)
    return n


@dataclass(frozen=True)
class ModelConfig:
    """Everything that determines the networks' architecture (and so their parameter count).

    The defaults are the official StyleGAN2-ADA `auto` configuration at 128x128 for one GPU.
    """

    resolution: int = 128                 # output resolution, a power of two >= 4
    img_channels: int = 3                 # 3 for RGB, 1 for grayscale
    z_dim: int = 512                      # latent z dimensionality (>= 1)
    w_dim: int = 512                      # intermediate latent w dimensionality (>= 1)
    c_dim: int = 0                        # conditioning label dimensionality (0 = unconditional)
    map_layers: int = 2                   # mapping network depth (official auto: 2, paper: 8)
    map_hidden: int | None = None         # mapping hidden width (None = w_dim)
    map_embed: int | None = None          # label embedding width (None = w_dim; ignored when c_dim = 0)
    map_lr_mult: float = 0.01             # learning-rate multiplier of the mapping network
    w_avg_beta: float = 0.995             # decay of the tracked w average (truncation centre)
    channel_base: int = 16384             # feature maps at resolution r: min(channel_base // r, channel_max)
    channel_max: int = 512                # cap on feature maps per layer
    g_architecture: str = "skip"          # synthesis: 'orig', 'skip' or 'resnet'
    d_architecture: str = "resnet"        # discriminator: 'orig', 'skip' or 'resnet'
    num_fp16_res: int = 0                 # run the N highest-resolution blocks in fp16 (CUDA only)
    conv_clamp: float | None = None       # clamp conv outputs to +-conv_clamp (None = no clamp)
    mbstd_group: int = 4                  # minibatch-stddev group size (0 = whole batch)
    mbstd_channels: int = 1               # minibatch-stddev feature channels (0 = off)
    d_cmap_dim: int | None = None         # D projection dim for labels (None = channels at 4x4)
    d_map_layers: int = 8                 # depth of D's label mapping network (conditional only)

    def __post_init__(self) -> None:
        self.validate()

    # ---- validation ---------------------------------------------------------------------------
    def validate(self) -> None:
        """Types, the ranges StyleGAN2 can use (LIMITS), then the parameter-memory estimate (before building)."""
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"model config: {name}={getattr(self, name)!r} is invalid: {why}")

        for name, (lo, hi) in LIMITS.items():
            v = getattr(self, name)
            if v is None and name in _OPTIONAL:
                continue
            if not _is_int(v):
                raise bad(name, f"must be an integer{' or None' if name in _OPTIONAL else ''} "
                                f"(not {type(v).__name__}; write 32, not \"32\" or 32.0)")
            if not lo <= v <= hi:
                raise bad(name, f"must be in [{lo}, {hi}], the range flowergan supports")
        if not _is_pow2(self.resolution):
            raise bad("resolution", "must be a power of two >= 4 (e.g. 32, 64, 128, 256)")
        if self.img_channels not in (1, 3):
            raise bad("img_channels", "must be 1 (grayscale) or 3 (RGB)")
        for name in ("map_lr_mult", "w_avg_beta", "conv_clamp"):
            v = getattr(self, name)
            if v is None and name == "conv_clamp":
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise bad(name, "must be a finite number")
        for name in ("g_architecture", "d_architecture"):
            if getattr(self, name) not in ("orig", "skip", "resnet"):
                raise bad(name, "choose 'orig', 'skip' or 'resnet'")
        if not (self.map_lr_mult > 0):
            raise bad("map_lr_mult", "must be > 0")
        if not (0 <= self.w_avg_beta <= 1):
            raise bad("w_avg_beta", "must be in [0, 1]")
        if self.conv_clamp is not None and not self.conv_clamp > 0:
            raise bad("conv_clamp", "must be None or > 0")
        limit = max_param_bytes()
        need = self.param_bytes()
        if need > limit:
            g, d = self.param_counts()
            raise ConfigError(
                f"model config: G {g:,} + D {d:,} parameters need {need / 2**30:.2f} GiB as float32, over the "
                f"limit of {limit / 2**30:g} GiB (resolution {self.resolution}, channel_base {self.channel_base}, "
                f"channel_max {self.channel_max}, w_dim {self.w_dim}, map_layers {self.map_layers}). Use a smaller "
                f"model, or raise the limit with the environment variable {PARAM_LIMIT_ENV}=<GiB>.")

    # ---- size, in closed form (no network is built) ---------------------------------------------
    def param_counts(self) -> tuple[int, int]:
        """(G, D) trainable parameter counts, computed from the architecture without building it."""
        return _g_params(self), _d_params(self)

    def param_bytes(self) -> int:
        """float32 bytes of the G and D parameters (what building both networks allocates, buffers aside)."""
        return 4 * sum(self.param_counts())

    # ---- derived ------------------------------------------------------------------------------
    @property
    def log2_res(self) -> int:
        return int(math.log2(self.resolution))

    def channels_at(self, res: int) -> int:
        return min(self.channel_base // res, self.channel_max)

    @property
    def num_ws(self) -> int:
        """Number of w vectors the synthesis network consumes (2 per block, 1 at 4x4, +1 final toRGB)."""
        return 2 * (self.log2_res - 2) + 2

    # ---- JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "model config") -> ModelConfig:
        return from_dict_strict(cls, d, where)

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)


def from_dict_strict(cls, d: dict[str, Any], where: str):
    """Build dataclass `cls` from `d`, rejecting unknown keys with a message that lists the valid ones."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(d).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys are {sorted(names)}")
    try:
        return cls(**d)
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from None


def coerce_value(cls, key: str, text: str) -> Any:
    """Parse the string `text` for dataclass field `key` of `cls` (for `--set key=value`)."""
    flds = {f.name: f for f in fields(cls)}
    if key not in flds:
        raise ConfigError(f"--set {key}=...: unknown field; valid fields are {sorted(flds)}")
    if text.lower() in ("none", "null"):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # plain strings such as architecture names


# A preset is a set of explicit field overrides; the fields it leaves out follow `flowergan train --cfg`
# (channels, mapping depth, minibatch-stddev group, precision) or the defaults above.
PRESET_FIELDS: dict[str, dict[str, Any]] = {
    # The official `auto` configuration (at 128x128 for one GPU: G 22,949,277 params). Sets nothing.
    "auto-128": {},
    # The StyleGAN2 paper's 8-layer mapping, z = w = 512 (G 24,525,213 params at 128).
    "paper-128": {"map_layers": 8},
    # The flower experiment's smaller model: 4-layer mapping, z = w = 256 (G 20,852,125 params at 128).
    "lite-128": {"map_layers": 4, "z_dim": 256, "w_dim": 256},
    # A CPU-sized model for tests and the demo: 32x32, narrow channels.
    "tiny": {"resolution": 32, "z_dim": 64, "w_dim": 64, "map_layers": 2, "channel_base": 2048, "channel_max": 64},
}
PRESETS: dict[str, ModelConfig] = {name: ModelConfig(**f) for name, f in PRESET_FIELDS.items()}


def preset(name: str) -> ModelConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]


def save_json(obj: dict[str, Any], path: str | Path) -> None:
    """Write JSON atomically (temp file in the same folder, then rename)."""
    from flowergan.infra import atomic_write_text

    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


__all__ = ["FORMAT_VERSION", "NOISE_MODES", "check_noise_mode", "ConfigError", "ModelConfig", "PRESETS",
           "PRESET_FIELDS", "preset", "from_dict_strict", "coerce_value", "save_json", "field", "LIMITS",
           "PARAM_LIMIT_ENV", "max_param_bytes"]
