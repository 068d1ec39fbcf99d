"""Inputs for the round-3 hostile tests: a PNG whose header claims any size, a directions file re-signed by its
author (valid checksum, hostile values), a sparse file of any apparent size."""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from pathlib import Path

import torch
from safetensors.torch import save as st_save


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose IHDR says width x height (8-bit RGB); its pixel data is a few zero bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def resign_directions(path: Path, vectors: torch.Tensor | None = None, std: torch.Tensor | None = None) -> Path:
    """Replace the tensors of the directions file `path` and re-sign its .json (what the file's author can do)."""
    from safetensors.torch import load_file

    t = load_file(str(path))
    vec = vectors if vectors is not None else t["directions"]
    sd = std if std is not None else t["std"]
    data = st_save({"directions": vec.float().contiguous(), "std": sd.float().contiguous()},
                   metadata={"format": "flowergan-directions", "version": "1"})
    path.write_bytes(data)
    meta = path.with_suffix(".json")
    info = json.loads(meta.read_text())
    info.update(sha256=hashlib.sha256(data).hexdigest(), std=[float(s) for s in sd])
    meta.write_text(json.dumps(info))
    return path


def sparse_file(path: Path, nbytes: int, head: bytes = b"{") -> Path:
    """A file of apparent size `nbytes` that takes almost no disk (a hole after `head`)."""
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(nbytes)
    return path
