"""The explorer's editing endpoints: direction sets (saved files or computed on demand), edits with several
direction sliders at once, walk downloads (GIF/MP4) and photo projection with progress.

Every body is validated with sizes bounded before any work (flowergan.web.requests):
  POST /api/directions   {"method", "layers", "num"} -> a new direction set computed on demand
  POST /api/edit         {"seed" | "projection", "set", "values": {index: strength}, psi, ...} -> image
  POST /api/walk-video   {"seeds", "frames", "space", "loop", "format": "gif"|"mp4", psi, ...} -> file
  POST /api/project      {"image": data URL (PNG/JPEG), "steps", "space"} -> {"job"} (on its own worker)
  (psi, ...: the generation options psi, cutoff, noise_mode, class_idx)
  GET  /api/project/<job> -> {"step", "steps", "done", "error", "preview", "image", "target", "projection"}
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flowergan.errors import BadInput, BoundsError
from flowergan.inference.api import SPACES, Pipeline
from flowergan.inference.directions import Directions, apply_direction, parse_layers
from flowergan.inference.images import load_target, to_uint8
from flowergan.inference.latents import MAX_SEED
from flowergan.inference.video import write_video
from flowergan.readers import load_image
from flowergan.web.limits import EditLimits, Limits
from flowergan.web.requests import (
    ApiError,
    bytes_url,
    check_keys,
    choice_field,
    class_field,
    data_url,
    generation_options,
    int_field,
    walk_fields,
)
from flowergan.web.worker import Busy

log = logging.getLogger(__name__)

__all__ = ["EditLimits", "EditApi", "decode_photo"]


def decode_photo(url: Any, max_pixels: int) -> np.ndarray:
    """A data URL (image/png or image/jpeg, base64) -> uint8 RGB [H, W, 3]; the pixel count is checked
    from the header before the image is decoded (the one image reader, flowergan.readers.load_image)."""
    if not isinstance(url, str) or not url.startswith(("data:image/png;base64,", "data:image/jpeg;base64,")):
        raise ApiError(400, "image: must be a data URL of a PNG or JPEG photo ('data:image/png;base64,...')")
    try:
        raw = base64.b64decode(url.split(",", 1)[1], validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "image: the base64 data is not valid") from None
    try:
        with load_image(raw, "image", max_pixels=max_pixels, formats=("PNG", "JPEG")) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except BoundsError as e:
        raise ApiError(413, f"{e}") from None
    except (BadInput, OSError, ValueError) as e:
        raise ApiError(400, f"image: not a readable PNG or JPEG ({e})") from None


class EditApi:
    """State and handlers of the editing endpoints. It receives what it uses: the model (`pipe`, only used
    inside `run`), `run` (the generation worker's `GenerationWorker.run`: the result or ApiError),
    `start_projection` (the projection worker's `submit`: a Future, or Busy), its own `limits`, the server's
    `request_limits` (walk sizes, psi range) and the saved direction sets, checked against the model here."""

    def __init__(self, pipe: Pipeline, run: Callable[[Callable[[], Any]], Any],
                 start_projection: Callable[[Callable[[], Any]], Future], limits: EditLimits = EditLimits(),
                 request_limits: Limits = Limits(), directions: list[tuple[str, Directions]] | tuple = ()):
        self.pipe, self.run, self.start_projection = pipe, run, start_projection
        self.limits, self.request_limits = limits, request_limits
        self.sets: OrderedDict[str, Directions] = OrderedDict()
        self.saved: set[str] = set()
        self.jobs: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.projections: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()
        for name, d in directions:
            d.check_fits(pipe.num_ws, pipe.w_dim, pipe.fingerprint, where=name)
            self.sets[name] = d
            self.saved.add(name)

    # ---- facts for /api/info -----------------------------------------------------------------
    def set_info(self, key: str, d: Directions) -> dict[str, Any]:
        return {"id": key, "method": d.method, "layers": d.layers, "layer_name": d.layer_name,
                "names": d.names, "std": [round(float(s), 6) for s in d.std], "saved": key in self.saved}

    def info(self) -> dict[str, Any]:
        with self._lock:
            sets = [self.set_info(k, d) for k, d in self.sets.items()]
        return {"direction_sets": sets, "edit_limits": asdict(self.limits), "methods": self.methods()}

    def methods(self) -> list[str]:
        return ["sefa", "pca"] + (["class"] if self.pipe.c_dim else [])

    # ---- POST /api/directions ------------------------------------------------------------------
    def api_directions(self, body: dict) -> dict:
        check_keys(body, {"method", "layers", "num"})
        method = choice_field(body, "method", tuple(self.methods()), "sefa")
        num = int_field(body, "num", 1, min(self.limits.max_num, self.pipe.w_dim), 8)
        layers = body.get("layers", "all")
        if not isinstance(layers, str) or len(layers) > 32:
            raise ApiError(400, "layers: give all, coarse, middle, fine or a range like '0-3'")
        try:
            layer_name, _ = parse_layers(layers, self.pipe.num_ws)
        except ValueError as e:
            raise ApiError(400, str(e)) from None
        key = f"{method}-{layer_name}-{num}"
        with self._lock:
            if key in self.sets:
                return self.set_info(key, self.sets[key])
        d = self.run(lambda: self.pipe.directions(method=method, layers=layers, num=num,
                                                  samples=self.limits.samples))
        with self._lock:
            self.sets[key] = d
            computed = [k for k in self.sets if k not in self.saved]
            while len(self.sets) > self.limits.max_sets and computed:
                self.sets.pop(computed.pop(0))
            return self.set_info(key, d)

    # ---- POST /api/edit ------------------------------------------------------------------------
    def _start(self, body: dict, common: dict) -> tuple[torch.Tensor, int | None]:
        if ("seed" in body) == ("projection" in body):
            raise ApiError(400, f"give exactly one of seed (an integer in [0, {MAX_SEED}]) or projection "
                                f"(an id from /api/project)")
        if "projection" in body:
            pid = body["projection"]
            with self._lock:
                ws = self.projections.get(pid) if isinstance(pid, str) else None
            if ws is None:
                raise ApiError(404, "projection: unknown or expired id; upload the photo again")
            return ws, None
        seed = int_field(body, "seed", 0, MAX_SEED)
        kw = {k: v for k, v in common.items() if k != "noise_mode"}
        return self.run(lambda: self.pipe.seeds_to_ws([seed], **kw)), seed

    def _values(self, body: dict, d: Directions) -> dict[int, float]:
        v = body.get("values", {})
        lim = self.limits.strength_max
        if not isinstance(v, dict) or len(v) > len(d):
            raise ApiError(400, f"values: an object {{direction index: strength}} with at most {len(d)} "
                                f"entries")
        out = {}
        for k, s in v.items():
            # ASCII digits only ('²' is a digit to str.isdigit but not to int), short (int() refuses 4,300+)
            if not (isinstance(k, str) and k.isascii() and k.isdigit() and len(k) <= 6 and int(k) < len(d)):
                raise ApiError(400, f"values: key {json.dumps(k)[:20]} must be a direction index in "
                                    f"[0, {len(d) - 1}]")
            if isinstance(s, bool) or not isinstance(s, (int, float)) or not -lim <= s <= lim:
                raise ApiError(400, f"values[{k}]: must be a number in [{-lim:g}, {lim:g}], got "
                                    f"{json.dumps(s)[:20]}")
            out[int(k)] = float(s)
        return out

    def api_edit(self, body: dict) -> dict:
        check_keys(body, {"seed", "projection", "set", "values", "psi", "cutoff", "noise_mode", "class_idx"})
        with self._lock:
            d = self.sets.get(body.get("set")) if isinstance(body.get("set"), str) else None
        if d is None:
            raise ApiError(404, "set: unknown direction set; choose one listed by /api/info or compute one "
                                "with POST /api/directions")
        values = self._values(body, d)
        common = generation_options(body, self.pipe, self.request_limits)
        ws, seed = self._start(body, common)
        offset = torch.zeros(self.pipe.w_dim)
        for k, s in values.items():
            offset += d.offset(k, s)
        moved = apply_direction(ws, offset, d.layers)
        noise = common["noise_mode"]
        img = self.run(lambda: self.pipe.synthesize(
            moved, noise, noise_seeds=[seed or 0] if noise == "random" else None)[0])
        return {"image": data_url(img), "values": {str(k): v for k, v in values.items()}}

    # ---- POST /api/walk-video ----------------------------------------------------------------
    def api_walk_video(self, body: dict) -> dict:
        check_keys(body, {"seeds", "frames", "space", "loop", "format", "fps", "psi", "cutoff", "noise_mode",
                          "class_idx"})
        rlim = self.request_limits
        max_frames = min(self.limits.max_video_frames, rlim.max_frames)
        seeds, frames, loop, total = walk_fields(body, rlim.max_walk_seeds, max_frames)
        fps = int_field(body, "fps", 1, 60, 8)
        space = choice_field(body, "space", SPACES, "z")
        fmt = choice_field(body, "format", ("gif", "mp4"), "gif")
        kw = generation_options(body, self.pipe, rlim)

        def work():
            video = self.pipe.interpolate(seeds, frames=frames, space=space, loop=loop, **kw)
            with tempfile.TemporaryDirectory(prefix="flowergan-walk-") as tmp:
                path = write_video(Path(tmp) / f"walk.{fmt}", video, fps=fps)
                return path.suffix[1:], path.read_bytes()

        real, data = self.run(work)
        mime = "image/gif" if real == "gif" else "video/mp4"
        name = f"walk-{'-'.join(map(str, seeds))}{'-loop' if loop else ''}.{real}"
        return {"format": real, "filename": name, "data": bytes_url(mime, data), "frames": total}

    # ---- POST /api/project, GET /api/project/<job> -------------------------------------------
    def api_project(self, body: dict) -> dict:
        check_keys(body, {"image", "steps", "space", "class_idx"})
        max_steps = self.limits.max_project_steps
        steps = int_field(body, "steps", 1, max_steps, min(100, max_steps))
        space = choice_field(body, "space", ("w", "w+"), "w")
        pipe = self.pipe
        class_idx = class_field(body, pipe.c_dim)
        photo = decode_photo(body.get("image"), self.limits.max_pixels)
        job_id = secrets.token_hex(8)
        job = {"step": 0, "steps": steps, "done": False, "error": None, "preview": None,
               "target": data_url(load_target(photo, pipe.resolution, pipe.img_channels))}
        shown = [0.0]

        def progress(step: int, loss: float) -> None:
            job["step"] = step + 1

        def preview(step: int, image: torch.Tensor) -> None:  # the current image, at most 4 times a second
            now = time.monotonic()
            if now - shown[0] >= 0.25 or step == steps - 1:
                shown[0] = now
                job["preview"] = data_url(to_uint8(image)[0])

        def work():
            try:
                r = pipe.project(photo, steps=steps, space=space, class_idx=class_idx, progress=False,
                                 callback=progress, preview=preview)
                ws = torch.from_numpy(r.w[None].copy())

                with self._lock:
                    self.projections[job_id] = ws
                    while len(self.projections) > self.limits.max_projections:
                        self.projections.popitem(last=False)
                job.update(image=data_url(r.image), target=data_url(r.target), psnr=round(r.psnr, 2),
                           projection=job_id, loss=r.loss_name)
            except Exception as e:  # noqa: BLE001 - reported to the page
                log.exception("projection failed")
                job["error"] = str(e)
            finally:
                job["done"] = True

        with self._lock:
            running = sum(1 for j in self.jobs.values() if not j["done"])
            if running:
                raise ApiError(503, "a projection is already running; wait for it to finish")
            self.jobs[job_id] = job
            while len(self.jobs) > 16:
                self.jobs.popitem(last=False)
        try:
            self.start_projection(work)  # its own thread: the other panels keep being served
        except Busy:
            with self._lock:
                self.jobs.pop(job_id, None)
            raise ApiError(503, "the server is busy; retry in a moment") from None
        return {"job": job_id, "steps": steps}

    def project_status(self, job_id: str) -> dict:
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None:
                raise ApiError(404, "no such projection job (they are kept for the 16 most recent uploads)")
            return dict(job)
