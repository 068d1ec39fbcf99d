"""The explorer's generation endpoints (bodies validated with sizes bounded before any work):
  GET  /api/info          model facts, named style ranges and the limits
  POST /api/generate      {"seed" | "seeds", "grid", psi, ...} -> {"images": [PNG data URLs], "grid"}
  POST /api/mix           {"row_seed", "col_seed", "styles", psi, ...} -> 3 images
  POST /api/interpolate   {"seeds", "frames", "space", "loop", psi, ...} -> frames
(psi, ...: the generation options every request takes: psi, noise_mode, class_idx and "cutoff", which
truncates only the first N ws)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from flowergan.inference.api import NOISE_MODES, SPACES, Pipeline
from flowergan.inference.images import make_grid
from flowergan.inference.latents import MAX_SEED, parse_styles
from flowergan.web.limits import Limits
from flowergan.web.requests import (
    ApiError,
    bool_field,
    check_keys,
    choice_field,
    data_url,
    generation_options,
    int_field,
    seed_list,
    walk_fields,
)

__all__ = ["GenerateApi"]

_OPTIONS = {"psi", "cutoff", "noise_mode", "class_idx"}  # the fields of `generation_options`


class GenerateApi:
    """Handlers of the generation endpoints: `pipe` is only used inside `run` (the generation worker's
    `GenerationWorker.run`), which returns the result or raises ApiError."""

    def __init__(self, pipe: Pipeline, limits: Limits, run: Callable[[Callable[[], Any]], Any]):
        self.pipe, self.limits, self.run = pipe, limits, run

    def info(self) -> dict:
        p = self.pipe
        return {"resolution": p.resolution, "img_channels": p.img_channels, "z_dim": p.z_dim,
                "w_dim": p.w_dim, "c_dim": p.c_dim, "num_ws": p.num_ws, "style_ranges": p.style_ranges(),
                "noise_modes": list(NOISE_MODES), "spaces": list(SPACES), "max_seed": MAX_SEED,
                "model": getattr(p.source, "name", None) or "model", "limits": asdict(self.limits),
                "class_names": p.class_names}

    def api_generate(self, body: dict) -> dict:
        check_keys(body, {"seed", "seeds", "grid"} | _OPTIONS)
        if ("seed" in body) == ("seeds" in body):
            raise ApiError(400, f"give exactly one of seed (an integer in [0, {MAX_SEED}]) or seeds (a list)")
        seeds = ([int_field(body, "seed", 0, MAX_SEED)] if "seed" in body
                 else seed_list(body, "seeds", 1, self.limits.max_batch))
        kw = generation_options(body, self.pipe, self.limits)
        grid = bool_field(body, "grid")
        images = self.run(lambda: self.pipe.generate(seeds, **kw))
        out = {"seeds": seeds, "images": [data_url(im) for im in images]}
        if grid:
            out["grid"] = data_url(make_grid(images))
        return out

    def api_mix(self, body: dict) -> dict:
        check_keys(body, {"row_seed", "col_seed", "styles"} | _OPTIONS)
        row, col = int_field(body, "row_seed", 0, MAX_SEED), int_field(body, "col_seed", 0, MAX_SEED)
        styles = body.get("styles", "coarse")
        n = self.pipe.num_ws
        if isinstance(styles, list):
            ok = all(isinstance(i, int) and not isinstance(i, bool) for i in styles) and len(styles) <= n
            if not ok:
                raise ApiError(400, f"styles: a list must hold at most {n} layer indices in [0, {n - 1}]")
        elif not isinstance(styles, str) or len(styles) > 64:
            raise ApiError(400, "styles: give a layer range like '0-3', a name (coarse, middle, fine, all, "
                                "none) or a list of layer indices")
        try:
            layers = parse_styles(styles, n)
        except ValueError as e:
            raise ApiError(400, str(e)) from None
        kw = generation_options(body, self.pipe, self.limits)
        r = self.run(lambda: self.pipe.mix([row], [col], layers, **kw))
        return {"styles": layers, "row_image": data_url(r.row_images[0]),
                "col_image": data_url(r.col_images[0]), "mix_image": data_url(r.cells[0, 0])}

    def api_interpolate(self, body: dict) -> dict:
        check_keys(body, {"seeds", "frames", "space", "loop"} | _OPTIONS)
        seeds, frames, loop, _ = walk_fields(body, self.limits.max_walk_seeds, self.limits.max_frames)
        space = choice_field(body, "space", SPACES, "z")
        kw = generation_options(body, self.pipe, self.limits)
        images = self.run(lambda: self.pipe.interpolate(seeds, frames=frames, space=space, loop=loop, **kw))
        return {"seeds": seeds, "frames": [data_url(im) for im in images]}
