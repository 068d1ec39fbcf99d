"""Load any supported network file into eval-mode modules on a device."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from flowergan.config import ModelConfig
from flowergan.networks import Discriminator, Generator
from flowergan.networks.locate import locate_and_load
from flowergan.networks.store import load_model_dir, read_json


@dataclass
class LoadedModel:
    G: Generator                  # the generator to use (G_ema when present), eval mode
    D: Discriminator | None
    config: ModelConfig
    source: Path                  # the file or folder found and loaded
    device: torch.device
    augment_p: float = 0.0
    class_names: list[str] | None = None  # the dataset's class names, when the checkpoint recorded them
    meta: dict = field(default_factory=dict)  # the model folder's config.json (kimg, train, metrics, ...)


def load_networks(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a model dir, a run dir (its newest checkpoint that loads) or an official pickle (safely).

    For a run folder, a damaged newest checkpoint (e.g. cut short by a full disk) is skipped with a warning
    and the next older one is used; when none loads, the error lists every reason.
    """
    from flowergan.compat.official import load_official_pickle

    device = torch.device(device)
    kind, src, d = locate_and_load(path, load_model_dir, load_official_pickle)
    if kind == "official":
        cfg, aug_p, meta = d["config"], d["augment_p"], {"augment_p": d["augment_p"], "source_pickle": src.name}
        names = None
    else:
        cfg, meta = d["config"], d["meta"]
        if "augment_p" not in meta and (src / "train_state.json").is_file():
            # a training checkpoint keeps ADA's p in its train_state.json only; a fixed p is a train option
            train = meta.get("train") if isinstance(meta.get("train"), dict) else {}
            fixed = train.get("p", 0.0) if train.get("aug") == "fixed" else 0.0
            meta = {**meta, "augment_p": _checkpoint_ada_p(src) if train.get("aug") == "ada" else fixed}
        aug_p = float(meta.get("augment_p") or 0.0)
        names = d["meta"].get("class_names")
    G = d["G_ema"] if d.get("G_ema") is not None else d["G"]
    if G is None:
        raise ValueError(f"{src}: holds no generator weights")
    G = G.to(device).eval().requires_grad_(False)
    D = d.get("D")
    if D is not None:
        D = D.to(device).eval().requires_grad_(False)
    ok = isinstance(names, list) and len(names) == G.c_dim and all(isinstance(n, str) for n in names)
    return LoadedModel(G=G, D=D, config=cfg, source=src, device=device, augment_p=aug_p, meta=meta,
                       class_names=[n[:80] for n in names] if ok else None)



def _checkpoint_ada_p(folder: Path) -> float | None:
    """ADA's p stored in a training checkpoint's train_state.json (None for a model folder or a run without ADA)."""
    ada = read_json(Path(folder) / "train_state.json", "training state").get("ada")
    p = ada.get("p") if isinstance(ada, dict) else None
    return float(p) if isinstance(p, (int, float)) and not isinstance(p, bool) else None
