"""Translate our generator to and from rosinality's stylegan2-pytorch `Generator` state dict, the layout
pSp, e4e, HyperStyle, GANSpace and InterFaceGAN load.

The two compute the same function once tensors are renamed and reshaped (checked in
tests/ecosystem/test_eco_rosinality.py against an independent re-implementation):
  mapping.fc{i}                     <-> style.{i+1}          (EqualLinear, lr_mul 0.01, fused lrelu)
  synthesis.b4.const [C, 4, 4]      <-> input.input [1, C, 4, 4]
  b4.conv1, b{r}.conv0, b{r}.conv1  <-> conv1, convs.{2k}, convs.{2k+1}: weight [O, I, 3, 3] -> conv.weight
                                        [1, O, I, 3, 3] (no flip: both do the 2x conv as a transposed conv with
                                        the same taps, then the [1, 3, 3, 1] blur), affine -> conv.modulation,
                                        noise_strength [] -> noise.weight [1], bias -> activate.bias
  noise_const [R, R]                <-> noises.noise_{j} [1, 1, R, R], j counting layers from 4x4 up
  b4.torgb, b{r}.torgb              <-> to_rgb1, to_rgbs.{k}: bias [3] -> [1, 3, 1, 1]
  mapping.w_avg                     <-> the checkpoint's "latent_avg"
plus rosinality's fixed blur buffers (convs.{2k}.conv.blur.kernel, to_rgbs.{k}.upsample.kernel: the
normalised [1, 3, 3, 1] filter times 4), written on export and checked on import.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from flowergan.config import ConfigError, ModelConfig
from flowergan.networks.generator import Generator
from flowergan.ops import setup_filter

log = logging.getLogger(__name__)

ROS_LR_MLP = 0.01        # rosinality's default lr_mlp, which pSp, e4e and GANSpace construct with
ROS_MAX_SIZE = 1024      # its channel table stops at 1024x1024
ROS_LOW_CHANNELS = 512   # its channels at 4..32 px, whatever the multiplier
MEAN_LATENT_SAMPLES = 10_000


@dataclass(frozen=True)
class RosinalityArgs:
    """What to pass to rosinality's `Generator(size, style_dim, n_mlp, channel_multiplier=...)`."""

    size: int
    style_dim: int
    n_mlp: int
    channel_multiplier: int

    def call(self) -> str:
        return (f"Generator(size={self.size}, style_dim={self.style_dim}, n_mlp={self.n_mlp}, "
                f"channel_multiplier={self.channel_multiplier})")

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def ros_channels(res: int, multiplier: int) -> int:
    """rosinality's channel table: 512 up to 32x32, then 256 * m at 64, 128 * m at 128, ... 16 * m at 1024."""
    return ROS_LOW_CHANNELS if res <= 32 else (16384 * multiplier) // res


def _ladder(cfg: ModelConfig) -> dict[int, int]:
    return {2**k: cfg.channels_at(2**k) for k in range(2, cfg.log2_res + 1)}


def _refuse(what: str, fix: str) -> ConfigError:
    return ConfigError(f"cannot export to rosinality's format: {what}; {fix}")


def rosinality_args(cfg: ModelConfig) -> RosinalityArgs:
    """rosinality Generator arguments that build exactly this architecture; ConfigError (one line: why,
    and what would work) when its Generator cannot represent it."""
    works = "the presets auto-128, paper-128 and lite-128 export"
    if cfg.c_dim > 0:
        raise _refuse(f"the model is conditional (c_dim={cfg.c_dim}) and rosinality's Generator takes no label",
                      "export an unconditional model (c_dim 0)")
    if cfg.g_architecture != "skip":
        raise _refuse(f"g_architecture is '{cfg.g_architecture}', rosinality's Generator is 'skip' only",
                      f"train with --set g_architecture=skip ({works})")
    if cfg.img_channels != 3:
        raise _refuse(f"img_channels is {cfg.img_channels}, rosinality's ToRGB makes 3", "use an RGB model")
    if cfg.z_dim != cfg.w_dim or cfg.map_hidden not in (None, cfg.w_dim):
        raise _refuse(f"z_dim {cfg.z_dim}, mapping width {cfg.map_hidden or cfg.w_dim} and w_dim {cfg.w_dim} "
                      f"differ, rosinality uses one style_dim for all three", f"use z_dim = w_dim ({works})")
    if cfg.resolution > ROS_MAX_SIZE:
        raise _refuse(f"resolution {cfg.resolution} is over rosinality's largest size, {ROS_MAX_SIZE}",
                      f"export a model of at most {ROS_MAX_SIZE}x{ROS_MAX_SIZE}")
    ours = _ladder(cfg)
    top = max(ours)
    multiplier = ours[top] * top // 16384 if top >= 64 else 2  # at <= 32 px any multiplier fits: the default
    if multiplier < 1 or any(ros_channels(r, multiplier) != c for r, c in ours.items()):
        ladder = ", ".join(f"{r}: {c}" for r, c in ours.items())
        raise _refuse(f"its channels per resolution ({ladder}) are not rosinality's ladder (512 up to 32 px, then "
                      f"256*m at 64, 128*m at 128, ... for an integer channel_multiplier m)",
                      f"use channel_base = 16384*m with channel_max 512 (m=1: 16384, m=2: 32768; {works})")
    return RosinalityArgs(cfg.resolution, cfg.w_dim, cfg.map_layers, multiplier)


