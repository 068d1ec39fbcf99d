"""The Python API: `flowergan.load(path)` -> a Pipeline that generates, mixes, interpolates and projects.

Seeds map to z as the official generate.py does (`np.random.RandomState(seed).randn(1, z_dim)`), and
images are made one seed at a time by default, so an image depends only on its own seed and options
(never on the other seeds in the call) and matches `G(z, c, ...)` bit for bit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flowergan.bounds import LIMITS, check_count, limit
from flowergan.config import NOISE_MODES, check_noise_mode
from flowergan.errors import BadInput, BoundsError
from flowergan.inference.directions import Directions, apply_direction, find_directions, generator_fingerprint
from flowergan.inference.directions import parse_strengths as _parse_strengths
from flowergan.inference.images import load_target, make_grid, to_uint8
from flowergan.inference.latents import (
    class_to_c,
    lerp,
    parse_floats,
    parse_seeds,
    parse_styles,
    seeds_to_z,
    slerp,
    style_ranges,
)
from flowergan.inference.projector import ProjectionResult
from flowergan.inference.projector import project as _project

log = logging.getLogger(__name__)

__all__ = ["Pipeline", "MixResult", "load", "NOISE_MODES", "DEFAULT_NOISE_MODE", "SPACES"]

DEFAULT_NOISE_MODE = "const"  # as the official generate.py; "random" is seeded per image (deterministic)
SPACES = ("z", "w")


@dataclass
class MixResult:
    """A style-mixing figure's parts: cell (r, c) = row seed r's ws with layers `styles` from column seed c."""

    row_seeds: list[int]
    col_seeds: list[int]
    styles: list[int]
    row_images: np.ndarray        # uint8 [R, H, W, C]
    col_images: np.ndarray        # uint8 [K, H, W, C]
    cells: np.ndarray             # uint8 [R, K, H, W, C]

    def figure(self) -> np.ndarray:
        """The official layout: black top-left, column seeds on top, row seeds on the left.

        uint8 [(R+1)H, (K+1)W, C].
        """
        R, K, H, W, C = self.cells.shape
        tiles = [np.zeros([H, W, C], np.uint8)] + list(self.col_images)
        for r in range(R):
            tiles += [self.row_images[r]] + list(self.cells[r])
        return make_grid(np.stack(tiles), cols=K + 1)


def _check_noise_mode(noise_mode: str) -> str:
    return check_noise_mode(noise_mode)


class Pipeline:
    """A generator ready for use. `G` is the (EMA) generator in eval mode; all outputs are uint8 [.., H, W, C].

    `batch_size` > 1 batches synthesis for speed (const/none noise only); batched float rounding can
    change rare pixels by 1 level, so the default 1 keeps every image exactly reproducible per seed.
    """

    def __init__(self, G: torch.nn.Module, *, config: Any = None, D: torch.nn.Module | None = None,
                 device: str | torch.device | None = None, source: Path | None = None, batch_size: int = 1,
                 meta: dict[str, Any] | None = None):
        self.device = torch.device(device) if device is not None else next(G.parameters()).device
        self.G = G.to(self.device).eval().requires_grad_(False)
        self.D, self.source = D, source
        self.config = config if config is not None else getattr(G, "config", None)
        self.meta = dict(meta or {})  # training facts of the source (kimg, train, metrics, dataset)
        self.batch_size = max(1, int(batch_size))
        self.class_names: list[str] | None = None   # from the model's metadata or the dataset, when known
        self._fingerprint: str | None = None
        self._w_stats: tuple[torch.Tensor, float] | None = None

    def __repr__(self) -> str:
        cond = f", c_dim={self.c_dim}" if self.c_dim else ""
        return (f"Pipeline(source={str(self.source) if self.source is not None else None!r}, "
                f"resolution={self.resolution}, z_dim={self.z_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}"
                f"{cond}, device={str(self.device)!r}, batch_size={self.batch_size})")

    def to(self, device: str | torch.device) -> Pipeline:
        """Move the networks to `device` (as `nn.Module.to`); returns the pipeline itself."""
        self.device = torch.device(device)
        self.G = self.G.to(self.device)
        if self.D is not None:
            self.D = self.D.to(self.device)
        return self

    @classmethod
    def from_loaded(cls, m, batch_size: int = 1) -> Pipeline:
        """From a `loader.LoadedModel`."""
        pipe = cls(m.G, config=m.config, D=m.D, device=m.device, source=m.source, batch_size=batch_size,
                   meta=getattr(m, "meta", None))
        pipe.class_names = getattr(m, "class_names", None)
        return pipe

    # ---- save / load (Hub style) -------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, name: str | Path, device: str | torch.device = "cpu", batch_size: int = 1,
                        **hub_kwargs: Any) -> Pipeline:
        """A model folder, run folder or official .pkl, or a Hub repo id 'owner/name[@revision]'
        (needs `huggingface_hub`; `hub_kwargs`: revision, cache_dir, token, local_files_only)."""
        from flowergan.inference.hub import load_pretrained

        return cls.from_loaded(load_pretrained(name, device, **hub_kwargs), batch_size=batch_size)

    def save_pretrained(self, out_dir: str | Path, name: str | None = None) -> Path:
        """Write a model folder: config.json, weights.safetensors (G_ema, D) and a README.md model card."""
        from flowergan.inference.hub import save_pretrained

        return save_pretrained(out_dir, self._config(), self.G, self.D, self.meta, self.source, name=name)

    def push_to_hub(self, repo_id: str, *, private: bool = False, token: str | None = None,
                    commit_message: str = "Upload flowergan model") -> str:
        """Upload this model (as save_pretrained writes it) to the Hub repo `repo_id`; returns the commit URL."""
        from flowergan.inference.hub import push_to_hub

        return push_to_hub(repo_id, self._config(), self.G, self.D, self.meta, self.source, private=private,
                           token=token, commit_message=commit_message)

    def _config(self):
        if self.config is None:
            raise ValueError("this pipeline's generator has no config (build it with Generator.from_config, "
                             "or pass config= to Pipeline) so it cannot be saved")
        return self.config

    # ---- facts about the model ---------------------------------------------------------------
    @property
    def resolution(self) -> int:
        return int(self.G.img_resolution)

    @property
    def num_ws(self) -> int:
        return int(self.G.num_ws)

    @property
    def z_dim(self) -> int:
        return int(self.G.z_dim)

    @property
    def w_dim(self) -> int:
        return int(self.G.w_dim)

    @property
    def c_dim(self) -> int:
        return int(self.G.c_dim)

    @property
    def img_channels(self) -> int:
        return int(self.G.img_channels)

    def style_ranges(self) -> dict[str, list[int]]:
        """Named layer ranges (coarse / middle / fine / all) for this model's num_ws; see latents.style_ranges."""
        return style_ranges(self.num_ws)

    # ---- latents -----------------------------------------------------------------------------
    def seeds_to_z(self, seeds) -> torch.Tensor:
        """float64 [N, z_dim] on the device: `RandomState(seed).randn(1, z_dim)` for each seed."""
        return torch.from_numpy(seeds_to_z(parse_seeds(seeds), self.z_dim)).to(self.device)

    @torch.no_grad()
    def z_to_ws(self, z: torch.Tensor, truncation_psi: float = 1.0, class_idx: int | None = None,
                truncation_cutoff: int | None = None) -> torch.Tensor:
        """z [N, z_dim] -> ws [N, num_ws, w_dim] (truncated towards w_avg by psi)."""
        c = class_to_c(class_idx, self.c_dim, z.shape[0], self.device)
        return self.G.mapping(z.to(self.device), c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)

    def seeds_to_ws(self, seeds, truncation_psi: float = 1.0, class_idx: int | None = None,
                    truncation_cutoff: int | None = None) -> torch.Tensor:
        """ws [N, num_ws, w_dim] of each seed (one mapping call per seed)."""
        return torch.cat([self.z_to_ws(self.seeds_to_z([s]), truncation_psi, class_idx, truncation_cutoff)
                          for s in parse_seeds(seeds)])

    # ---- the model's range of w ----------------------------------------------------------------
    W_STATS_SAMPLES = 1000  # untruncated w sampled (seeded) to measure the typical spread

    @torch.no_grad()
    def w_stats(self) -> tuple[torch.Tensor, float]:
        """(w_avg float64 [w_dim], typical spread): the spread is the RMS distance sqrt(E||w - w_avg||^2) of
        W_STATS_SAMPLES untruncated w (z from RandomState(0); random classes for a conditional model) from
        w_avg, the point truncation pulls towards (the mapping's tracked average; the sample mean without one).
        Measured once per Pipeline; the global RNGs are untouched."""
        if self._w_stats is None:
            rng = np.random.RandomState(0)
            z = torch.from_numpy(rng.randn(self.W_STATS_SAMPLES, self.z_dim)).float().to(self.device)
            c = torch.zeros([z.shape[0], self.c_dim], device=self.device)
            if self.c_dim:
                c[torch.arange(z.shape[0]), torch.from_numpy(rng.randint(0, self.c_dim, z.shape[0]))] = 1
            w = self.G.mapping(z, c, update_w_avg=False)[:, 0].to(torch.float64)   # [S, w_dim]
            avg = getattr(self.G.mapping, "w_avg", None)
            avg = avg.to(torch.float64) if avg is not None and bool(avg.any()) else w.mean(dim=0)
            spread = float((w - avg).norm(dim=1).pow(2).mean().sqrt())
            self._w_stats = (avg, spread)
        return self._w_stats

    def check_ws(self, ws: torch.Tensor, where: str = "ws") -> None:
        """Refuse ws [N, num_ws, w_dim] that are not finite, or that lie farther from w_avg than
        FLOWERGAN_MAX_W_DISTANCE typical spreads (see `w_stats`): such w render noise, not images.
        Untruncated samples lie about 1 spread away; truncation psi scales that by |psi|."""
        if not bool(torch.isfinite(ws).all()):
            raise BadInput(f"{where}: holds NaN or infinite values (they would render black images)")
        avg, spread = self.w_stats()
        if not spread > 0 or ws.numel() == 0:
            return
        dist = (ws.to(torch.float64) - avg.to(ws.device)).norm(dim=-1).amax(dim=-1) / spread   # [N]
        cap = limit("w_distance")
        i = int(dist.argmax())
        if float(dist[i]) > cap:
            raise BoundsError(f"{where}: latent {i} lies {float(dist[i]):,.3g} typical spreads from the model's "
                              f"average w (untruncated samples lie about 1 away), over the limit of {cap}; it would "
                              f"render noise. Check the latents (a projection of another model?) or lower the edit "
                              f"strength (raise the limit with {LIMITS['w_distance'].env}=N)")

    # ---- synthesis ---------------------------------------------------------------------------
    @torch.no_grad()
    def synthesize(self, ws: torch.Tensor | np.ndarray, noise_mode: str = DEFAULT_NOISE_MODE,
                   noise_seeds: list[int] | None = None) -> np.ndarray:
        """ws [N, num_ws, w_dim] (or [num_ws, w_dim]) -> uint8 [N, H, W, C].

        With noise_mode 'random', image i's noise is drawn after `torch.manual_seed(noise_seeds[i])`
        (the global RNG state is restored afterwards); without noise_seeds it is unseeded.
        """
        _check_noise_mode(noise_mode)
        ws = torch.as_tensor(ws, dtype=torch.float32).to(self.device)
        if ws.ndim == 2:
            ws = ws[None]
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}] for this model, got {tuple(ws.shape)}")
        if noise_seeds is not None and len(noise_seeds) != ws.shape[0]:
            raise ValueError(f"noise_seeds: {len(noise_seeds)} given for {ws.shape[0]} images")
        self.check_ws(ws)
        out = []
        if noise_mode == "random" and noise_seeds is not None:
            devices = [self.device] if self.device.type == "cuda" else []
            for i, s in enumerate(noise_seeds):
                with torch.random.fork_rng(devices=devices):
                    torch.manual_seed(int(s))
                    out.append(to_uint8(self.G.synthesis(ws[i:i + 1], noise_mode="random")))
        else:
            for i in range(0, ws.shape[0], self.batch_size):
                out.append(to_uint8(self.G.synthesis(ws[i:i + self.batch_size], noise_mode=noise_mode)))
        if not out:
            return np.zeros([0, self.resolution, self.resolution, self.img_channels], np.uint8)
        return np.concatenate(out)

    def generate(self, seeds, truncation_psi: float = 1.0, class_idx: int | None = None,
                 noise_mode: str = DEFAULT_NOISE_MODE, truncation_cutoff: int | None = None) -> np.ndarray:
        """One image per seed: uint8 [N, H, W, C] equal to `G(z_seed, c, psi, cutoff, noise_mode)`.

        `seeds`: "0-63", "1,5,7-9", an int or a list. In 'random' noise mode the noise of each image
        is seeded with its own seed (`torch.manual_seed(seed)` right before synthesis).
        """
        seeds = parse_seeds(seeds)
        ws = self.seeds_to_ws(seeds, truncation_psi, class_idx, truncation_cutoff)
        return self.synthesize(ws, noise_mode, noise_seeds=seeds if noise_mode == "random" else None)

    def mix(self, row_seeds, col_seeds, styles: str | list[int] = "coarse", truncation_psi: float = 1.0,
            class_idx: int | None = None, noise_mode: str = DEFAULT_NOISE_MODE,
            truncation_cutoff: int | None = None) -> MixResult:
        """Style mixing (the official style_mixing.py): cell (r, c) = ws of row seed r with `ws[:, styles]`
        taken from column seed c. `styles`: "0-3", "0,2,5-7", "coarse" / "middle" / "fine" / "all" / "none"
        or a list of layer indices. Random noise is seeded by the row seed in the row's cells."""
        row_seeds, col_seeds = parse_seeds(row_seeds, "row seeds"), parse_seeds(col_seeds, "column seeds")
        layers = parse_styles(styles, self.num_ws)
        all_seeds = list(dict.fromkeys(row_seeds + col_seeds))
        w = dict(zip(all_seeds, self.seeds_to_ws(all_seeds, truncation_psi, class_idx, truncation_cutoff)))

        def render(ws_list, seeds):
            return self.synthesize(torch.stack(ws_list), noise_mode,
                                   noise_seeds=seeds if noise_mode == "random" else None)

        row_images = render([w[s] for s in row_seeds], row_seeds)
        col_images = render([w[s] for s in col_seeds], col_seeds)
        cells_ws, cell_seeds = [], []
        for r in row_seeds:
            for c in col_seeds:
                ws = w[r].clone()
                ws[layers] = w[c][layers]
                cells_ws.append(ws)
                cell_seeds.append(r)
        cells = render(cells_ws, cell_seeds).reshape(len(row_seeds), len(col_seeds), *row_images.shape[1:])
        return MixResult(row_seeds, col_seeds, layers, row_images, col_images, cells)

    def truncation_sweep(self, seeds, psis, class_idx: int | None = None,
                         noise_mode: str = DEFAULT_NOISE_MODE) -> np.ndarray:
        """uint8 [S, P, H, W, C]: each seed (rows) at each truncation psi (columns)."""
        seeds, psis = parse_seeds(seeds), parse_floats(psis, "psi")
        rows = [np.stack([self.generate([s], psi, class_idx, noise_mode)[0] for psi in psis]) for s in seeds]
        return np.stack(rows)

    def interpolation_latents(self, seeds, frames: int = 30, space: str = "z", truncation_psi: float = 1.0,
                              class_idx: int | None = None, loop: bool = False,
                              truncation_cutoff: int | None = None) -> torch.Tensor:
        """ws [F, num_ws, w_dim] of a walk through the seeds: `frames` steps per transition, the seeds on
        frames 0, frames, 2*frames, ...; F = (len(seeds) - 1) * frames + 1, or len(seeds) * frames + 1
        with `loop` (back to the first seed). `space` 'z' slerps z, 'w' lerps (truncated) w."""
        seeds = parse_seeds(seeds)
        if space not in SPACES:
            raise ValueError(f"space {space!r}: choose 'z' (slerp) or 'w' (lerp)")
        if len(seeds) < 2:
            raise ValueError(f"interpolate needs at least 2 seeds, got {seeds}")
        if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
            raise ValueError(f"frames must be an integer >= 1 (frames per transition), got {frames!r}")
        keys = seeds + [seeds[0]] if loop else seeds
        check_count((len(keys) - 1) * frames + 1, "frames", "interpolate frames")  # before any work
        z = self.seeds_to_z(keys)
        if space == "w":
            keys_w = self.seeds_to_ws(keys, truncation_psi, class_idx, truncation_cutoff)  # one call per seed
        out = []
        for k in range(len(keys) - 1):
            for j in range(frames):
                t = j / frames
                if space == "z":
                    zt = slerp(z[k:k + 1], z[k + 1:k + 2], t)
                    out.append(self.z_to_ws(zt, truncation_psi, class_idx, truncation_cutoff))
                else:
                    out.append(lerp(keys_w[k:k + 1], keys_w[k + 1:k + 2], t))
        last = (self.z_to_ws(z[-1:], truncation_psi, class_idx, truncation_cutoff) if space == "z"
                else keys_w[-1:].clone())
        out.append(last)
        return torch.cat(out)

    def interpolate(self, seeds, frames: int = 30, space: str = "z", truncation_psi: float = 1.0,
                    class_idx: int | None = None, noise_mode: str = DEFAULT_NOISE_MODE,
                    loop: bool = False, truncation_cutoff: int | None = None) -> np.ndarray:
        """A latent walk through `seeds`: uint8 [F, H, W, C] (F as in `interpolation_latents`).

        Frame 0 is exactly `generate(seeds[0])` (and every seed's key frame its image). In 'random'
        noise mode every frame uses the noise seeded by the first seed, so only the latent moves.
        """
        _check_noise_mode(noise_mode)
        ws = self.interpolation_latents(seeds, frames, space, truncation_psi, class_idx, loop, truncation_cutoff)
        first = parse_seeds(seeds)[0]
        return self.synthesize(ws, noise_mode, [first] * ws.shape[0] if noise_mode == "random" else None)

    # ---- directions --------------------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        """sha256 of the generator's tensors (see directions.generator_fingerprint)."""
        if self._fingerprint is None:
            self._fingerprint = generator_fingerprint(self.G)
        return self._fingerprint

    def directions(self, method: str = "sefa", layers: str | list[int] | None = "all", num: int = 10,
                   samples: int = 10000, seed: int = 0) -> Directions:
        """Discover latent directions: 'sefa' (closed form), 'pca' (GANSpace) or 'class' (conditional models).

        `layers`: the ws range they steer ('all', 'coarse', 'middle', 'fine', 'A-B'). Save the result with
        `.save("model/directions/sefa.safetensors")`; see flowergan.inference.directions for the maths.
        """
        d = find_directions(self.G, method, layers, num, samples, seed, class_names=self.class_names)
        self._fingerprint = d.fingerprint
        return d

    def _edit_inputs(self, seeds_or_w, truncation_psi: float, class_idx: int | None,
                     truncation_cutoff: int | None) -> tuple[torch.Tensor, list[int] | None]:
        """ws [N, num_ws, w_dim] and the seeds (None for given ws) of an edit's starting points."""
        if isinstance(seeds_or_w, (np.ndarray, torch.Tensor)):
            ws = torch.as_tensor(seeds_or_w, dtype=torch.float32).to(self.device)
            ws = ws.reshape(-1, *ws.shape[-2:]) if ws.ndim >= 2 else ws
            if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
                raise ValueError(f"edit: ws must be [N, {self.num_ws}, {self.w_dim}] for this model, got "
                                 f"{tuple(torch.as_tensor(seeds_or_w).shape)}")
            return ws, None
        seeds = parse_seeds(seeds_or_w)
        return self.seeds_to_ws(seeds, truncation_psi, class_idx, truncation_cutoff), seeds

    def edit_latents(self, ws: torch.Tensor, direction: Directions | torch.Tensor, strengths,
                     index: int = 0) -> torch.Tensor:
        """ws [N, num_ws, w_dim] moved along a direction: [N, T, num_ws, w_dim] for the T strengths.

        `direction`: a Directions (its direction `index`; strength in its std units) or a vector
        [w_dim] applied to every layer (strength in w units)."""
        strengths = _parse_strengths(strengths)
        if isinstance(direction, Directions):
            direction.check_fits(self.num_ws, self.w_dim, self.fingerprint if direction.fingerprint else None)
            offsets = [direction.offset(index, s) for s in strengths]
            layers = direction.layers
        else:
            vec = torch.as_tensor(direction, dtype=torch.float32).flatten()
            if vec.shape != (self.w_dim,):
                raise ValueError(f"edit: a direction vector must be [{self.w_dim}], got {tuple(vec.shape)}")
            offsets, layers = [s * vec for s in strengths], list(range(self.num_ws))
        return torch.stack([apply_direction(ws, o, layers) for o in offsets], dim=1)

    def edit(self, seeds_or_w, direction: Directions | torch.Tensor, strength="-3:3:7", *, index: int = 0,
             truncation_psi: float = 1.0, class_idx: int | None = None, noise_mode: str = DEFAULT_NOISE_MODE,
             truncation_cutoff: int | None = None) -> np.ndarray:
        """Images along a direction: uint8 [N, T, H, W, C], row n = start n at each of the T strengths.

        `seeds_or_w`: seeds ("0-3", a list) mapped with truncation psi (and cutoff) first, then moved;
        or ws [N, num_ws, w_dim] / a projected_w array [1, num_ws, w_dim], used as given.
        `strength`: "-3:3:7" (7 values from -3 to 3), "-2,0,2", a number or a list. Strength 0 is the
        unedited image. 'random' noise is seeded by the seed (or by 0 for given ws) in every cell.
        """
        _check_noise_mode(noise_mode)
        ws, seeds = self._edit_inputs(seeds_or_w, truncation_psi, class_idx, truncation_cutoff)
        moved = self.edit_latents(ws, direction, strength, index)          # [N, T, num_ws, w_dim]
        N, T = moved.shape[:2]
        noise = None
        if noise_mode == "random":
            noise = [s for s in (seeds or [0] * N) for _ in range(T)]
        images = self.synthesize(moved.reshape(N * T, self.num_ws, self.w_dim), noise_mode, noise)
        return images.reshape(N, T, *images.shape[1:])

    def project(self, target, steps: int = 1000, space: str = "w", *, seed: int = 303, lr: float = 0.1,
                vgg16: Any = None, vgg16_sha256: str | None = None, class_idx: int | None = None,
                progress: bool = True, **kwargs: Any) -> ProjectionResult:
        """Invert a photo into W ('w') or W+ ('w+') with the official projector (see projector.project).

        `target`: a path, PIL image or uint8 array; it is center-cropped and Lanczos-resized to the model
        resolution. `vgg16`: None (auto), "download", a TorchScript path, "none" (fallback loss) or a callable.
        Returns a ProjectionResult with `.w` [num_ws, w_dim], `.image` uint8 [H, W, C], `.psnr` (dB).
        """
        target = load_target(target, self.resolution, self.img_channels)
        c = class_to_c(class_idx, self.c_dim, 1, self.device) if self.c_dim else None
        return _project(self.G, target, steps=steps, space=space, c=c, seed=seed, lr=lr, vgg16=vgg16,
                        vgg16_sha256=vgg16_sha256, progress=progress, **kwargs)


def load(path: str | Path, device: str | torch.device = "cpu", batch_size: int = 1, **hub_kwargs: Any) -> Pipeline:
    """Load a model dir, a training run dir (latest checkpoint), an official .pkl (read safely) or a Hub
    repo id 'owner/name' (with huggingface_hub installed) -> Pipeline."""
    return Pipeline.from_pretrained(path, device=device, batch_size=batch_size, **hub_kwargs)
