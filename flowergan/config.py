"""Typed model configuration: frozen dataclasses, presets, validation and a strict JSON round trip."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1


class ConfigError(ValueError):
    """A configuration value or file is invalid; the message says which field and how to fix it."""


def _is_pow2(n: int) -> bool:
    return isinstance(n, int) and n >= 1 and (n & (n - 1)) == 0


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
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"model config: {name}={getattr(self, name)!r} is invalid: {why}")

        if not (_is_pow2(self.resolution) and self.resolution >= 4):
            raise bad("resolution", "must be a power of two >= 4 (e.g. 32, 64, 128, 256)")
        for name in ("img_channels", "z_dim", "w_dim", "map_layers", "channel_base", "channel_max"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise bad(name, "must be an integer >= 1")
        for name in ("c_dim", "num_fp16_res", "mbstd_group", "mbstd_channels"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise bad(name, "must be an integer >= 0")
        if self.d_map_layers < 1:
            raise bad("d_map_layers", "must be >= 1")
        for name in ("map_hidden", "map_embed", "d_cmap_dim"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 1):
                raise bad(name, "must be None or an integer >= 1")
        if self.g_architecture not in ("orig", "skip", "resnet"):
            raise bad("g_architecture", "choose 'orig', 'skip' or 'resnet'")
        if self.d_architecture not in ("orig", "skip", "resnet"):
            raise bad("d_architecture", "choose 'orig', 'skip' or 'resnet'")
        if not (self.map_lr_mult > 0):
            raise bad("map_lr_mult", "must be > 0")
        if not (0 <= self.w_avg_beta <= 1):
            raise bad("w_avg_beta", "must be in [0, 1]")
        if self.conv_clamp is not None and not self.conv_clamp > 0:
            raise bad("conv_clamp", "must be None or > 0")
        if self.img_channels not in (1, 3):
            raise bad("img_channels", "must be 1 (grayscale) or 3 (RGB)")

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
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = ["FORMAT_VERSION", "ConfigError", "ModelConfig", "PRESETS", "PRESET_FIELDS", "preset", "from_dict_strict",
           "coerce_value", "save_json", "field"]
