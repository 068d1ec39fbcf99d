"""Write frame sequences as MP4 (imageio-ffmpeg, H.264) or GIF (Pillow), falling back to GIF without ffmpeg."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import PIL.Image

from flowergan.inference.images import atomic_write

log = logging.getLogger(__name__)

__all__ = ["VIDEO_SUFFIXES", "ffmpeg_available", "write_video"]

VIDEO_SUFFIXES = (".mp4", ".gif")


def ffmpeg_available() -> bool:
    """True when imageio-ffmpeg is installed and can find an ffmpeg binary."""
    try:
        import imageio_ffmpeg

        return bool(imageio_ffmpeg.get_ffmpeg_exe())
    except Exception:  # noqa: BLE001 - ImportError, or RuntimeError when no binary is found
        return False


def _rgb(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise ValueError(f"video frames must be uint8 [H, W, 3], got dtype {frame.dtype}")
    if frame.ndim == 2:
        frame = frame[:, :, None]
    if frame.ndim != 3 or frame.shape[2] not in (1, 3):
        raise ValueError(f"video frames must be [H, W, 3] or [H, W, 1], got shape {frame.shape}")
    return np.repeat(frame, 3, axis=2) if frame.shape[2] == 1 else frame


def _even(frame: np.ndarray) -> np.ndarray:
    """H.264 in yuv420p needs even sizes: repeat the last row/column of an odd-sized frame (labeled figures
    can be any size; without this ffmpeg's writer would rescale the whole frame and warn)."""
    h, w = frame.shape[:2]
    if h % 2 or w % 2:
        frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return np.ascontiguousarray(frame)


def _write_gif(path: Path, frames: Iterable[np.ndarray], fps: float) -> None:
    images = [PIL.Image.fromarray(_rgb(f), "RGB") for f in frames]
    if not images:
        raise ValueError("write_video: no frames to write")
    duration = max(20, int(round(1000 / fps)))  # browsers treat < 20 ms as 100 ms
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0)


def _write_mp4(path: Path, frames: Iterable[np.ndarray], fps: float) -> None:
    import imageio_ffmpeg

    writer = None
    count = 0
    try:
        for frame in frames:
            frame = _even(_rgb(frame))
            if writer is None:
                h, w = frame.shape[:2]
                writer = imageio_ffmpeg.write_frames(
                    str(path), (w, h), fps=fps, codec="libx264", pix_fmt_in="rgb24", pix_fmt_out="yuv420p",
                    quality=8, macro_block_size=2, ffmpeg_log_level="error")
                writer.send(None)  # start the ffmpeg process
                size = frame.shape
            elif frame.shape != size:
                raise ValueError(f"write_video: frame {count} has shape {frame.shape}, the first had {size}")
            writer.send(frame)
            count += 1
    finally:
        if writer is not None:
            writer.close()
    if count == 0:
        raise ValueError("write_video: no frames to write")


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float = 30.0) -> Path:
    """Write uint8 frames [H, W, 3] (an array [F, H, W, 3] or any iterable) to `path` atomically.

    `.mp4` is written with imageio-ffmpeg (H.264); when imageio-ffmpeg or its ffmpeg binary is
    missing, a warning is logged and a GIF is written next to it (same name, `.gif`). `.gif` is
    always written with Pillow. Returns the path actually written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ValueError(f"{path}: unsupported video type {suffix or '(none)'}; use a name ending in .mp4 or .gif")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if suffix == ".mp4" and not ffmpeg_available():
        gif = path.with_suffix(".gif")
        log.warning("ffmpeg is unavailable (install it with: pip install imageio-ffmpeg, or "
                    "pip install 'flowergan[video]'); writing a GIF to %s instead of %s", gif, path)
        path, suffix = gif, ".gif"
    writer = _write_gif if suffix == ".gif" else _write_mp4
    return atomic_write(path, lambda tmp: writer(Path(tmp), frames, fps))
