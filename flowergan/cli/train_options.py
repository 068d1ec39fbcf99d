"""Click options generated from TrainConfig's fields (one declaration per training option)."""

from __future__ import annotations

import dataclasses
from typing import Any

import click

from flowergan.training.config import TrainConfig, flag_of

_TYPES = {"float": float, "int": int, "str": str}


def _click_type(f: dataclasses.Field) -> Any:
    if f.metadata.get("choices"):
        return click.Choice(list(f.metadata["choices"]))
    base = str(f.type).split("|")[0].strip()
    return _TYPES.get(base, str)


def train_fields() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(TrainConfig) if f.metadata.get("cli", True)]


def train_options(fn):
    """Decorator: one click option per CLI-visible TrainConfig field, default None (= not given)."""
    for f in reversed(train_fields()):
        flag = flag_of(f.name)
        help_ = f.metadata.get("help", "")
        if f.default not in (None, "", ()) and "[default" not in help_:
            help_ += f" [default: {f.default}]"
        if f.type == "bool":
            opt = click.option(f"{flag}/--no-{flag[2:]}", f.name, default=None, help=help_)
        elif f.name == "metrics":
            opt = click.option(flag, f.name, default=None, metavar="LIST", help=help_)
        elif str(f.type).startswith("tuple[str") and f.metadata.get("choices"):  # repeatable, e.g. --log
            opt = click.option(flag, f.name, type=_click_type(f), multiple=True, default=None, help=help_)
        else:
            opt = click.option(flag, f.name, type=_click_type(f), default=None, help=help_)
        fn = opt(fn)
    return fn


def pop_train_values(kwargs: dict) -> dict[str, Any]:
    """Remove the training options from kwargs -> {field: value} for the options given."""
    out = {}
    for f in train_fields():
        v = kwargs.pop(f.name, None)
        if v is None or v == ():  # not given (a repeatable option not given is ())
            continue
        if isinstance(v, tuple) and f.name != "metrics":
            v = tuple(dict.fromkeys(v))  # repeated values once, in order
        if f.name == "metrics":
            v = tuple(m.strip() for m in v.split(",") if m.strip() and m.strip().lower() != "none")
        out[f.name] = v
    return out
