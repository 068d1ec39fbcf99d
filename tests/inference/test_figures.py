"""Figures a person would keep: labeled grids (bands, gaps, marked columns, cells that hold exactly their
images), --size scaling, and the labeled mix / truncation / edit figures and walk grids of the CLI."""

from __future__ import annotations

import numpy as np
import pytest
from testkit import read_png, run_cli

import flowergan.inference as inference_mod
from flowergan.inference.figures import BG, MARK, labeled_grid, resize, resize_all


def _upscale(img: np.ndarray, k: int) -> np.ndarray:
    """Nearest-neighbour upscaling by an integer factor, written independently of Pillow."""
    return np.repeat(np.repeat(img, k, axis=0), k, axis=1)


def _find(fig: np.ndarray, img: np.ndarray) -> list[tuple[int, int]]:
    """Every (y, x) where `img` sits in `fig` pixel for pixel."""
    h, w = img.shape[:2]
    first = np.all(fig[: fig.shape[0] - h + 1, : fig.shape[1] - w + 1] == img[0, 0], axis=-1)
    return [(int(y), int(x)) for y, x in zip(*np.nonzero(first))
            if np.array_equal(fig[y:y + h, x:x + w], img)]


def _dark(region: np.ndarray) -> int:
    """Pixels of label text (dark) in a region of a white figure."""
    return int(np.sum(region.max(axis=-1) < 128))