def config_for(args: RosinalityArgs) -> ModelConfig:
    """Our config for a rosinality Generator (mapping lr multiplier: rosinality's default 0.01)."""
    return ModelConfig(resolution=args.size, img_channels=3, z_dim=args.style_dim, w_dim=args.style_dim, c_dim=0,
                       map_layers=args.n_mlp, map_lr_mult=ROS_LR_MLP, channel_base=16384 * args.channel_multiplier,
                       channel_max=ROS_LOW_CHANNELS, g_architecture="skip")


# kinds of shape change: ours -> theirs
_LEAD1, _LEAD11, _SCALAR, _BIAS4D, _SAME, _MLP = "lead1", "lead11", "scalar", "bias4d", "same", "mlp"


def _ros_shape(kind: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    return {_LEAD1: (1, *shape), _LEAD11: (1, 1, *shape), _SCALAR: (1,), _BIAS4D: (1, *shape, 1, 1)}.get(kind, shape)


def key_pairs(cfg: ModelConfig) -> list[tuple[str, str, str]]:
    """(our state-dict key, rosinality key, kind of reshape) for every tensor the two share."""
    pairs = [(f"mapping.fc{i}.{p}", f"style.{i + 1}.{p}", _MLP)
             for i in range(cfg.map_layers) for p in ("weight", "bias")]
    pairs.append(("synthesis.b4.const", "input.input", _LEAD1))

    def conv(ours: str, theirs: str, noise: int) -> None:
        pairs.extend([(f"{ours}.weight", f"{theirs}.conv.weight", _LEAD1),
                      (f"{ours}.affine.weight", f"{theirs}.conv.modulation.weight", _SAME),
                      (f"{ours}.affine.bias", f"{theirs}.conv.modulation.bias", _SAME),
                      (f"{ours}.noise_strength", f"{theirs}.noise.weight", _SCALAR),
                      (f"{ours}.bias", f"{theirs}.activate.bias", _SAME),
                      (f"{ours}.noise_const", f"noises.noise_{noise}", _LEAD11)])

    def rgb(ours: str, theirs: str) -> None:
        pairs.extend([(f"{ours}.weight", f"{theirs}.conv.weight", _LEAD1),
                      (f"{ours}.affine.weight", f"{theirs}.conv.modulation.weight", _SAME),
                      (f"{ours}.affine.bias", f"{theirs}.conv.modulation.bias", _SAME),
                      (f"{ours}.bias", f"{theirs}.bias", _BIAS4D)])

    conv("synthesis.b4.conv1", "conv1", 0)
    rgb("synthesis.b4.torgb", "to_rgb1")
    for k in range(cfg.log2_res - 2):
        b = f"synthesis.b{2 ** (k + 3)}"
        conv(f"{b}.conv0", f"convs.{2 * k}", 2 * k + 1)
        conv(f"{b}.conv1", f"convs.{2 * k + 1}", 2 * k + 2)
        rgb(f"{b}.torgb", f"to_rgbs.{k}")
    return pairs


def blur_kernels(cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """rosinality's fixed filter buffers: the normalised [1, 3, 3, 1] outer product times 4 (the 2x upsample gain)."""
    k = setup_filter([1, 3, 3, 1]) * 4  # [4, 4]
    out = {}
    for i in range(cfg.log2_res - 2):
        out[f"convs.{2 * i}.conv.blur.kernel"] = k.clone()
        out[f"to_rgbs.{i}.upsample.kernel"] = k.clone()
    return out


def to_rosinality(G: Generator) -> tuple[dict[str, torch.Tensor], torch.Tensor, RosinalityArgs]:
    """Our generator -> (rosinality `g_ema` state dict, latent_avg [style_dim], constructor arguments)."""
    cfg = G.config
    if cfg is None:
        raise ConfigError("this generator has no config (G.config is None); load it with flowergan.load or "
                          "Generator.from_config")
    args = rosinality_args(cfg)
    ours = {k: v.detach().to("cpu", torch.float32) for k, v in G.state_dict().items()}
    lr_scale = cfg.map_lr_mult / ROS_LR_MLP  # same effective weights under rosinality's lr_mlp=0.01
    sd: dict[str, torch.Tensor] = {}
    for o, r, kind in key_pairs(cfg):
        t = ours[o]
        if kind == _MLP and lr_scale != 1:
            t = t * lr_scale
        sd[r] = t.reshape(_ros_shape(kind, tuple(t.shape))).clone().contiguous()
    sd.update(blur_kernels(cfg))
    return sd, ours["mapping.w_avg"].clone(), args


def infer_args(sd: dict[str, Any], where: str) -> RosinalityArgs:
    """rosinality Generator arguments read off a `g_ema` state dict's tensor shapes."""
    def shape(key: str) -> tuple[int, ...]:
        t = sd.get(key)
        if not isinstance(t, torch.Tensor):
            raise ConfigError(f"{where}: no tensor {key!r}; not a rosinality stylegan2-pytorch Generator state dict")
        return tuple(t.shape)

    n_mlp = 0
    while f"style.{n_mlp + 1}.weight" in sd:
        n_mlp += 1
    w = shape("style.1.weight")
    if len(w) != 2:
        raise ConfigError(f"{where}: style.1.weight has shape {w}, expected [style_dim, style_dim]")
    n_rgb = 0
    while f"to_rgbs.{n_rgb}.conv.weight" in sd:
        n_rgb += 1
    size = 2 ** (n_rgb + 2)
    top = shape(f"to_rgbs.{n_rgb - 1}.conv.weight" if n_rgb else "to_rgb1.conv.weight")
    if len(top) != 5 or top[1] != 3:
        raise ConfigError(f"{where}: the last ToRGB weight has shape {top}, expected [1, 3, channels, 1, 1]")
    multiplier = top[2] * size // 16384 if size >= 64 else 2
    if size > ROS_MAX_SIZE or multiplier < 1:
        raise ConfigError(f"{where}: {size}x{size} with {top[2]} channels at the top is not a rosinality Generator")
    return RosinalityArgs(size=size, style_dim=w[1], n_mlp=n_mlp, channel_multiplier=multiplier)


def from_rosinality(sd: dict[str, Any], latent_avg: torch.Tensor | None = None, where: str = "checkpoint",
                    args: RosinalityArgs | None = None) -> Generator:
    """A rosinality `g_ema` state dict (+ latent_avg) -> our Generator in eval mode. Every key must be one we
    map (or a blur buffer holding the standard filter) and every shape must match; else ConfigError. Without
    latent_avg, w_avg is the mean w of 10,000 seeded z (as rosinality's mean_latent)."""
    args = args or infer_args(sd, where)
    try:
        cfg = config_for(args)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    G = Generator.from_config(cfg).eval().requires_grad_(False)
    ours = G.state_dict()
    new: dict[str, torch.Tensor] = {}
    expected = set()
    for o, r, kind in key_pairs(cfg):
        expected.add(r)
        t = sd.get(r)
        want = _ros_shape(kind, tuple(ours[o].shape))
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != want:
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else "missing"
            raise ConfigError(f"{where}: {r} is {got}, a rosinality {args.call()} has {want}; the checkpoint "
                              f"is damaged or from a modified Generator")
        new[o] = t.detach().to(torch.float32).reshape(ours[o].shape)
    for r, k in blur_kernels(cfg).items():
        expected.add(r)
        t = sd.get(r)
        if not isinstance(t, torch.Tensor) or t.shape != k.shape or not torch.allclose(t.float(), k, atol=1e-6):
            raise ConfigError(f"{where}: {r} is not the [1, 3, 3, 1] blur filter; other blur kernels are not "
                              f"supported")
    unknown = sorted(set(sd) - expected)
    if unknown:
        raise ConfigError(f"{where}: unexpected tensor(s) {unknown[:4]} for {args.call()}; not a stock rosinality "
                          f"Generator state dict")
    bad = [k for k, t in new.items() if not bool(torch.isfinite(t).all())]
    if bad:
        raise ConfigError(f"{where}: tensor(s) {bad[:3]} hold NaN or infinity; the weights are unusable")
    G.load_state_dict({**ours, **new}, strict=True)
    with torch.no_grad():
        G.mapping.w_avg.copy_(_latent_avg(G, latent_avg, args.style_dim, where))
    return G


def _latent_avg(G: Generator, latent_avg: torch.Tensor | None, dim: int, where: str) -> torch.Tensor:
    if latent_avg is None:
        z = torch.randn([MEAN_LATENT_SAMPLES, G.z_dim], generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            return G.mapping(z, None)[:, 0].mean(0)
    t = latent_avg.detach().to(torch.float32)
    if t.ndim == 2 and t.shape[1] == dim and bool((t == t[:1]).all()):
        t = t[0]  # [1, D] or a repeated [n_latent, D]
    if tuple(t.shape) != (dim,) or not bool(torch.isfinite(t).all()):
        raise ConfigError(f"{where}: latent_avg has shape {tuple(latent_avg.shape)}, expected [{dim}] (finite)")
    return t


def read_rosinality(path: str | Path) -> dict[str, Any]:
    """Read a rosinality checkpoint safely (tensors only; no code runs) and convert it.

    Returns {'config', 'G_ema', 'G' (from 'g', or None), 'D' (from 'd', or None), 'd_skipped' (why D is None,
    or None), 'args': RosinalityArgs, 'latent_avg_source', 'train_args' (the checkpoint's "args" fields, or {})}.
    """
    from flowergan.compat.torchsave import read_torch_save

    ckpt = read_torch_save(path)
    where = str(path)
    if not isinstance(ckpt, dict):
        raise ConfigError(f"{where}: holds a {type(ckpt).__name__}, not a checkpoint dict with 'g_ema'")
    if "g_ema" in ckpt:
        sd = ckpt["g_ema"]
    elif "g" in ckpt:
        sd = ckpt["g"]
    elif "style.1.weight" in ckpt:
        sd = ckpt  # a bare Generator state dict
    else:
        raise ConfigError(f"{where}: no 'g_ema' (or 'g') state dict; keys are {sorted(map(str, ckpt))[:8]}")
    if not isinstance(sd, dict):
        raise ConfigError(f"{where}: 'g_ema' is a {type(sd).__name__}, not a state dict")
    latent = ckpt.get("latent_avg") if sd is not ckpt else None
    if latent is not None and not isinstance(latent, torch.Tensor):
        raise ConfigError(f"{where}: latent_avg is a {type(latent).__name__}, not a tensor")
    args = infer_args(sd, where)
    train_args = ckpt.get("args")
    train_args = dict(train_args) if isinstance(train_args, dict) else {}
    m = train_args.get("channel_multiplier")
    if args.size <= 32 and isinstance(m, int) and not isinstance(m, bool) and 1 <= m <= 64:
        args = RosinalityArgs(args.size, args.style_dim, args.n_mlp, m)  # shapes cannot tell it below 64 px
    G_ema = from_rosinality(sd, latent, f"{where} g_ema", args)
    G = None
    if "g_ema" in ckpt and isinstance(ckpt.get("g"), dict):
        G = from_rosinality(ckpt["g"], latent, f"{where} g", args)
    D, d_skipped = None, "the checkpoint has no 'd'"
    if sd is not ckpt and isinstance(ckpt.get("d"), dict):
        from flowergan.compat.rosinality_d import discriminator_from_rosinality

        try:  # a D from a modified fork must not cost the generator
            D, d_skipped = discriminator_from_rosinality(ckpt["d"], G_ema.config, f"{where} d"), None
        except ConfigError as e:
            log.warning("%s; the discriminator is not imported", e)
            d_skipped = str(e)
    return {"config": G_ema.config, "G_ema": G_ema, "G": G, "D": D, "d_skipped": d_skipped, "args": args,
            "latent_avg_source": "checkpoint" if latent is not None else f"mean w of {MEAN_LATENT_SAMPLES:,} seeded z",
            "train_args": train_args}


def rosinality_notes(cfg: ModelConfig) -> list[str]:
    """What the rosinality Generator does differently for this config (nothing that changes the weights)."""
    notes = []
    if cfg.conv_clamp is not None:
        notes.append(f"conv_clamp={cfg.conv_clamp:g} is not applied by rosinality's Generator (it only matters "
                     f"if activations exceed it, which a healthy model's do not)")
    if cfg.map_lr_mult != ROS_LR_MLP:
        notes.append(f"map_lr_mult={cfg.map_lr_mult:g}: the mapping weights are rescaled for rosinality's "
                     f"lr_mlp={ROS_LR_MLP:g} (keep its default)")
    if cfg.resolution <= 32:
        notes.append("at 32x32 or less every channel_multiplier gives the same network; 2 is rosinality's default")
    return notes


__all__ = ["RosinalityArgs", "config_for", "from_rosinality", "infer_args", "key_pairs", "read_rosinality",
           "ros_channels", "rosinality_args", "rosinality_notes", "to_rosinality"]
