"""The model card: a README.md for a saved model folder, written from what the folder records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from flowergan.config import ModelConfig


def _params(module: torch.nn.Module | None) -> str:
    return f"{sum(p.numel() for p in module.parameters()):,}" if module is not None else "not saved"


def _run_command(source: Path | None) -> str | None:
    """The training command recorded in the run folder's config.json (a checkpoint's grandparent)."""
    from flowergan.networks.run_folder import CHECKPOINTS_DIR, RUN_CONFIG
    from flowergan.readers import read_json

    if source is None or source.parent.name != CHECKPOINTS_DIR:
        return None
    try:
        doc = read_json(source.parent.parent / RUN_CONFIG, "run config")
    except (OSError, ValueError):
        return None
    cmd = doc.get("command") if isinstance(doc, dict) else None
    return str(cmd) if cmd else None


def portable_command(cmd: str | None) -> str | None:
    """A recorded command line without this machine's install path: `/home/me/.venv/bin/flowergan train ...` or
    `.../flowergan/__main__.py train ...` -> `flowergan train ...` (a card is published; the venv is not)."""
    if not cmd:
        return cmd
    first, _, rest = cmd.strip().partition(" ")
    name = Path(first).name
    if name in ("flowergan", "__main__.py", "-m") or first.endswith("flowergan/__main__.py"):
        first = "flowergan"
    elif "/" in first:
        first = name
    return f"{first} {rest}".strip()


def card_facts(cfg: ModelConfig, meta: dict[str, Any], source: Path | None) -> dict[str, Any]:
    """The facts a card shows, from a model folder's config.json meta (missing ones: None)."""
    train = meta.get("train") if isinstance(meta.get("train"), dict) else {}
    dataset = meta.get("dataset") if isinstance(meta.get("dataset"), dict) else {}
    metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
    data_path = dataset.get("name") or (Path(train["data"]).name if train.get("data") else None)
    return {
        "kimg": meta.get("kimg"),
        "data_name": data_path,
        "data_size": dataset.get("size"),
        "fid": metrics.get("fid"),
        "fid_num_gen": train.get("metrics_num"),
        "command": portable_command(meta.get("command") or _run_command(source)),
        "augment_p": meta.get("augment_p"),
    }


def render_card(cfg: ModelConfig, G: torch.nn.Module, D: torch.nn.Module | None, facts: dict[str, Any],
                name: str = "flowergan model") -> str:
    """Markdown text with a Hub-style YAML header."""

    def show(v: Any, fmt: str = "{}") -> str:
        return "unknown" if v is None else fmt.format(v)

    res = cfg.resolution
    fid = facts.get("fid")
    if fid is None:
        fid_line = "not measured for this snapshot (`flowergan metrics --network <folder> --metrics fid`)"
    else:
        n = facts.get("fid_num_gen")
        fid_line = (f"{fid:.2f}: {show(n, '{:,}')} generated images against the whole training set, Inception-v3 "
                    f"(2015-12-05) pool3 features, measured during training (official fid50k_full uses 50,000)")
    arch = (f"StyleGAN2 (ADA) generator, {res}x{res}x{cfg.img_channels}; z {cfg.z_dim}, w {cfg.w_dim}, "
            f"mapping {cfg.map_layers} layers, channel_base {cfg.channel_base}, channel_max {cfg.channel_max}, "
            f"G {cfg.g_architecture} / D {cfg.d_architecture}, labels c_dim {cfg.c_dim}")
    lines = [
        "---",
        "library_name: flowergan",
        "tags: [stylegan2, stylegan2-ada, gan, image-generation, unconditional-image-generation]",
        "---",
        "",
        f"# {name}",
        "",
        "A StyleGAN2-ADA model in the flowergan format: `config.json` (format version + model config) and "
        "`weights.safetensors` (`G_ema.*` generator, `D.*` discriminator). Loading never runs code.",
        "",
        "| | |",
        "|---|---|",
        f"| architecture | {arch} |",
        f"| generator parameters | {_params(G)} |",
        f"| discriminator parameters | {_params(D)} |",
        f"| training data | {show(facts.get('data_name'))}, {show(facts.get('data_size'), '{:,} images')} |",
        f"| trained for | {show(facts.get('kimg'), '{:g} kimg')} (thousands of real images shown to D) |",
        f"| augmentation p at the end | {show(facts.get('augment_p'), '{:.4f}')} |",
        f"| FID | {fid_line} |",
        "",
        "## Training command",
        "",
        "```bash",
        facts.get("command") or "unknown (not recorded with this model)",
        "```",
        "",
        "## Use",
        "",
        "```python",
        "import flowergan",
        "m = flowergan.load(\"<this folder or a hub repo id>\")  # or Pipeline.from_pretrained",
        "imgs = m.generate([0, 1, 2], truncation_psi=0.7)   # uint8 [N, H, W, C]",
        "```",
        "",
    ]
    return "\n".join(lines)