# ---- the layout -----------------------------------------------------------------------------
def test_labeled_grid_places_cells_exactly_with_gaps_and_label_bands():
    rng = np.random.default_rng(0)
    cells = rng.integers(0, 256, (2, 3, 40, 40, 3), dtype=np.uint8)
    fig, lay = labeled_grid(cells, ["seed 1", "seed 22"], ["a", "b", "c"], title="a title", return_layout=True)
    H = W = 40
    gap = max(2, H // 32)
    assert lay.gap == gap and lay.cell == (H, W)
    assert fig.shape == (lay.top + 2 * H + gap + lay.margin, lay.left + 3 * W + 2 * gap + lay.margin, 3)
    for r in range(2):
        for k in range(3):
            y, x = lay.top + r * (H + gap), lay.left + k * (W + gap)
            np.testing.assert_array_equal(fig[y:y + H, x:x + W], cells[r, k])
            assert _find(fig, cells[r, k]) == [(y, x)]
    # the gaps between cells are background, and the bands hold the labels' text
    assert np.all(fig[lay.top:lay.top + 2 * H + gap, lay.left + W:lay.left + W + gap] == BG)
    assert np.all(fig[lay.top + H:lay.top + H + gap, lay.left:lay.left + 3 * W + 2 * gap] == BG)
    assert lay.top >= 2 * 11 and lay.left >= 30  # a title and a column-label line; a row-label column
    assert _dark(fig[:lay.top, lay.left:]) > 20            # title + column labels above the cells
    assert _dark(fig[lay.top:, :lay.left]) > 20            # row labels left of the cells
    assert _dark(fig[lay.top:lay.top + H, :lay.left]) > 5   # "seed 1" beside the first row


def test_labeled_grid_without_labels_has_no_bands_and_marks_columns_in_the_gap():
    cells = np.zeros((1, 3, 32, 32, 3), np.uint8)
    fig, lay = labeled_grid(cells, gap=6, return_layout=True)
    assert (lay.top, lay.left) == (lay.margin, lay.margin) and lay.gap == 6
    assert fig.shape == (32 + 2 * lay.margin, 3 * 32 + 2 * 6 + 2 * lay.margin, 3)
    cells = np.zeros((1, 3, 96, 96, 3), np.uint8)
    marked, lay = labeled_grid(cells, col_labels=["-1", "0 (unedited)", "+1"], gap=6, marked_cols=[1],
                               return_layout=True)
    y, x = lay.cell_origin(0, 1)
    np.testing.assert_array_equal(marked[y:y + 96, x:x + 96], 0)           # the cell itself untouched
    assert tuple(marked[y + 10, x - 1]) == MARK and tuple(marked[y + 10, x + 96]) == MARK  # frame in the gaps
    y0, x0 = lay.cell_origin(0, 0)
    assert np.all(marked[y0:y0 + 96, x0 - lay.gap // 2: x0] == BG)          # unmarked columns have none
    band = marked[:lay.top - lay.gap].astype(int)  # the label band, above the frame
    red = (band[:, :, 0] - band[:, :, 1]) > 60     # the marked label is drawn in red (anti-aliased)
    assert red[:, x:x + 96].any() and not red[:, x0:x0 + 96].any()
    assert _dark(band[:, x0:x0 + 96]) > 3          # the other labels in dark text


def test_labeled_grid_refuses_mismatched_labels():
    with pytest.raises(ValueError, match="2 row"):
        labeled_grid(np.zeros((1, 2, 8, 8, 3), np.uint8), ["a", "b"], ["x", "y"])


def test_resize_nearest_is_pixel_repetition_and_lanczos_keeps_flat_images():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    np.testing.assert_array_equal(resize(img, 64, "nearest"), _upscale(img, 4))
    flat = np.full((16, 16, 3), 77, np.uint8)
    np.testing.assert_array_equal(resize(flat, 50, "lanczos"), np.full((50, 50, 3), 77, np.uint8))
    assert resize_all(np.stack([img, img]), 24).shape == (2, 24, 24, 3)
    assert resize(img[:, :, :1], 32, "nearest").shape == (32, 32, 1)
    with pytest.raises(ValueError, match="resample"):
        resize(img, 32, "bicubic")


# ---- the CLI figures ------------------------------------------------------------------------
def test_mix_figure_is_labeled_and_holds_the_upscaled_images(tiny_dir, tmp_path, pipe):
    run_cli(["mix", "--network", tiny_dir, "--rows", "1,2", "--cols", "3,4,5", "--styles", "fine",
          "--size", 64, "--resample", "nearest", "--out", tmp_path / "mix.png"])
    fig = read_png(tmp_path / "mix.png")
    r = pipe.mix([1, 2], [3, 4, 5], "fine")
    gap = max(2, 64 // 32)
    (y0, x0), = _find(fig, _upscale(r.row_images[0], 2))  # row seed 1: the left column, second row
    assert _find(fig, _upscale(r.col_images[0], 2)) == [(y0 - 64 - gap, x0 + 64 + gap)]
    for i in range(2):
        for k in range(3):
            assert _find(fig, _upscale(r.cells[i, k], 2)) == [(y0 + i * (64 + gap), x0 + (k + 1) * (64 + gap))]
    assert _dark(fig[:, :x0]) > 20 and _dark(fig[:y0 - 64 - gap]) > 20  # seed labels left and above
    corner = fig[y0 - 64 - gap:y0 - gap, x0:x0 + 64]
    assert _dark(corner) > 20  # the corner says which layers the columns give


def test_truncation_figure_default_size_and_marked_psi_1(tiny_dir, tmp_path, pipe):
    run_cli(["truncation", "--network", tiny_dir, "--seeds", "1,2", "--psi", "0.5,1", "--resample", "nearest",
          "--out", tmp_path / "t.png"])
    fig = read_png(tmp_path / "t.png")
    k = 128 // pipe.resolution  # default: at least 128 px per image
    gap = max(2, 128 // 32)
    (y, x), = _find(fig, _upscale(pipe.generate([2], truncation_psi=0.5)[0], k))
    assert _find(fig, _upscale(pipe.generate([2], truncation_psi=1.0)[0], k)) == [(y, x + 128 + gap)]
    assert _find(fig, _upscale(pipe.generate([1], truncation_psi=0.5)[0], k)) == [(y - 128 - gap, x)]
    assert tuple(fig[y, x + 128 + gap - 1]) == MARK and tuple(fig[y, x - 1]) != MARK  # psi 1 marked


def test_edit_strip_labeled_with_unedited_column_marked(tiny_dir, tmp_path, pipe):
    d = pipe.directions(method="sefa", num=2, samples=100)
    d.save(tmp_path / "d.safetensors")
    run_cli(["edit", "--network", tiny_dir, "--directions", tmp_path / "d.safetensors", "--seeds", "3",
          "--strength", "-2,0,2", "--size", 64, "--resample", "nearest", "--out", tmp_path / "s.png",
          "--device", "cpu"])
    fig = read_png(tmp_path / "s.png")
    (y, x), = _find(fig, _upscale(pipe.generate([3])[0], 2))  # strength 0: the unedited image
    gap = 2
    assert tuple(fig[y + 5, x - 1]) == MARK and tuple(fig[y + 5, x + 64]) == MARK
    edited = pipe.edit([3], d, [-2.0, 0.0, 2.0], index=0)
    assert _find(fig, _upscale(edited[0, 0], 2)) == [(y, x - 64 - gap)]
    assert _find(fig, _upscale(edited[0, 2], 2)) == [(y, x + 64 + gap)]


# ---- videos ---------------------------------------------------------------------------------
@pytest.fixture
def frames_written(monkeypatch):
    """Capture what `interpolate` hands to write_video."""
    got = {}

    def fake(path, frames, fps=30.0):
        got["frames"] = [np.asarray(f) for f in frames]
        got["path"] = path
        return path

    monkeypatch.setattr(inference_mod, "write_video", fake)
    return got


def test_interpolate_is_at_least_256_px_by_default(tiny_dir, tmp_path, pipe, frames_written):
    run_cli(["interpolate", "--network", tiny_dir, "--seeds", "1,2", "--frames", "2", "--resample", "nearest",
          "--out", tmp_path / "w.mp4"])
    frames = frames_written["frames"]
    assert len(frames) == 3 and frames[0].shape == (256, 256, 3)
    np.testing.assert_array_equal(frames[0], _upscale(pipe.generate([1])[0], 256 // pipe.resolution))
    run_cli(["interpolate", "--network", tiny_dir, "--seeds", "1,2", "--frames", "2", "--size", 40,
          "--out", tmp_path / "w.mp4"])
    assert frames_written["frames"][0].shape == (40, 40, 3)


def test_walk_grid_tiles_one_looping_walk_per_cell(tiny_dir, tmp_path, pipe, frames_written):
    res = run_cli(["interpolate", "--network", tiny_dir, "--seeds", "1,2,3,4,5,6,7,8", "--grid", "2x2",
                "--frames", "3", "--size", 32, "--out", tmp_path / "g.mp4"])
    assert "2x2 grid" in res.output
    frames = frames_written["frames"]
    gap = 2
    assert len(frames) == 2 * 3 + 1  # 2 seeds per cell, looping back: 2 transitions of 3 frames, + the last
    assert frames[0].shape == (2 * 32 + gap, 2 * 32 + gap, 3)
    for cell, (y, x) in zip([[1, 2], [3, 4], [5, 6], [7, 8]], [(0, 0), (0, 34), (34, 0), (34, 34)]):
        walk = pipe.interpolate(cell, frames=3, loop=True)
        for t in (0, 2, 3, 6):
            np.testing.assert_array_equal(frames[t][y:y + 32, x:x + 32], walk[t])
    np.testing.assert_array_equal(frames[0], frames[-1])  # every cell is back at its first seed


@pytest.mark.parametrize("args, message", [
    (["--seeds", "1,2,3", "--grid", "2x1"], "multiple of 2"),
    (["--seeds", "1,2", "--grid", "2x1"], "at least 2 per cell"),
    (["--seeds", "1-8", "--grid", "2by2"], "COLSxROWS"),
    (["--seeds", "1,2", "--size", "4"], "--size"),
])
def test_walk_grid_bad_input_is_one_line(tiny_dir, tmp_path, args, message):
    res = run_cli(["interpolate", "--network", tiny_dir, *args, "--out", tmp_path / "g.mp4"], ok=False)
    assert res.exit_code == 2 and message in res.output
    assert not (tmp_path / "g.mp4").exists()


@pytest.mark.parametrize("cmd", [["mix", "--rows", "1", "--cols", "2"], ["truncation", "--seeds", "1"]])
def test_plain_with_size_is_refused_before_work(tiny_dir, tmp_path, cmd):
    res = run_cli([cmd[0], "--network", tiny_dir, *cmd[1:], "--plain", "--size", 64, "--out", tmp_path / "f.png"],
               ok=False)
    assert res.exit_code == 2 and "leave out --size" in res.output and not (tmp_path / "f.png").exists()


def test_edit_video_frames_are_labeled_with_their_strength(tiny_dir, tmp_path, pipe, frames_written):
    d = pipe.directions(method="sefa", num=2, samples=100)
    d.save(tmp_path / "d.safetensors")
    run_cli(["edit", "--network", tiny_dir, "--directions", tmp_path / "d.safetensors", "--seeds", "3,4",
          "--strength", "-2,0,2", "--size", 64, "--resample", "nearest", "--out", tmp_path / "e.mp4",
          "--device", "cpu"])
    frames = frames_written["frames"]
    assert len(frames) == 3 and len({f.shape for f in frames}) == 1
    edited = pipe.edit([3, 4], d, [-2.0, 0.0, 2.0], index=0)
    for t in range(3):
        (y3, x3), = _find(frames[t], _upscale(edited[0, t], 2))
        assert _find(frames[t], _upscale(edited[1, t], 2)) == [(y3, x3 + 64 + 2)]  # side by side, a 2 px gap
    title = slice(0, y3)
    assert _dark(frames[0][title]) > 20 and not np.array_equal(frames[0][title], frames[2][title])  # -2 vs +2


def test_odd_sized_frames_are_padded_for_h264_not_rescaled(tmp_path, caplog):
    from flowergan.inference.video import ffmpeg_available, write_video

    if not ffmpeg_available():
        pytest.skip("imageio-ffmpeg is not installed")
    import imageio_ffmpeg

    frame = np.zeros((51, 67, 3), np.uint8)
    frame[:, :33] = 200  # left half light, right half dark: a rescale would move the edge
    with caplog.at_level("WARNING"):
        write_video(tmp_path / "odd.mp4", [frame] * 3, fps=5)
    reader = imageio_ffmpeg.read_frames(str(tmp_path / "odd.mp4"))
    meta = next(reader)
    assert tuple(meta["size"]) == (68, 52)
    got = np.frombuffer(next(reader), np.uint8).reshape(52, 68, 3)
    assert np.abs(got[2:49, 2:31].astype(int) - 200).max() < 12 and got[2:49, 36:65].max() < 12
    assert "resizing" not in caplog.text  # imageio-ffmpeg's warning when it rescales a frame
