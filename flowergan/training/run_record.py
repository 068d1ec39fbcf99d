"""A run's record, RUN/config.json: one schema, written when a run starts and read by `--config` and `--resume`.

    {"model":   the resolved ModelConfig fields,
     "train":   the resolved TrainConfig fields (every option concrete),
     "request": what was asked for: {"preset", "model": explicit model fields, "train": options given},
     "world_size": processes, "torch": version, "command": the command line}

Older forms still load, converted here and nowhere else: a record without "request" (runs from before the
resolver, hand-written files, a checkpoint's own config.json, which holds "model" and "train" beside its
weights' metadata) asks for its resolved options, with unset precision fields left to follow `--amp`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from flowergan.config import ConfigError

RUN_RECORD_KEYS = ("model", "train", "request", "world_size", "torch", "command")
PRECISION_FIELDS = ("num_fp16_res", "conv_clamp")  # left out of a derived request when unset (0 / None)


@dataclass(frozen=True)
class RunRecord:
    """RUN/config.json as typed fields (`to_json` writes it, `from_json` reads every form)."""

    model: dict[str, Any]                # resolved ModelConfig fields
    train: dict[str, Any]                # resolved TrainConfig fields
    request: dict[str, Any]              # {'preset': name or None, 'model': {...}, 'train': {...}}
    world_size: int = 1
    torch: str = ""
    command: str = ""
    derived: bool = False                # read from an older form: `request` was derived from model and train

    def to_json(self) -> dict[str, Any]:
        """The JSON object, keys in RUN_RECORD_KEYS order (an empty command is left out)."""
        doc = {k: getattr(self, k) for k in RUN_RECORD_KEYS}
        if not self.command:
            doc.pop("command")
        return doc

    def replace(self, **kw: Any) -> RunRecord:
        return dataclasses.replace(self, **kw)

    @classmethod
    def from_json(cls, doc: Any) -> RunRecord:
        """Any form of a run's config.json -> a RunRecord; ConfigError (without the file's name) when it is not one."""
        if not isinstance(doc, dict):
            raise ConfigError(f"expected a JSON object with 'model' and 'train', got {type(doc).__name__}")
        model, train = doc.get("model", {}), doc.get("train", {})
        if not isinstance(model, dict) or not isinstance(train, dict):
            raise ConfigError("'model' and 'train' must be JSON objects")
        req = doc.get("request")
        derived = req is None
        if derived:
            req = {"preset": None, "train": dict(train),
                   "model": {k: v for k, v in model.items() if not (k in PRECISION_FIELDS and v in (0, None))}}
        if not isinstance(req, dict) or not isinstance(req.get("model", {}), dict) \
                or not isinstance(req.get("train", {}), dict):
            raise ConfigError("'request' must be a JSON object with 'preset', 'model' and 'train'")
        request = {"preset": req.get("preset"), "model": dict(req.get("model", {})),
                   "train": dict(req.get("train", {}))}
        world = doc.get("world_size", 1)
        return cls(model=dict(model), train=dict(train), request=request,
                   world_size=world if isinstance(world, int) and not isinstance(world, bool) else 1,
                   torch=str(doc.get("torch") or ""), command=str(doc.get("command") or ""), derived=derived)
