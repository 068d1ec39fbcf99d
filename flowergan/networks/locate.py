"""Find the model behind a `--network` path: a model dir, a training run dir, or an official pickle."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from flowergan.networks.run_folder import list_checkpoints, runs_in
from flowergan.networks.store import ModelFileError, is_model_dir

log = logging.getLogger(__name__)
T = TypeVar("T")

def locate_candidates(path: str | Path, flag: str = "--network") -> tuple[str, list[Path]]:
    """-> ('official', [pkl]) | ('model', [dir]) | ('run', checkpoints newest first).

    A run folder (or a folder of runs: its newest run with checkpoints) gives every checkpoint, so a caller
    can fall back past a damaged newest one; a model folder or a pickle given explicitly is the only choice.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{flag} {path}: does not exist (not a flowergan model folder, run folder or .pkl). "
                                f"{available_networks(p)}")
    if p.is_file() and p.suffix == ".pkl":
        return "official", [p]
    if p.is_dir() and is_model_dir(p):
        return "model", [p]
    if p.is_dir():
        ckpts = list_checkpoints(p)
        if ckpts:
            return "run", ckpts[::-1]
        runs = runs_in(p, complete=True)
        if runs:
            return "run", list_checkpoints(runs[-1])[::-1]
    raise FileNotFoundError(
        f"{flag} {path}: not a flowergan model folder (config.json + weights.safetensors), a training run "
        f"folder with checkpoints/, a folder of runs, or an official .pkl snapshot. {available_networks(p)}")


MAX_LISTED = 8  # networks named in a "does not exist" message
MAX_LOOKED_AT = 1000  # entries of a folder examined for it (a message must stay quick in a huge folder)


def _entries(folder: Path, limit: int = MAX_LOOKED_AT) -> list[Path]:
    try:
        return sorted(itertools.islice((q for q in folder.iterdir() if not q.name.startswith(".")), limit))
    except OSError:
        return []


def _is_network(q: Path) -> bool:
    return (q.is_file() and q.suffix == ".pkl") or (q.is_dir() and (is_model_dir(q) or bool(list_checkpoints(q))))


def _networks_in(folder: Path) -> list[str]:
    """What --network can take directly inside `folder`: model folders, run folders with checkpoints, official
    pickles, and folders of runs (marked so), sorted by name."""
    found = []
    for q in _entries(folder):
        if _is_network(q):
            found.append(str(q))
        elif q.is_dir() and any(r.is_dir() and list_checkpoints(r) for r in _entries(q, 100)):
            found.append(f"{q} (a folder of runs: its newest)")
    return found


def available_networks(missing: Path) -> str:
    """One sentence naming the networks that do exist near `missing`: in the nearest existing folder above it
    and in ./runs and ./models, so a user who mistyped a run's number sees the right one."""
    folders = []
    up = missing if missing.is_dir() else missing.parent
    while not up.is_dir() and up != up.parent:
        up = up.parent
    for f in (up, Path("runs"), Path("models")):
        if f.is_dir() and f.resolve() not in [g.resolve() for g in folders]:
            folders.append(f)
    found = [q for f in folders for q in _networks_in(f)]
    if not found:
        return ("No model folder, run folder or .pkl was found beside it (nor in ./runs, ./models); train one "
                "with `flowergan train` or give the path of one.")
    names = found[:MAX_LISTED] + (["..."] if len(found) > MAX_LISTED else [])
    runs_of = [f for f in folders if any(q.is_dir() and list_checkpoints(q) for q in _entries(f))]
    tip = f" (`--network {runs_of[0]}` takes its newest run)" if runs_of else ""
    return f"Networks that exist: {', '.join(names)}{tip}."


def first_that_loads(candidates: list[Path], load: Callable[[Path], T], where: str, none_loads: str,
                     hint: str) -> tuple[Path, T, list[tuple[Path, str]]]:
    """Try `load` on each checkpoint (newest first) -> (the first that loads, its result, the skipped ones with
    their reasons, each also logged as a warning). When none loads, raise ModelFileError
    "{where}: {none_loads}:" with one line per checkpoint and its reason, then `hint`."""
    skipped: list[tuple[Path, str]] = []
    for c in candidates:
        try:
            return c, load(c), skipped
        except (ModelFileError, OSError) as e:
            skipped.append((c, str(e)))
            log.warning("%s: skipping %s: %s", where, c, e)
    reasons = "\n".join(f"  {p.name}: {why}" for p, why in skipped)
    raise ModelFileError(f"{where}: {none_loads}:\n{reasons}\n{hint}")


def locate_and_load(path: str | Path, load_model: Callable[[Path], T], load_pickle: Callable[[Path], T],
                    flag: str = "--network") -> tuple[str, Path, T]:
    """Find the model behind `path` on disk and load it -> (kind, the file or folder used, what the loader returned).

    An official pickle or a model folder named explicitly must load itself; a run folder (or a folder of runs)
    gives its newest checkpoint that loads, each damaged newer one skipped with a warning. Errors start with
    "{flag} {path}:" when they come from the search or the fallback.
    """
    kind, found = locate_candidates(path, flag)
    if kind == "run":
        src, loaded, _ = first_that_loads(found, load_model, f"{flag} {path}", "no checkpoint loads",
                                          "Restore a checkpoint from a backup, or pass a model folder.")
        return kind, src, loaded
    return kind, found[0], (load_pickle if kind == "official" else load_model)(found[0])
