"""Experiment logging backends (JSON lines, TensorBoard, Weights & Biases): the same scalars, image
grids and run config go to each one chosen with `TrainConfig.log` / `flowergan train --log`."""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from flowergan.networks.run_folder import LOG_FILE
from flowergan.training.config import LOG_BACKENDS as LOGGERS

log = logging.getLogger(__name__)

_NEEDS = {"tensorboard": ("tensorboard", "tensorboard"), "wandb": ("wandb", "wandb")}  # name -> (module, extra)


def check_backends(names: tuple[str, ...] | list[str]) -> None:
    """Raise before any work if a backend is unknown, its optional package is missing or does not import, or
    (W&B) it could not start a run without asking for a key."""
    for name in names:
        if name not in LOGGERS:
            raise ValueError(f"log backend {name!r}: choose from {', '.join(LOGGERS)}")
        if name in _NEEDS:
            module, extra = _NEEDS[name]
            if importlib.util.find_spec(module) is None:
                raise ImportError(f"--log {name} needs the optional {module} package: "
                                  f"pip install 'flowergan[{extra}]'")
        if name == "tensorboard":
            try:
                import torch.utils.tensorboard  # noqa: F401  (fails when the installed tensorboard is broken)
            except Exception as e:
                raise ImportError(f"--log tensorboard: the tensorboard package does not import "
                                  f"({' '.join(str(e).split())[:200]}); reinstall it: pip install "
                                  f"'flowergan[tensorboard]'") from None
        if name == "wandb" and not wandb_can_start():
            raise ValueError("--log wandb: no W&B API key is configured and W&B is not in offline mode; run "
                             "`wandb login` (or set WANDB_API_KEY), or log offline with WANDB_MODE=offline "
                             "(and `wandb sync` the run folder's wandb/ later)")


_WANDB_LOCAL_MODES = ("offline", "disabled", "dryrun")  # modes that need no key


def _wandb_settings_mode(path: Path) -> str:
    """`mode` in a W&B settings file (what `wandb offline` / `wandb online` write), '' if none."""
    import configparser

    parser = configparser.ConfigParser()
    try:
        parser.read(path)
        return parser.get("default", "mode", fallback="").strip().lower()
    except (configparser.Error, OSError, UnicodeError):
        return ""


def _wandb_netrc_key(base_url: str) -> bool:
    import netrc
    from urllib.parse import urlsplit

    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    host = urlsplit(base_url).netloc
    try:
        creds = netrc.netrc(str(path)).authenticators(host) if host and path.is_file() else None
    except (netrc.NetrcParseError, OSError, UnicodeError):
        return False
    return bool(creds and creds[2])


def wandb_can_start() -> bool:
    """True when W&B can start a run without prompting, checked without importing wandb or any network: an
    offline/disabled mode (WANDB_MODE, WANDB_DISABLED, or the settings `wandb offline` writes), or an API key
    (WANDB_API_KEY, or the .netrc entry `wandb login` writes for WANDB_BASE_URL)."""
    env = os.environ
    if env.get("WANDB_MODE", "").strip().lower() in _WANDB_LOCAL_MODES:
        return True
    if env.get("WANDB_DISABLED", "").strip().lower() in ("1", "true", "yes"):
        return True
    if env.get("WANDB_API_KEY", "").strip() or env.get("WANDB_IDENTITY_TOKEN_FILE", "").strip():
        return True
    if env.get("WANDB_MODE", "").strip():  # online, explicitly: a settings file does not override it
        return _wandb_netrc_key(env.get("WANDB_BASE_URL", "https://api.wandb.ai"))
    config_dir = Path(env.get("WANDB_CONFIG_DIR") or Path.home() / ".config" / "wandb")
    workspace = Path(env.get("WANDB_DIR") or ".") / "wandb"
    if any(_wandb_settings_mode(d / "settings") in _WANDB_LOCAL_MODES for d in (workspace, config_dir)):
        return True
    return _wandb_netrc_key(env.get("WANDB_BASE_URL", "https://api.wandb.ai"))


def _step(record: dict[str, Any]) -> int:
    """The x axis of every backend: images shown so far (kimg * 1000)."""
    return int(round(float(record["kimg"]) * 1000))


