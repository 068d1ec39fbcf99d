"""What the explorer accepts: the bounds on every request, connection and editing endpoint."""

from __future__ import annotations

from dataclasses import dataclass

from flowergan.bounds import PSI_RANGE

__all__ = ["Limits", "EditLimits"]


@dataclass(frozen=True)
class Limits:
    """What one request may ask for, and how long it may take."""

    max_batch: int = 16           # seeds per /api/generate request
    max_frames: int = 64          # total frames per /api/interpolate request
    max_walk_seeds: int = 8       # seeds per walk
    psi_min: float = PSI_RANGE[0]
    psi_max: float = PSI_RANGE[1]
    queue_size: int = 4           # generation requests waiting behind the running one
    timeout_s: float = 60.0       # a request gets 504 when its generation has not finished by then
    max_body: int = 16384         # bytes of JSON per request
    max_depth: int = 8            # nesting of JSON arrays/objects per request
    max_connections: int = 64     # open connections served at once; more are answered 503 and closed
    backlog: int = 256            # connections the OS queues before accept (the listen backlog)
    request_timeout_s: float = 10.0  # seconds a client may take to send a request (or stay idle)


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
