"""Hub-style save and load: `save_pretrained(dir)` writes a model folder with a model card,
`from_pretrained(dir_or_repo_id)` reads one back, from disk or (with the optional `huggingface_hub`)
from a Hub repo. Both go through our safe format only: safetensors + JSON, never a pickle."""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from flowergan.config import ModelConfig
from flowergan.inference.loader import LoadedModel, load_networks
from flowergan.inference.model_card import card_facts, render_card
from flowergan.networks.store import CONFIG_NAME, WEIGHTS_NAME, write_model_dir

log = logging.getLogger(__name__)

CARD_NAME = "README.md"
HUB_FILES = [CONFIG_NAME, WEIGHTS_NAME, CARD_NAME]  # all a Hub download fetches: no code, no pickles
# owner/name[@revision], as the Hub spells repo ids
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}(@[A-Za-z0-9._/-]+)?$")
_META_KEYS = ("kimg", "train", "metrics", "dataset", "augment_p", "command")


def _require_hub():
    try:
        import huggingface_hub
    except ImportError:
        raise ImportError("Hub repo ids need the optional huggingface_hub package: pip install 'flowergan[hub]' "
                          "(a local model folder needs nothing extra)") from None
    return huggingface_hub


def is_repo_id(name: str) -> bool:
    """True for 'owner/name' or 'owner/name@revision' that is not an existing local path."""
    return bool(_REPO_ID.match(str(name))) and not Path(name).exists()


def save_pretrained(out_dir: str | Path, config: ModelConfig, G: torch.nn.Module, D: torch.nn.Module | None,
                    meta: dict[str, Any] | None = None, source: Path | None = None,
                    name: str | None = None) -> Path:
    """Write `out_dir` atomically: config.json (+ the training facts in `meta`), weights.safetensors
    (`G_ema.*`, and `D.*` when D is given) and README.md (the model card). Returns the folder."""
    out_dir = Path(out_dir)
    meta = {k: v for k, v in (meta or {}).items() if k in _META_KEYS}
    facts = card_facts(config, meta, source)
    if facts["command"] and "command" not in meta:
        meta["command"] = facts["command"]  # carried along when the folder is copied out of its run
    card = render_card(config, G, D, facts, name=name or out_dir.name)
    return write_model_dir(out_dir, config, {"G_ema": G, "D": D}, meta=meta, extra_files={CARD_NAME: card})


def download(repo_id: str, *, revision: str | None = None, cache_dir: str | Path | None = None,
             token: str | bool | None = None, local_files_only: bool = False) -> Path:
    """Fetch a Hub repo's model files (config.json, weights.safetensors, README.md) into the Hub cache
    and return the local snapshot folder. Honours HF_HUB_OFFLINE / HF_HUB_CACHE as huggingface_hub does."""
    hub = _require_hub()
    if "@" in repo_id and revision is None:
        repo_id, revision = repo_id.split("@", 1)
    try:
        path = Path(hub.snapshot_download(repo_id, revision=revision, cache_dir=cache_dir, token=token,
                                          allow_patterns=HUB_FILES, local_files_only=local_files_only,
                                          library_name="flowergan"))
    except Exception as e:  # offline without it in the cache, unknown repo, no access, ...
        raise FileNotFoundError(f"{repo_id}: no such local folder, and the Hub repo could not be fetched: "
                                f"{type(e).__name__}: {e}") from None
    if not (path / CONFIG_NAME).is_file() or not (path / WEIGHTS_NAME).is_file():
        raise FileNotFoundError(f"hub repo {repo_id}: no flowergan model in it (expected {CONFIG_NAME} and "
                                f"{WEIGHTS_NAME} at the top level; got {sorted(p.name for p in path.iterdir())})")
    return path


def load_pretrained(name: str | Path, device: str | torch.device = "cpu", **hub_kwargs: Any) -> LoadedModel:
    """A local model / run folder or official .pkl (as `load_networks`), else a Hub repo id."""
    if not Path(name).exists() and is_repo_id(str(name)):
        try:
            _require_hub()
        except ImportError:
            raise FileNotFoundError(f"{name}: no such local file or folder; to load the Hub repo {name}, install "
                                    f"the optional huggingface_hub: pip install 'flowergan[hub]'") from None
        return load_networks(download(str(name), **hub_kwargs), device)
    if hub_kwargs:
        log.debug("%s is a local path: hub options %s ignored", name, sorted(hub_kwargs))
    return load_networks(name, device)


def push_to_hub(repo_id: str, config: ModelConfig, G: torch.nn.Module, D: torch.nn.Module | None,
                meta: dict[str, Any] | None = None, source: Path | None = None, *, private: bool = False,
                token: str | None = None, commit_message: str = "Upload flowergan model") -> str:
    """save_pretrained into a temporary folder, create the repo if needed and upload it; returns the commit URL."""
    hub = _require_hub()
    if not _REPO_ID.match(repo_id) or "@" in repo_id:
        raise ValueError(f"repo id {repo_id!r}: expected 'owner/name' (letters, digits, '.', '_', '-')")
    api = hub.HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="flowergan-push-") as tmp:
        folder = save_pretrained(Path(tmp) / "model", config, G, D, meta, source, name=repo_id.split("/")[1])
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=commit_message)
    return str(getattr(info, "commit_url", info))
