"""Figures a person would keep: images upscaled to a chosen size, laid out with gaps between cells and
labeled rows and columns (seeds, psi, layers, strengths), a marked column (e.g. the unedited one), and a
walk grid (several latent walks tiled into the frames of one video). Labels use Pillow's built-in font."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont

__all__ = ["RESAMPLE", "Layout", "resize", "resize_all", "labeled_grid", "text_tile", "tile_frame", "font"]

RESAMPLE = ("lanczos", "nearest")
_PIL_RESAMPLE = {"lanczos": PIL.Image.LANCZOS, "nearest": PIL.Image.NEAREST}
BG = 255            # figure background (white)
FG = (20, 20, 20)   # label colour
MARK = (200, 40, 40)  # marked column: label and frame colour


def font(size: int) -> PIL.ImageFont.ImageFont:
    """Pillow's built-in font at `size` px (scalable since Pillow 10.1; the fixed bitmap font before)."""
    try:
        return PIL.ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: no size argument
        return PIL.ImageFont.load_default()


def resize(image: np.ndarray, size: int, resample: str = "lanczos") -> np.ndarray:
    """uint8 [H, W, C] -> [size, size * W // H, C] (nearest or Lanczos); unchanged when already that size."""
    image = np.asarray(image)
    if resample not in _PIL_RESAMPLE:
        raise ValueError(f"resample {resample!r}: choose one of {', '.join(RESAMPLE)}")
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be an integer >= 1 (pixels), got {size!r}")
    H, W = image.shape[:2]
    width = max(1, round(size * W / H))
    if (H, W) == (size, width):
        return image
    gray = image.ndim == 3 and image.shape[2] == 1
    pil = PIL.Image.fromarray(image[:, :, 0] if gray else image)
    out = np.asarray(pil.resize((width, size), _PIL_RESAMPLE[resample]))
    return out[:, :, None] if gray else out


def resize_all(images: np.ndarray, size: int, resample: str = "lanczos") -> np.ndarray:
    """uint8 [..., H, W, C] -> [..., size, size, C] for square images."""
    images = np.asarray(images)
    lead, shape = images.shape[:-3], images.shape[-3:]
    if shape[0] == size and shape[1] == size:
        return images
    flat = images.reshape(-1, *shape)
    return np.stack([resize(im, size, resample) for im in flat]).reshape(*lead, size, size, shape[2])


def _text_size(draw: PIL.ImageDraw.ImageDraw, text: str, f) -> tuple[int, int]:
    if not text:
        return 0, 0
    left, top, right, bottom = draw.textbbox((0, 0), text, font=f)
    return right - left, bottom - top


@dataclass(frozen=True)
class Layout:
    """Where everything of a labeled grid lies (pixels): for tests and for drawing."""

    top: int          # rows above the first cell: title band + column-label band
    left: int         # columns left of the first cell: row-label band
    cell: tuple[int, int]  # (H, W) of one cell
    gap: int          # pixels between neighbouring cells
    margin: int       # pixels around the whole figure

    def cell_origin(self, r: int, k: int) -> tuple[int, int]:
        """(y, x) of the top-left pixel of cell (r, k)."""
        H, W = self.cell
        return self.top + r * (H + self.gap), self.left + k * (W + self.gap)