def _scalars(record: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in record.items()
            if k != "kimg" and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


class JsonlLogger:
    """run_dir/log.jsonl: one JSON object a line: the config first as {"config": ...}, then {"kimg", scalars...}.
    Its images are the PNG grids the loop writes to run_dir/samples/ (so `image` writes nothing here)."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOG_FILE

    def _append(self, obj: dict[str, Any]) -> None:
        try:
            with open(self.path, "a") as f:
                f.write(json.dumps(obj) + "\n")
        except OSError as e:  # e.g. a full disk: the error of a write names no file
            if e.filename is None:
                e.filename = str(self.path)
            raise

    def config(self, cfg: dict[str, Any]) -> None:
        """The run's config as the log's first line; a resumed run's log already has it (config.json has the rest)."""
        if self.path.is_file() and self.path.stat().st_size > 0:
            return
        self._append({"config": cfg})

    def scalars(self, record: dict[str, Any]) -> None:
        self._append(record)

    def image(self, name: str, grid: np.ndarray, kimg: float) -> None:
        pass

    def close(self) -> None:
        pass


class TensorBoardLogger:
    """run_dir/tensorboard/: scalars (step = images shown), image grids, the config as JSON text."""

    def __init__(self, run_dir: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.tb = SummaryWriter(str(Path(run_dir) / "tensorboard"))

    def config(self, cfg: dict[str, Any]) -> None:
        self.tb.add_text("config", "```json\n" + json.dumps(cfg, indent=2) + "\n```", 0)

    def scalars(self, record: dict[str, Any]) -> None:
        step = _step(record)
        for k, v in _scalars(record).items():
            self.tb.add_scalar(k, v, step)
        self.tb.flush()

    def image(self, name: str, grid: np.ndarray, kimg: float) -> None:
        self.tb.add_image(name, grid, _step({"kimg": kimg}), dataformats="HWC")
        self.tb.flush()

    def close(self) -> None:
        self.tb.close()


class WandbLogger:
    """A Weights & Biases run in run_dir/wandb (project: $WANDB_PROJECT or 'flowergan'; name: the run
    folder's). Offline with WANDB_MODE=offline (then `wandb sync` it later)."""

    def __init__(self, run_dir: Path, cfg: dict[str, Any] | None = None):
        import wandb

        self.wandb = wandb
        run_dir = Path(run_dir)
        try:
            self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "flowergan"), name=run_dir.name,
                                  dir=str(run_dir), config=cfg or {}, reinit="create_new")
        except Exception as e:  # wandb's own errors (no key, no network) are not ours to print as a traceback
            raise RuntimeError(f"--log wandb: W&B could not start a run ({' '.join(str(e).split())[:200]}); check "
                               f"the network, run `wandb login`, or log offline with WANDB_MODE=offline") from e

    def config(self, cfg: dict[str, Any]) -> None:
        self.run.config.update(cfg, allow_val_change=True)

    def scalars(self, record: dict[str, Any]) -> None:
        self.run.log({**_scalars(record), "kimg": float(record["kimg"])}, step=_step(record))

    def image(self, name: str, grid: np.ndarray, kimg: float) -> None:
        self.run.log({name: self.wandb.Image(grid), "kimg": float(kimg)}, step=_step({"kimg": kimg}))

    def close(self) -> None:
        self.run.finish()


class RunLoggers:
    """Fans each call out to the chosen backends. log.jsonl is always written: the run folder's own
    record (the progress plot reads it); 'jsonl' may still be listed."""

    def __init__(self, run_dir: Path, names: tuple[str, ...] | list[str] = ("jsonl",),
                 config: dict[str, Any] | None = None):
        check_backends(names)
        self.backends: list[Any] = [JsonlLogger(run_dir)]
        for name in dict.fromkeys(names):
            if name == "tensorboard":
                self.backends.append(TensorBoardLogger(run_dir))
            elif name == "wandb":
                self.backends.append(WandbLogger(run_dir, config))
        if config is not None:
            for b in self.backends:
                if not isinstance(b, WandbLogger):  # W&B took it at init
                    b.config(config)

    def write(self, record: dict[str, Any]) -> None:
        """A log line: {"kimg": float, name: scalar, ...}."""
        for b in self.backends:
            b.scalars(record)

    def image(self, name: str, grid: np.ndarray, kimg: float) -> None:
        """An image grid, uint8 [H, W, C] (C = 1 or 3), e.g. the fixed sample grid at a snapshot."""
        if grid.ndim == 3 and grid.shape[2] == 1:
            grid = np.repeat(grid, 3, axis=2)
        for b in self.backends:
            b.image(name, grid, kimg)

    def close(self) -> None:
        for b in self.backends:
            try:
                b.close()
            except Exception as e:  # one backend failing to flush must not hide the others' records
                log.warning("closing %s failed: %s", type(b).__name__, e)
