"""Translate the official networks' constructor arguments into our ModelConfig (and refuse what we lack)."""

from __future__ import annotations

from typing import Any

from flowergan.config import ConfigError, ModelConfig

_G_KEYS = {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs"}
_MAP_KEYS = {"num_layers", "embed_features", "layer_features", "activation", "lr_multiplier", "w_avg_beta"}
_SYN_KEYS = {"channel_base", "channel_max", "num_fp16_res", "architecture", "conv_clamp", "fp16_channels_last",
             "resample_filter", "use_noise", "activation", "kernel_size"}
_D_KEYS = {"c_dim", "img_resolution", "img_channels", "architecture", "channel_base", "channel_max",
           "num_fp16_res", "conv_clamp", "cmap_dim", "block_kwargs", "mapping_kwargs", "epilogue_kwargs"}


def _plain(d: Any) -> dict:
    return dict(d) if d is not None else {}


def _check(where: str, d: dict, allowed: set[str], defaults: dict[str, Any] | None = None) -> None:
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ConfigError(f"official {where}: unsupported argument(s) {unknown}; flowergan supports {sorted(allowed)}")
    for k, v in (defaults or {}).items():
        if k in d and d[k] != v:
            raise ConfigError(f"official {where}: {k}={d[k]!r} is not supported (only {v!r})")


def config_from_official(g_kwargs: dict, d_kwargs: dict | None = None) -> ModelConfig:
    """Build a ModelConfig from the official Generator (and Discriminator) constructor arguments."""
    g = _plain(g_kwargs)
    _check("Generator", g, _G_KEYS)
    mk = _plain(g.get("mapping_kwargs"))
    sk = _plain(g.get("synthesis_kwargs"))
    _check("Generator.mapping_kwargs", mk, _MAP_KEYS, {"activation": "lrelu"})
    _check("Generator.synthesis_kwargs", sk, _SYN_KEYS,
           {"resample_filter": [1, 3, 3, 1], "use_noise": True, "activation": "lrelu", "kernel_size": 3})
    cfg: dict[str, Any] = dict(
        resolution=int(g["img_resolution"]), img_channels=int(g["img_channels"]), z_dim=int(g["z_dim"]),
        w_dim=int(g["w_dim"]), c_dim=int(g.get("c_dim", 0)),
        map_layers=int(mk.get("num_layers", 8)), map_hidden=mk.get("layer_features"),
        map_embed=mk.get("embed_features"), map_lr_mult=float(mk.get("lr_multiplier", 0.01)),
        w_avg_beta=float(mk.get("w_avg_beta", 0.995)),
        channel_base=int(sk.get("channel_base", 32768)), channel_max=int(sk.get("channel_max", 512)),
        g_architecture=sk.get("architecture", "skip"), num_fp16_res=int(sk.get("num_fp16_res", 0)),
        conv_clamp=sk.get("conv_clamp"),
    )
    if d_kwargs is not None:
        d = _plain(d_kwargs)
        _check("Discriminator", d, _D_KEYS)
        for key, ours in (("channel_base", "channel_base"), ("channel_max", "channel_max"),
                          ("img_resolution", "resolution"), ("img_channels", "img_channels"), ("c_dim", "c_dim")):
            official_default = {"channel_base": 32768, "channel_max": 512}.get(key)
            if d.get(key, official_default) != cfg[ours]:
                raise ConfigError(f"official Discriminator: {key}={d.get(key, official_default)!r} differs from "
                                  f"the Generator's {cfg[ours]!r}; flowergan needs them equal")
        ek = _plain(d.get("epilogue_kwargs"))
        dmk = _plain(d.get("mapping_kwargs"))
        _check("Discriminator.epilogue_kwargs", ek, {"mbstd_group_size", "mbstd_num_channels", "activation"},
               {"activation": "lrelu"})
        _check("Discriminator.block_kwargs", _plain(d.get("block_kwargs")),
               {"activation", "resample_filter", "fp16_channels_last", "freeze_layers"},
               {"activation": "lrelu", "resample_filter": [1, 3, 3, 1]})
        _check("Discriminator.mapping_kwargs", dmk, {"num_layers"})
        cfg.update(d_architecture=d.get("architecture", "resnet"), mbstd_group=int(ek.get("mbstd_group_size", 4)),
                   mbstd_channels=int(ek.get("mbstd_num_channels", 1)), d_cmap_dim=d.get("cmap_dim"),
                   d_map_layers=int(dmk.get("num_layers", 8)))
        if d.get("num_fp16_res", 0) != cfg["num_fp16_res"] or d.get("conv_clamp") != cfg["conv_clamp"]:
            # Precision settings do not change weights; keep G's and note D's difference as harmless.
            pass
    return ModelConfig(**cfg)
