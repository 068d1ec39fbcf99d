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


def _plain(d: Any, where: str = "arguments") -> dict:
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise ConfigError(f"official {where}: expected a dict of arguments, got {type(d).__name__}")
    return dict(d)


def _check(where: str, d: dict, allowed: set[str], defaults: dict[str, Any] | None = None) -> None:
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ConfigError(f"official {where}: unsupported argument(s) {unknown}; flowergan supports {sorted(allowed)}")
    for k, v in (defaults or {}).items():
        if k in d and d[k] != v:
            raise ConfigError(f"official {where}: {k}={d[k]!r} is not supported (only {v!r})")


def _int(where: str, key: str, v: Any) -> int:
    """An integer argument exactly as recorded: "32", 64.9 and True are refused, not converted."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"official {where}: {key}={v!r} must be an integer (got {type(v).__name__}); the "
                          f"snapshot is damaged or was not written by stylegan2-ada-pytorch")
    return v


def _opt_int(where: str, key: str, v: Any) -> int | None:
    return None if v is None else _int(where, key, v)


def _num(where: str, key: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(f"official {where}: {key}={v!r} must be a number (got {type(v).__name__})")
    return float(v)


def _opt_num(where: str, key: str, v: Any) -> float | None:
    return None if v is None else _num(where, key, v)


def _str(where: str, key: str, v: Any) -> str:
    if not isinstance(v, str):
        raise ConfigError(f"official {where}: {key}={v!r} must be a string (got {type(v).__name__})")
    return v


def _require(where: str, d: dict, keys: tuple[str, ...]) -> None:
    missing = [k for k in keys if k not in d]
    if missing:
        raise ConfigError(f"official {where}: required argument(s) {missing} missing; the snapshot is damaged "
                          f"or not a stylegan2-ada-pytorch network")


def config_from_official(g_kwargs: dict, d_kwargs: dict | None = None) -> ModelConfig:
    """Build a ModelConfig from the official Generator (and Discriminator) constructor arguments."""
    g = _plain(g_kwargs, "Generator")
    _check("Generator", g, _G_KEYS)
    mk = _plain(g.get("mapping_kwargs"), "Generator.mapping_kwargs")
    sk = _plain(g.get("synthesis_kwargs"), "Generator.synthesis_kwargs")
    _check("Generator.mapping_kwargs", mk, _MAP_KEYS, {"activation": "lrelu"})
    _check("Generator.synthesis_kwargs", sk, _SYN_KEYS,
           {"resample_filter": [1, 3, 3, 1], "use_noise": True, "activation": "lrelu", "kernel_size": 3})
    _require("Generator", g, ("z_dim", "w_dim", "img_resolution", "img_channels"))
    G, M, S = "Generator", "Generator.mapping_kwargs", "Generator.synthesis_kwargs"
    cfg: dict[str, Any] = dict(
        resolution=_int(G, "img_resolution", g["img_resolution"]),
        img_channels=_int(G, "img_channels", g["img_channels"]), z_dim=_int(G, "z_dim", g["z_dim"]),
        w_dim=_int(G, "w_dim", g["w_dim"]), c_dim=_int(G, "c_dim", g.get("c_dim", 0)),
        map_layers=_int(M, "num_layers", mk.get("num_layers", 8)),
        map_hidden=_opt_int(M, "layer_features", mk.get("layer_features")),
        map_embed=_opt_int(M, "embed_features", mk.get("embed_features")),
        map_lr_mult=_num(M, "lr_multiplier", mk.get("lr_multiplier", 0.01)),
        w_avg_beta=_num(M, "w_avg_beta", mk.get("w_avg_beta", 0.995)),
        channel_base=_int(S, "channel_base", sk.get("channel_base", 32768)),
        channel_max=_int(S, "channel_max", sk.get("channel_max", 512)),
        g_architecture=_str(S, "architecture", sk.get("architecture", "skip")),
        num_fp16_res=_int(S, "num_fp16_res", sk.get("num_fp16_res", 0)),
        conv_clamp=_opt_num(S, "conv_clamp", sk.get("conv_clamp")),
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
        E = "Discriminator.epilogue_kwargs"
        cfg.update(d_architecture=_str("Discriminator", "architecture", d.get("architecture", "resnet")),
                   mbstd_group=_int(E, "mbstd_group_size", ek.get("mbstd_group_size", 4)),
                   mbstd_channels=_int(E, "mbstd_num_channels", ek.get("mbstd_num_channels", 1)),
                   d_cmap_dim=_opt_int("Discriminator", "cmap_dim", d.get("cmap_dim")),
                   d_map_layers=_int("Discriminator.mapping_kwargs", "num_layers", dmk.get("num_layers", 8)))
        if d.get("num_fp16_res", 0) != cfg["num_fp16_res"] or d.get("conv_clamp") != cfg["conv_clamp"]:
            # Precision settings do not change weights; keep G's and note D's difference as harmless.
            pass
    return ModelConfig(**cfg)