def labeled_grid(cells: np.ndarray, row_labels: Sequence[str] = (), col_labels: Sequence[str] = (), *,
                 title: str = "", gap: int | None = None, marked_cols: Sequence[int] = (),
                 font_size: int | None = None, return_layout: bool = False):
    """Tile cells uint8 [R, K, H, W, C] into one RGB figure with a white background.

    Row labels go in a band on the left, column labels in a band above the cells, `title` above those;
    `gap` pixels separate cells (default: max(2, H // 32)); the columns in `marked_cols` get their label in
    red and a red frame drawn in the gap around them (never over a cell's pixels). Every cell's pixels are
    exactly its image. Returns uint8 [h, w, 3] (and the Layout when `return_layout`).
    """
    cells = np.asarray(cells)
    if cells.ndim != 5 or cells.dtype != np.uint8 or 0 in cells.shape[:2]:
        raise ValueError(f"labeled_grid: expected uint8 cells [R, K, H, W, C], got {cells.dtype} {cells.shape}")
    R, K, H, W, C = cells.shape
    if C == 1:
        cells = np.repeat(cells, 3, axis=4)
    if row_labels and len(row_labels) != R or col_labels and len(col_labels) != K:
        raise ValueError(f"labeled_grid: {len(row_labels)} row / {len(col_labels)} column labels for {R} x {K} cells")
    gap = max(2, H // 32) if gap is None else int(gap)
    fsize = font_size or int(np.clip(round(H / 9), 11, 22))
    f, ftitle = font(fsize), font(round(fsize * 1.15))
    probe = PIL.ImageDraw.Draw(PIL.Image.new("RGB", (1, 1)))
    pad = max(4, fsize // 2)
    line_h = _text_size(probe, "Hg0", f)[1]
    row_w = max((_text_size(probe, t, f)[0] for t in row_labels), default=0)
    left = row_w + 2 * pad if row_w else 0
    col_h = line_h + 2 * pad if any(col_labels) else 0
    title_h = _text_size(probe, "Hg0", ftitle)[1] + 2 * pad if title else 0
    margin = max(gap, pad // 2)
    top = margin + title_h + col_h
    left += margin
    width = left + K * W + (K - 1) * gap + margin
    width = max(width, _text_size(probe, title, ftitle)[0] + 2 * margin + 2 * pad)
    height = top + R * H + (R - 1) * gap + margin
    layout = Layout(top=top, left=left, cell=(H, W), gap=gap, margin=margin)

    fig = PIL.Image.new("RGB", (width, height), (BG, BG, BG))
    draw = PIL.ImageDraw.Draw(fig)
    for k in marked_cols:  # a frame in the gap around the column (cells are pasted over it afterwards)
        y0, x0 = layout.cell_origin(0, k)
        y1, x1 = layout.cell_origin(R - 1, k)
        t = max(1, min(gap, margin) // 2 + (gap > 2))
        draw.rectangle([x0 - t, y0 - t, x1 + W - 1 + t, y1 + H - 1 + t], fill=MARK)
    arr = np.asarray(fig).copy()
    for r in range(R):
        for k in range(K):
            y, x = layout.cell_origin(r, k)
            arr[y:y + H, x:x + W] = cells[r, k]
    fig = PIL.Image.fromarray(arr)
    draw = PIL.ImageDraw.Draw(fig)
    if title:
        draw.text((margin + pad, margin + pad), title, fill=FG, font=ftitle, anchor="la")
    for k, text in enumerate(col_labels):
        _, x = layout.cell_origin(0, k)
        draw.text((x + W / 2, top - pad), text, fill=MARK if k in marked_cols else FG, font=f, anchor="md")
    for r, text in enumerate(row_labels):
        y, _ = layout.cell_origin(r, 0)
        draw.text((left - pad, y + H / 2), text, fill=FG, font=f, anchor="rm")
    out = np.asarray(fig)
    return (out, layout) if return_layout else out


def text_tile(lines: Sequence[str], height: int, width: int, font_size: int | None = None) -> np.ndarray:
    """A white uint8 [height, width, 3] tile with centred lines of text (e.g. the corner of a mixing figure)."""
    fsize = font_size or int(np.clip(round(height / 9), 11, 22))
    f = font(fsize)
    tile = PIL.Image.new("RGB", (width, height), (BG, BG, BG))
    draw = PIL.ImageDraw.Draw(tile)
    draw.multiline_text((width / 2, height / 2), "\n".join(lines), fill=FG, font=f, anchor="mm", align="center")
    return np.asarray(tile)


def tile_frame(images: np.ndarray, cols: int, gap: int = 0, bg: int = 0) -> np.ndarray:
    """One video frame from uint8 images [N, H, W, C]: rows of `cols` images with `gap` pixels of `bg`."""
    from flowergan.infra import make_grid

    return make_grid(images, cols=cols, pad=gap, bg=bg)
