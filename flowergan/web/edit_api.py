"""The explorer's editing endpoints: direction sets (saved files or computed on demand), edits with several
direction sliders at once, walk downloads (GIF/MP4) and photo projection with progress.

Every body is validated with sizes bounded before any work, as in server.py:
  POST /api/directions   {"method", "layers", "num"} -> a new direction set computed on demand
  POST /api/edit         {"seed" | "projection", "set", "values": {index: strength}, psi, cutoff, ...} -> image
  POST /api/walk-video   {"seeds", "frames", "space", "loop", "format": "gif"|"mp4", psi, cutoff, ...} -> file
  POST /api/project      {"image": data URL (PNG/JPEG), "steps", "space"} -> {"job"} (runs on its own worker)
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flowergan.inference.directions import Directions

log = logging.getLogger(__name__)

__all__ = ["EditLimits", "EditApi"]


@dataclass(frozen=True)
class EditLimits:
    """What the editing endpoints accept."""

    max_sets: int = 8                 # direction sets kept (the oldest computed one is dropped)
    max_num: int = 32                 # directions per computed set
    samples: int = 5000               # sampled w per computed set (PCA and every std)
    strength_max: float = 10.0        # |strength| per slider, in std units
    max_project_steps: int = 500      # optimisation steps per upload
    max_upload: int = 6 << 20         # bytes of JSON carrying an uploaded photo
    max_pixels: int = 4096 * 4096     # decoded photo size
    max_projections: int = 4          # finished projections kept for editing
    max_video_frames: int = 64        # frames per downloaded walk


def _err(status: int, message: str) -> Exception:
    from flowergan.web.server import ApiError

    return ApiError(status, message)


def _data(mime: str, data: bytes) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def decode_photo(url: Any, max_pixels: int) -> np.ndarray:
    """A data URL (image/png or image/jpeg, base64) -> uint8 RGB [H, W, 3]; the pixel count is checked
    from the header before the image is decoded (the one image reader, flowergan.readers.load_image)."""
    from flowergan.errors import BadInput, BoundsError
    from flowergan.readers import load_image

    if not isinstance(url, str) or not url.startswith(("data:image/png;base64,", "data:image/jpeg;base64,")):
        raise _err(400, "image: must be a data URL of a PNG or JPEG photo ('data:image/png;base64,...')")
    try:
        raw = base64.b64decode(url.split(",", 1)[1], validate=True)
    except (binascii.Error, ValueError):
        raise _err(400, "image: the base64 data is not valid") from None
    try:
        with load_image(raw, "image", max_pixels=max_pixels, formats=("PNG", "JPEG")) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except BoundsError as e:
        raise _err(413, f"{e}") from None
    except (BadInput, OSError, ValueError) as e:
        raise _err(400, f"image: not a readable PNG or JPEG ({e})") from None


class EditApi:
    """State and handlers of the editing endpoints; `server` is the ExplorerServer (its `run` and worker)."""

    def __init__(self, server, limits: EditLimits = EditLimits(), directions: list[tuple[str, Directions]] = ()):
        self.server, self.limits = server, limits
        self.sets: OrderedDict[str, Directions] = OrderedDict()
        self.saved: set[str] = set()
        self.jobs: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.projections: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()
        pipe = server.pipe
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
        return ["sefa", "pca"] + (["class"] if self.server.pipe.c_dim else [])

    # ---- POST /api/directions ------------------------------------------------------------------
    def api_directions(self, body: dict) -> dict:
        from flowergan.web.server import _check_keys, _choice, _int

        _check_keys(body, {"method", "layers", "num"})
        method = _choice(body, "method", tuple(self.methods()), "sefa")
        num = _int(body, "num", 1, min(self.limits.max_num, self.server.pipe.w_dim), 8)
        layers = body.get("layers", "all")
        if not isinstance(layers, str) or len(layers) > 32:
            raise _err(400, "layers: give all, coarse, middle, fine or a range like '0-3'")
        from flowergan.inference.directions import parse_layers

        try:
            layer_name, _ = parse_layers(layers, self.server.pipe.num_ws)
        except ValueError as e:
            raise _err(400, str(e)) from None
        key = f"{method}-{layer_name}-{num}"
        with self._lock:
            if key in self.sets:
                return self.set_info(key, self.sets[key])
        d = self.server.run(lambda: self.server.pipe.directions(method=method, layers=layers, num=num,
                                                                samples=self.limits.samples))
        with self._lock:
            self.sets[key] = d
            computed = [k for k in self.sets if k not in self.saved]
            while len(self.sets) > self.limits.max_sets and computed:
                self.sets.pop(computed.pop(0))
            return self.set_info(key, d)

    # ---- POST /api/edit ------------------------------------------------------------------------
    def _start(self, body: dict, common: dict) -> tuple[torch.Tensor, int | None]:
        from flowergan.inference.latents import MAX_SEED
        from flowergan.web.server import _int

        if ("seed" in body) == ("projection" in body):
            raise _err(400, f"give exactly one of seed (an integer in [0, {MAX_SEED}]) or projection (an id "
                            f"from /api/project)")
        if "projection" in body:
            pid = body["projection"]
            with self._lock:
                ws = self.projections.get(pid) if isinstance(pid, str) else None
            if ws is None:
                raise _err(404, "projection: unknown or expired id; upload the photo again")
            return ws, None
        seed = _int(body, "seed", 0, MAX_SEED)
        kw = {k: v for k, v in common.items() if k != "noise_mode"}
        return self.server.run(lambda: self.server.pipe.seeds_to_ws([seed], **kw)), seed

    def _values(self, body: dict, d: Directions) -> dict[int, float]:
        v = body.get("values", {})
        lim = self.limits.strength_max
        if not isinstance(v, dict) or len(v) > len(d):
            raise _err(400, f"values: an object {{direction index: strength}} with at most {len(d)} entries")
        out = {}
        for k, s in v.items():
            # ASCII digits only ('²' is a digit to str.isdigit but not to int) and short (int() refuses 4,300+)
            if not (isinstance(k, str) and k.isascii() and k.isdigit() and len(k) <= 6 and int(k) < len(d)):
                raise _err(400, f"values: key {json.dumps(k)[:20]} must be a direction index in [0, {len(d) - 1}]")
            if isinstance(s, bool) or not isinstance(s, (int, float)) or not -lim <= s <= lim:
                raise _err(400, f"values[{k}]: must be a number in [{-lim:g}, {lim:g}], got {json.dumps(s)[:20]}")
            out[int(k)] = float(s)
        return out

    def api_edit(self, body: dict) -> dict:
        from flowergan.web.server import _check_keys

        _check_keys(body, {"seed", "projection", "set", "values", "psi", "cutoff", "noise_mode", "class_idx"})
        with self._lock:
            d = self.sets.get(body.get("set")) if isinstance(body.get("set"), str) else None
        if d is None:
            raise _err(404, "set: unknown direction set; choose one listed by /api/info or compute one with "
                            "POST /api/directions")
        values = self._values(body, d)
        common = self.server._common(body)
        ws, seed = self._start(body, common)
        offset = torch.zeros(self.server.pipe.w_dim)
        for k, s in values.items():
            offset += d.offset(k, s)
        from flowergan.inference.directions import apply_direction

        moved = apply_direction(ws, offset, d.layers)
        noise = common["noise_mode"]
        img = self.server.run(lambda: self.server.pipe.synthesize(
            moved, noise, noise_seeds=[seed or 0] if noise == "random" else None)[0])
        from flowergan.web.server import _data_url

        return {"image": _data_url(img), "values": {str(k): v for k, v in values.items()}}

    # ---- POST /api/walk-video ----------------------------------------------------------------
    def api_walk_video(self, body: dict) -> dict:
        from flowergan.inference.api import SPACES
        from flowergan.web.server import _check_keys, _choice, _int, _seed_list

        _check_keys(body, {"seeds", "frames", "space", "loop", "format", "fps", "psi", "cutoff", "noise_mode",
                           "class_idx"})
        slim = self.server.limits
        seeds = _seed_list(body, "seeds", 2, slim.max_walk_seeds)
        max_frames = min(self.limits.max_video_frames, slim.max_frames)
        frames = _int(body, "frames", 1, max_frames, 8)
        fps = _int(body, "fps", 1, 60, 8)
        loop = body.get("loop", False)
        if not isinstance(loop, bool):
            raise _err(400, f"loop: must be true or false, got {json.dumps(loop)[:20]}")
        total = (len(seeds) if loop else len(seeds) - 1) * frames + 1
        if total > max_frames:
            raise _err(400, f"frames: {frames} per transition over {len(seeds)} seeds makes {total} frames; at "
                            f"most {max_frames} are allowed")
        space = _choice(body, "space", SPACES, "z")
        fmt = _choice(body, "format", ("gif", "mp4"), "gif")
        kw = self.server._common(body)

        def work():
            from flowergan.inference.video import write_video

            video = self.server.pipe.interpolate(seeds, frames=frames, space=space, loop=loop, **kw)
            with tempfile.TemporaryDirectory(prefix="flowergan-walk-") as tmp:
                path = write_video(Path(tmp) / f"walk.{fmt}", video, fps=fps)
                return path.suffix[1:], path.read_bytes()

        real, data = self.server.run(work)
        mime = "image/gif" if real == "gif" else "video/mp4"
        name = f"walk-{'-'.join(map(str, seeds))}{'-loop' if loop else ''}.{real}"
        return {"format": real, "filename": name, "data": _data(mime, data), "frames": total}

    # ---- POST /api/project, GET /api/project/<job> -------------------------------------------
    def api_project(self, body: dict) -> dict:
        from flowergan.web.server import Busy, _check_keys, _choice, _int

        _check_keys(body, {"image", "steps", "space", "class_idx"})
        steps = _int(body, "steps", 1, self.limits.max_project_steps, min(100, self.limits.max_project_steps))
        space = _choice(body, "space", ("w", "w+"), "w")
        pipe = self.server.pipe
        class_idx = None
        if pipe.c_dim:
            class_idx = _int(body, "class_idx", 0, pipe.c_dim - 1)
        elif body.get("class_idx") is not None:
            raise _err(400, "class_idx: this model is unconditional; leave class_idx out (or null)")
        photo = decode_photo(body.get("image"), self.limits.max_pixels)
        job_id = secrets.token_hex(8)
        from flowergan.inference.images import load_target, to_uint8
        from flowergan.web.server import _data_url

        job = {"step": 0, "steps": steps, "done": False, "error": None, "preview": None,
               "target": _data_url(load_target(photo, pipe.resolution, pipe.img_channels))}
        shown = [0.0]

        def progress(step: int, loss: float) -> None:
            job["step"] = step + 1

        def preview(step: int, image: torch.Tensor) -> None:  # the current image, at most 4 times a second
            now = time.monotonic()
            if now - shown[0] >= 0.25 or step == steps - 1:
                shown[0] = now
                job["preview"] = _data_url(to_uint8(image)[0])

        def work():
            try:
                r = pipe.project(photo, steps=steps, space=space, class_idx=class_idx, progress=False,
                                 callback=progress, preview=preview)
                ws = torch.from_numpy(r.w[None].copy())

                with self._lock:
                    self.projections[job_id] = ws
                    while len(self.projections) > self.limits.max_projections:
                        self.projections.popitem(last=False)
                job.update(image=_data_url(r.image), target=_data_url(r.target), psnr=round(r.psnr, 2),
                           projection=job_id, loss=r.loss_name)
            except Exception as e:  # noqa: BLE001 - reported to the page
                log.exception("projection failed")
                job["error"] = str(e)
            finally:
                job["done"] = True

        with self._lock:
            running = sum(1 for j in self.jobs.values() if not j["done"])
            if running:
                raise _err(503, "a projection is already running; wait for it to finish")
            self.jobs[job_id] = job
            while len(self.jobs) > 16:
                self.jobs.popitem(last=False)
        try:
            self.server.project_worker.submit(work)  # its own thread: the other panels keep being served
        except Busy:
            with self._lock:
                self.jobs.pop(job_id, None)
            raise _err(503, "the server is busy; retry in a moment") from None
        return {"job": job_id, "steps": steps}

    def project_status(self, job_id: str) -> dict:
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None:
                raise _err(404, "no such projection job (they are kept for the 16 most recent uploads)")
            return dict(job)
