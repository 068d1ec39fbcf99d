"""The model flags every model-building command shares: --preset plus size overrides and --set."""

from __future__ import annotations

import functools

import click

from flowergan.config import PRESETS, ConfigError, ModelConfig, coerce_value, preset

_OVERRIDES = [
    ("resolution", "--resolution", int, "Output resolution (power of two >= 4)."),
    ("map_layers", "--map-layers", int, "Mapping network depth (official auto: 2, paper: 8)."),
    ("z_dim", "--z-dim", int, "Latent z width."),
    ("w_dim", "--w-dim", int, "Intermediate latent w width."),
    ("channel_base", "--channel-base", int, "Feature maps at resolution r = min(channel_base / r, channel_max)."),
    ("channel_max", "--channel-max", int, "Maximum feature maps per layer."),
    ("c_dim", "--c-dim", int, "Label width for conditional models (0 = unconditional)."),
]


def model_options(default_preset: str = "auto-128"):
    """Decorator adding --preset, the size overrides and --set key=value to a click command."""

    def deco(fn):
        @click.option("--set", "set_", multiple=True, metavar="KEY=VALUE",
                      help="Set any other model config field, e.g. --set g_architecture=resnet (repeatable).")
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return fn(*args, **kwargs)

        for name, flag, typ, help_ in reversed(_OVERRIDES):
            wrapper = click.option(flag, name, type=typ, default=None, help=help_)(wrapper)
        wrapper = click.option("--preset", type=click.Choice(sorted(PRESETS)), default=default_preset,
                               show_default=True, help="Starting configuration.")(wrapper)
        return wrapper

    return deco


def pop_model_config(kwargs: dict) -> ModelConfig:
    """Remove the model flags from a command's kwargs and build the ModelConfig (clear errors on bad values)."""
    name, changes = pop_model_fields(kwargs)
    try:
        return preset(name).replace(**changes)
    except (ConfigError, TypeError) as e:
        raise click.UsageError(str(e)) from None


def pop_model_fields(kwargs: dict) -> tuple[str, dict]:
    """Remove the model flags from kwargs -> (preset name, the fields given by flags and --set)."""
    name = kwargs.pop("preset")
    changes = {}
    for field_name, *_ in _OVERRIDES:
        v = kwargs.pop(field_name, None)
        if v is not None:
            changes[field_name] = v
    for item in kwargs.pop("set_", ()) or ():
        if "=" not in item:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--set")
        k, v = item.split("=", 1)
        try:
            changes[k.strip()] = coerce_value(ModelConfig, k.strip(), v.strip())
        except ConfigError as e:
            raise click.BadParameter(str(e), param_hint="--set") from None
    return name, changes
