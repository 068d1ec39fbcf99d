"""Latent directions people can steer: SeFa (Shen & Zhou 2021), GANSpace PCA of w (Härkönen et al. 2020),
class directions of conditional models, and their small safetensors + JSON file.

A direction is a unit vector d [w_dim] in W, applied to the ws of a layer range L:
    ws'[:, l] = ws[:, l] + strength * std * d     for l in L,
where `std` is the standard deviation of the projections w . d over sampled (untruncated) w, so strength
is measured in standard deviations of the model's own w distribution ("-3..3" spans most of it).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flowergan.bounds import STRENGTH_RANGE
from flowergan.errors import BoundsError

__all__ = [
    "METHODS", "DIRECTIONS_FORMAT", "Directions", "style_affines", "sefa", "pca", "class_directions",
    "sample_w", "projection_std", "generator_fingerprint", "parse_layers", "parse_strengths", "apply_direction",
    "MAX_DIRECTIONS", "MAX_SAMPLES", "find_directions",
]

METHODS = ("sefa", "pca", "class")
DIRECTIONS_FORMAT = 1
MAX_DIRECTIONS = 512          # directions per file (w_dim is at most 512 in every preset)
MAX_SAMPLES = 1_000_000       # sampled w for PCA / std / class means
UNIT_TOL = 1e-3               # |length - 1| of a stored direction (float32 rows are unit to ~1e-7)
STD_MAX = 100.0               # std of w along a direction (trained models: ~0.1 to ~5; w_avg norms ~10-30)
_STRENGTHS = re.compile(r"^\s*(-?[\d.]+(?:e-?\d+)?)\s*:\s*(-?[\d.]+(?:e-?\d+)?)\s*:\s*(\d+)\s*$")


# ---- the model's style affines -------------------------------------------------------------------
def style_affines(G: torch.nn.Module) -> list[tuple[int, str, torch.Tensor]]:
    """Every style affine of the synthesis network as (ws index, module name, A [I, w_dim]).

    A is the effective weight (stored weight x weight_gain, and x ToRGB's extra gain), so the style of a
    layer is s = A w + b. The ws index follows the synthesis network: block at ws offset k uses
    ws[k] for conv0 (or conv1 in the 4x4 block), ws[k+1] for conv1 and ws[k + num_conv] for toRGB.
    """
    syn = G.synthesis
    out: list[tuple[int, str, torch.Tensor]] = []
    k = 0
    for res in syn.block_resolutions:
        block = getattr(syn, f"b{res}")
        i = k
        for name in ("conv0", "conv1"):
            layer = getattr(block, name, None)
            if layer is None:
                continue
            out.append((i, f"b{res}.{name}", layer.affine.weight.detach().to(torch.float64) * layer.affine.weight_gain))
            i += 1
        torgb = getattr(block, "torgb", None)
        if torgb is not None:
            A = torgb.affine.weight.detach().to(torch.float64) * torgb.affine.weight_gain * torgb.weight_gain
            out.append((k + block.num_conv, f"b{res}.torgb", A))
        k += block.num_conv
    return out


def _fix_signs(vecs: torch.Tensor) -> torch.Tensor:
    """Make each row's largest-magnitude component positive (eigenvectors are defined up to sign)."""
    idx = vecs.abs().argmax(dim=1, keepdim=True)
    signs = torch.sign(torch.gather(vecs, 1, idx))
    signs[signs == 0] = 1
    return vecs * signs


def sefa(G: torch.nn.Module, layers: list[int], num: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-form factorisation (SeFa): the directions n that most change the styles of `layers`.

    With A = [A_1; A_2; ...] the style affine weights [sum I_l, w_dim] of the layers fed by ws[l], l in
    `layers`, SeFa solves  max ||A n||^2  s.t. ||n|| = 1;  the solutions are the eigenvectors of A^T A,
    ranked by eigenvalue. Returns (directions float64 [num, w_dim] unit rows, eigenvalues [num] descending).
    """
    mats = [A for i, _, A in style_affines(G) if i in set(layers)]
    if not mats:
        raise ValueError(f"sefa: no style layers in {layers}; this model has ws 0-{G.num_ws - 1}")
    A = torch.cat(mats, dim=0)                                   # [sum I, w_dim]
    evals, evecs = torch.linalg.eigh(A.T @ A)                    # ascending; evecs[:, j] is one eigenvector
    order = torch.argsort(evals, descending=True)[:num]
    return _fix_signs(evecs[:, order].T.contiguous()), evals[order]


@torch.no_grad()
def sample_w(G: torch.nn.Module, samples: int, seed: int = 0, class_idx: int | None = None,
             batch: int = 4096) -> torch.Tensor:
    """Untruncated w [samples, w_dim] (float64) of z ~ N(0, I) drawn by `RandomState(seed)`.

    A conditional model gets `class_idx`, or, when None, classes drawn uniformly by the same RNG.
    """
    if not 1 <= samples <= MAX_SAMPLES:
        raise ValueError(f"samples must be in [1, {MAX_SAMPLES}], got {samples}")
    rng = np.random.RandomState(seed)
    z_all = rng.randn(samples, G.z_dim)
    cls = None
    if G.c_dim:
        cls = np.full(samples, class_idx) if class_idx is not None else rng.randint(0, G.c_dim, samples)
    device = next(G.parameters()).device
    out = []
    for i in range(0, samples, batch):
        z = torch.from_numpy(z_all[i:i + batch]).to(device)
        c = torch.zeros([z.shape[0], G.c_dim], device=device)
        if cls is not None:
            c[torch.arange(z.shape[0]), torch.from_numpy(cls[i:i + batch]).to(device)] = 1
        ws = G.mapping(z, c, update_w_avg=False)                  # [n, num_ws, w_dim]
        out.append(ws[:, 0].to(torch.float64))
    return torch.cat(out)


def pca(w: torch.Tensor, num: int) -> tuple[torch.Tensor, torch.Tensor]:
    """GANSpace: principal components of sampled w [N, w_dim].

    With the centred samples X = w - mean(w), the components are the right singular vectors of X
    (X = U S V^T), i.e. the eigenvectors of the covariance X^T X / (N - 1), ranked by variance.
    Returns (directions float64 [num, w_dim] unit rows, standard deviations S / sqrt(N - 1) [num]).
    """
    if w.ndim != 2 or w.shape[0] < 2:
        raise ValueError(f"pca needs w [N >= 2, w_dim], got {tuple(w.shape)}")
    X = (w - w.mean(dim=0, keepdim=True)).to(torch.float64)
    _, S, Vh = torch.linalg.svd(X, full_matrices=False)
    return _fix_signs(Vh[:num].contiguous()), S[:num] / math.sqrt(w.shape[0] - 1)


def class_directions(G: torch.nn.Module, samples: int, seed: int = 0) -> torch.Tensor:
    """One direction per class of a conditional model: the difference of class means in W.

    d_k = normalise(mean_w(class k) - mean_j mean_w(class j)), each class mean over `samples` w of
    z ~ N(0, I) with label k (the same z for every class). Returns float64 [c_dim, w_dim] unit rows.
    """
    if not G.c_dim:
        raise ValueError("class directions need a conditional model (c_dim > 0); this one is unconditional: "
                         "use --method sefa or pca")
    means = torch.stack([sample_w(G, samples, seed, class_idx=k).mean(dim=0) for k in range(G.c_dim)])
    d = means - means.mean(dim=0, keepdim=True)                   # [c_dim, w_dim]
    return d / d.norm(dim=1, keepdim=True).clamp_min(1e-12)


def projection_std(w: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Std (N - 1) of the projections w . d_k of samples w [N, w_dim] on unit directions [K, w_dim] -> [K]."""
    return (w.to(torch.float64) @ directions.to(torch.float64).T).std(dim=0)


def generator_fingerprint(G: torch.nn.Module) -> str:
    """sha256 over the generator's tensors (name, dtype, shape, bytes in name order): which weights a file fits."""
    h = hashlib.sha256()
    for name, t in sorted(G.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


# ---- parsing ---------------------------------------------------------------------------------------
def parse_layers(spec: str | list[int] | None, num_ws: int) -> tuple[str, list[int]]:
    """(name, ws indices) from 'all', 'coarse', 'middle', 'fine', 'A-B', 'A' or a list of indices."""
    from flowergan.inference.latents import parse_styles

    if spec is None:
        spec = "all"
    if isinstance(spec, str) and len(spec) > 64:
        raise ValueError("layers: too long; give coarse, middle, fine, all or a range like '0-3'")
    layers = parse_styles(spec, num_ws, what="layers")
    if not layers:
        raise ValueError("layers: empty; give coarse, middle, fine, all or a range like '0-3'")
    name = spec.strip().lower() if isinstance(spec, str) else ",".join(map(str, layers))
    return name, layers


def parse_strengths(spec: str | float | list[float], max_steps: int = 1024) -> list[float]:
    """Strengths from 'A:B:N' (N evenly spaced values from A to B), '-2,0,2', a number or a list."""
    from flowergan.inference.latents import parse_floats

    if isinstance(spec, str):
        m = _STRENGTHS.match(spec)
        if m:
            a, b = (_check_strength(float(m.group(i)), spec) for i in (1, 2))
            if len(m.group(3)) > 6 or not 1 <= int(m.group(3)) <= max_steps:
                raise ValueError(f"strength {spec!r}: the step count must be in [1, {max_steps}]")
            n = int(m.group(3))
            return [a] if n == 1 else [float(v) for v in np.linspace(a, b, n)]
        if ":" in spec:
            raise ValueError(f"strength {spec!r}: write a range as 'start:stop:count', e.g. '-3:3:7'")
    vals = parse_floats(spec, "strength")
    if len(vals) > max_steps:
        raise ValueError(f"strength: {len(vals)} values; at most {max_steps}")
    if not all(math.isfinite(v) for v in vals):
        raise ValueError(f"strength {spec!r}: values must be finite numbers")
    return [_check_strength(v, spec) for v in vals]


def _check_strength(v: float, spec: Any) -> float:
    """A strength within bounds.STRENGTH_RANGE (std units: -3..3 spans most of the model's w)."""
    lo, hi = STRENGTH_RANGE
    if not (math.isfinite(v) and lo <= v <= hi):
        raise BoundsError(f"strength {str(spec)[:40]!r}: {v:g} is out of range; strengths are in std units of the "
                          f"direction, use numbers in [{lo:g}, {hi:g}] (-3..3 spans most of the model's range)")
    return v


# ---- the file --------------------------------------------------------------------------------------
@dataclass
class Directions:
    """K unit directions in W for a layer range, with the std of w along each (strength 1 = 1 std)."""

    vectors: torch.Tensor               # float32 [K, w_dim], unit rows
    std: torch.Tensor                   # float32 [K]: std of w . d_k over sampled w
    method: str                         # 'sefa', 'pca' or 'class'
    layers: list[int]                   # ws indices the directions are applied to
    layer_name: str = "all"             # as given: 'coarse', '0-3', ...
    fingerprint: str = ""               # generator_fingerprint of the model they were found for
    scores: list[float] = field(default_factory=list)   # eigenvalue (sefa), std (pca); empty for class
    names: list[str] = field(default_factory=list)      # one label per direction ('pc0', 'daisy', ...)
    meta: dict[str, Any] = field(default_factory=dict)  # samples, seed, num_ws, w_dim, ...

    def __post_init__(self):
        self.vectors = torch.as_tensor(self.vectors, dtype=torch.float32)
        self.std = torch.as_tensor(self.std, dtype=torch.float32)
        if self.vectors.ndim != 2 or self.std.shape != (self.vectors.shape[0],):
            raise ValueError(f"directions: vectors must be [K, w_dim] and std [K], got {tuple(self.vectors.shape)} "
                             f"and {tuple(self.std.shape)}")
        if not self.layers or not all(isinstance(i, (int, np.integer)) and i >= 0 for i in self.layers):
            raise ValueError(f"directions: layers must be a non-empty list of ws indices, got {self.layers!r}")
        self.layers = [int(i) for i in self.layers]
        if not self.names:
            self.names = [f"{self.method}{i}" for i in range(len(self))]

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def __getitem__(self, index: int) -> Directions:
        """Direction `index` alone (a Directions of one), e.g. `m.edit(seeds, dirs[2], "-3:3:7")`."""
        self.offset(index, 0.0)  # validates the index
        return Directions(vectors=self.vectors[index:index + 1], std=self.std[index:index + 1], method=self.method,
                          layers=self.layers, layer_name=self.layer_name, fingerprint=self.fingerprint,
                          scores=self.scores[index:index + 1], names=self.names[index:index + 1],
                          meta=dict(self.meta, index=int(index)))

    @property
    def w_dim(self) -> int:
        return int(self.vectors.shape[1])

    def offset(self, index: int, strength: float) -> torch.Tensor:
        """strength * std_k * d_k: float32 [w_dim]."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < len(self):
            raise ValueError(f"direction index {index!r}: must be an integer in [0, {len(self) - 1}] "
                             f"(this file holds {len(self)} directions)")
        return float(strength) * self.std[index] * self.vectors[index]

    def info(self) -> dict[str, Any]:
        """The JSON half of the file."""
        return {"format": "flowergan-directions", "version": DIRECTIONS_FORMAT, "method": self.method,
                "layers": self.layers, "layer_name": self.layer_name, "fingerprint": self.fingerprint,
                "num": len(self), "w_dim": self.w_dim, "std": [float(s) for s in self.std],
                "scores": [float(s) for s in self.scores], "names": list(self.names), **self.meta}

    def save(self, path: str | os.PathLike) -> Path:
        """Write `path` (.safetensors: tensors 'directions' [K, w_dim] and 'std' [K]) and `path`.json beside it."""
        from safetensors.torch import save as st_save

        from flowergan.inference.images import atomic_write

        path = Path(path)
        if path.suffix != ".safetensors":
            raise ValueError(f"{path}: directions are written as NAME.safetensors (plus NAME.json beside it)")
        data = st_save({"directions": self.vectors.contiguous(), "std": self.std.contiguous()},
                       metadata={"format": "flowergan-directions", "version": str(DIRECTIONS_FORMAT)})
        info = dict(self.info(), sha256=hashlib.sha256(data).hexdigest())
        atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
        atomic_write(path.with_suffix(".json"), lambda tmp: Path(tmp).write_text(json.dumps(info, indent=1)))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Directions:
        """Read a file written by `save` (no code runs). Both files are bounded regular files
        (FLOWERGAN_MAX_DIRECTIONS_MB, checked before reading); the sha256, shapes, finite values, unit-length
        rows and a plausible std (0 <= std <= STD_MAX) are checked: a re-signed file with a huge std or
        non-unit rows is refused, not rendered."""
        from safetensors.torch import load as st_load

        from flowergan.readers import check_file, read_bytes

        path = Path(path)
        if path.suffix == ".json":
            path = path.with_suffix(".safetensors")
        meta_path = path.with_suffix(".json")
        for p in (path, meta_path):
            if not p.exists():
                raise FileNotFoundError(f"directions file {p} does not exist (a directions file is NAME.safetensors "
                                        f"with NAME.json beside it: flowergan directions writes both)")
            check_file(p, "directions file", "directions_mb")
        data = read_bytes(path, "directions file", "directions_mb")
        try:
            info = json.loads(read_bytes(meta_path, "directions file", "directions_mb").decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
            raise ValueError(f"{meta_path}: not valid JSON ({e})") from None
        if not isinstance(info, dict) or info.get("format") != "flowergan-directions":
            raise ValueError(f"{meta_path}: not a flowergan directions file (no 'format': 'flowergan-directions')")
        if info.get("version") != DIRECTIONS_FORMAT:
            raise ValueError(f"{meta_path}: directions format version {info.get('version')!r}; this flowergan "
                             f"reads version {DIRECTIONS_FORMAT}")
        if info.get("sha256") != hashlib.sha256(data).hexdigest():
            raise ValueError(f"{path}: its sha256 does not match {meta_path.name}; the two files do not belong "
                             f"together (rewrite them with flowergan directions)")
        try:
            t = st_load(data)
        except Exception as e:  # noqa: BLE001 - safetensors raises its own error types
            raise ValueError(f"{path}: not a readable safetensors file ({e})") from None
        if set(t) != {"directions", "std"}:
            raise ValueError(f"{path}: expected tensors 'directions' and 'std', found {sorted(t)}")
        vec, std = t["directions"], t["std"]
        if vec.ndim != 2 or not 1 <= vec.shape[0] <= MAX_DIRECTIONS or std.shape != (vec.shape[0],):
            raise ValueError(f"{path}: directions must be [K <= {MAX_DIRECTIONS}, w_dim] with std [K], got "
                             f"{tuple(vec.shape)} and {tuple(std.shape)}")
        if not (torch.isfinite(vec).all() and torch.isfinite(std).all()):
            raise ValueError(f"{path}: holds non-finite values")
        _check_format_values(vec, std, path)
        layers = info.get("layers")
        if not isinstance(layers, list) or not layers or not all(isinstance(i, int) and i >= 0 for i in layers):
            raise ValueError(f"{meta_path}: 'layers' must be a non-empty list of ws indices")
        known = {"format", "version", "method", "layers", "layer_name", "fingerprint", "num", "w_dim", "std",
                 "scores", "names", "sha256"}
        names = info.get("names") or []
        if not isinstance(names, list) or len(names) not in (0, vec.shape[0]):
            raise ValueError(f"{meta_path}: 'names' must hold one name per direction")
        return cls(vectors=vec, std=std, method=str(info.get("method", "?")), layers=layers,
                   layer_name=str(info.get("layer_name", "")), fingerprint=str(info.get("fingerprint", "")),
                   scores=[float(s) for s in info.get("scores") or []], names=[str(n)[:80] for n in names],
                   meta={k: v for k, v in info.items() if k not in known})

    def check_fits(self, num_ws: int, w_dim: int, fingerprint: str | None = None, where: str = "directions") -> None:
        """Raise ValueError when these directions cannot apply to a model with (num_ws, w_dim)."""
        if self.w_dim != w_dim:
            raise ValueError(f"{where}: directions are {self.w_dim}-dimensional but this model's w has {w_dim}; "
                             f"compute directions for this model with flowergan directions")
        if max(self.layers) >= num_ws:
            raise ValueError(f"{where}: layers {self.layers} do not exist in this model (ws 0-{num_ws - 1})")
        if fingerprint and self.fingerprint and fingerprint != self.fingerprint:
            raise ValueError(f"{where}: these directions were computed for another model (fingerprint "
                             f"{self.fingerprint[:12]}, this model {fingerprint[:12]}); compute them for this "
                             f"model with flowergan directions")


def _check_format_values(vec: torch.Tensor, std: torch.Tensor, path: Path) -> None:
    """Unit-length rows and 0 <= std <= STD_MAX are part of the file format (a checksum proves only that the
    two files belong together: their author can re-sign anything)."""
    norms = vec.to(torch.float64).norm(dim=1)
    bad = (norms - 1).abs() > UNIT_TOL
    if bad.any():
        k = int(bad.nonzero()[0])
        raise ValueError(f"{path}: direction {k} has length {float(norms[k]):.6g}; directions are unit vectors "
                         f"(|length - 1| <= {UNIT_TOL:g}). Rewrite the file with flowergan directions")
    bad = (std < 0) | (std > STD_MAX)
    if bad.any():
        k = int(bad.nonzero()[0])
        raise ValueError(f"{path}: direction {k} has std {float(std[k]):.6g}, outside the plausible range "
                         f"[0, {STD_MAX:g}] of a model's w; rewrite the file with flowergan directions")


def apply_direction(ws: torch.Tensor, offset: torch.Tensor, layers: list[int]) -> torch.Tensor:
    """ws [N, num_ws, w_dim] with `offset` [w_dim] added at the ws indices `layers` (a copy)."""
    out = ws.clone()
    out[:, layers] += offset.to(ws.dtype).to(ws.device)
    return out


def find_directions(G: torch.nn.Module, method: str = "sefa", layers: str | list[int] | None = "all",
                    num: int = 10, samples: int = 10000, seed: int = 0,
                    class_names: list[str] | None = None) -> Directions:
    """Discover directions of `G` with `method` ('sefa', 'pca' or 'class') for the ws range `layers`.

    `num` directions are kept (sefa, pca; 'class' gives one per class). `samples` w of z drawn with
    `seed` give every direction's std (and the PCA itself). Returns a Directions tagged with the model's
    fingerprint; the std of a unit direction d is that of w . d, so strength 1 moves w by one std.
    """
    if method not in METHODS:
        raise ValueError(f"method {method!r}: choose one of {', '.join(METHODS)}")
    if isinstance(num, bool) or not isinstance(num, int) or not 1 <= num <= min(MAX_DIRECTIONS, G.w_dim):
        raise ValueError(f"num {num!r}: must be an integer in [1, {min(MAX_DIRECTIONS, G.w_dim)}] (w_dim)")
    if isinstance(samples, bool) or not isinstance(samples, int) or not 2 <= samples <= MAX_SAMPLES:
        raise ValueError(f"samples {samples!r}: must be an integer in [2, {MAX_SAMPLES}]")
    layer_name, idx = parse_layers(layers, G.num_ws)
    names: list[str] = []
    if method == "sefa":
        vec, scores = sefa(G, idx, num)
        w = sample_w(G, samples, seed)
        std = projection_std(w, vec)
    elif method == "pca":
        w = sample_w(G, samples, seed)
        vec, std = pca(w, num)
        scores = std
        names = [f"pc{i}" for i in range(len(vec))]
    else:
        vec = class_directions(G, samples, seed)
        std = projection_std(sample_w(G, samples, seed), vec)
        scores = torch.zeros(0)
        names = list(class_names) if class_names and len(class_names) == len(vec) else \
            [f"class {k}" for k in range(len(vec))]
    return Directions(vectors=vec.float(), std=std.float(), method=method, layers=idx, layer_name=layer_name,
                      fingerprint=generator_fingerprint(G), scores=[float(s) for s in scores], names=names,
                      meta={"samples": samples, "seed": seed, "num_ws": int(G.num_ws), "model_w_dim": int(G.w_dim)})
