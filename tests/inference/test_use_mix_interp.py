"""Style mixing, interpolation (z slerp / w lerp) and the video writer with its GIF fallback."""

from __future__ import annotations

import logging
import math

import numpy as np
import PIL.Image
import pytest
import torch
from testkit import official_uint8

from flowergan.inference import slerp, write_video
from flowergan.inference import video as video_mod


def _ws(G, seed, psi=1.0):
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim))
    with torch.no_grad():
        return G.mapping(z, None, truncation_psi=psi)


# ---- style mixing ---------------------------------------------------------------------------------
def test_mix_empty_styles_is_row_image_and_all_is_column_image(pipe):
    empty = pipe.mix([1, 2], [3], styles="none")
    full = pipe.mix([1, 2], [3], styles="all")
    rows, col = pipe.generate([1, 2]), pipe.generate([3])[0]
    for r in range(2):
        np.testing.assert_array_equal(empty.cells[r, 0], rows[r])
        np.testing.assert_array_equal(full.cells[r, 0], col)
    np.testing.assert_array_equal(empty.row_images, rows)
    np.testing.assert_array_equal(empty.col_images[0], col)


def test_mix_cell_takes_chosen_layers_from_column_seed(pipe):
    G = pipe.G
    res = pipe.mix([4], [9], styles="0-2", truncation_psi=0.8)
    ws = _ws(G, 4, 0.8)
    ws[:, 0:3] = _ws(G, 9, 0.8)[:, 0:3]
    with torch.no_grad():
        expected = official_uint8(G.synthesis(ws, noise_mode="const"))[0]
    np.testing.assert_array_equal(res.cells[0, 0], expected)
    assert not np.array_equal(expected, res.row_images[0]) and not np.array_equal(expected, res.col_images[0])


def test_mix_figure_layout(pipe):
    res = pipe.mix([1, 2], [3, 4, 5], styles="coarse")
    fig = res.figure()
    assert fig.shape == (3 * 32, 4 * 32, 3)
    assert fig[:32, :32].max() == 0                                      # blank corner
    np.testing.assert_array_equal(fig[:32, 64:96], res.col_images[1])    # top row: column seeds
    np.testing.assert_array_equal(fig[64:96, :32], res.row_images[1])    # left column: row seeds
    np.testing.assert_array_equal(fig[64:96, 96:128], res.cells[1, 2])   # cell (row 2, col 5)


# ---- interpolation --------------------------------------------------------------------------------
def test_slerp_closed_form():
    a = torch.tensor([[3.0, 0.0, 0.0]])
    b = torch.tensor([[0.0, 1.0, 0.0]])
    mid = slerp(a, b, 0.5)
    # 90 degrees apart: the midpoint direction is at 45 degrees, its norm the mean of the norms (3 and 1)
    np.testing.assert_allclose(mid.numpy(), [[2 / math.sqrt(2), 2 / math.sqrt(2), 0.0]], atol=1e-6)
    assert torch.equal(slerp(a, b, 0.0), a) and torch.equal(slerp(a, b, 1.0), b)
    q = slerp(a, b, 1 / 3)  # one third of the way: 30 degrees
    assert math.isclose(math.degrees(math.atan2(q[0, 1], q[0, 0])), 30.0, abs_tol=1e-4)


@pytest.mark.parametrize("space", ["z", "w"])
def test_interpolation_key_frames_equal_seed_images(pipe, space):
    frames = pipe.interpolate([1, 2, 3], frames=4, space=space, truncation_psi=0.9)
    assert frames.shape == (2 * 4 + 1, 32, 32, 3)
    keys = pipe.generate([1, 2, 3], truncation_psi=0.9)
    np.testing.assert_array_equal(frames[0], keys[0])
    np.testing.assert_array_equal(frames[4], keys[1])
    np.testing.assert_array_equal(frames[8], keys[2])
    assert not np.array_equal(frames[1], keys[0]) and not np.array_equal(frames[2], frames[1])


def test_interpolation_w_midpoint_is_the_mean_w(pipe):
    G = pipe.G
    frames = pipe.interpolate([5, 6], frames=2, space="w")
    ws = (_ws(G, 5) + _ws(G, 6)) / 2
    with torch.no_grad():
        expected = official_uint8(G.synthesis(ws, noise_mode="const"))[0]
    assert np.abs(frames[1].astype(int) - expected.astype(int)).max() <= 1


def test_interpolation_loop_returns_to_start(pipe):
    frames = pipe.interpolate([1, 2], frames=3, loop=True)
    assert len(frames) == 2 * 3 + 1
    np.testing.assert_array_equal(frames[0], frames[-1])


def test_interpolation_rejects_bad_input(pipe):
    with pytest.raises(ValueError, match="at least 2 seeds"):
        pipe.interpolate([1], frames=3)
    with pytest.raises(ValueError, match="frames must be an integer >= 1"):
        pipe.interpolate([1, 2], frames=0)
    with pytest.raises(ValueError, match="space 'q'"):
        pipe.interpolate([1, 2], space="q")


# ---- video ----------------------------------------------------------------------------------------
def _solid_frames(n=5, size=16):
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0), (255, 255, 0)]
    return np.stack([np.full([size, size, 3], colors[i % len(colors)], np.uint8) for i in range(n)])


def test_video_gif_fallback_without_ffmpeg(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(video_mod, "ffmpeg_available", lambda: False)
    frames = _solid_frames()
    with caplog.at_level(logging.WARNING):
        out = write_video(tmp_path / "walk.mp4", frames, fps=10)
    assert out == tmp_path / "walk.gif" and out.is_file() and not (tmp_path / "walk.mp4").exists()
    assert "ffmpeg is unavailable" in caplog.text and "GIF" in caplog.text
    with PIL.Image.open(out) as im:
        assert im.n_frames == 5
        im.seek(2)
        assert im.convert("RGB").getpixel((3, 3)) == (0, 0, 255)
        assert im.info["duration"] == 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["walk.gif"]  # no temp files left


def test_video_gif_requested(tmp_path):
    out = write_video(tmp_path / "a.gif", iter(_solid_frames(3)), fps=25)
    with PIL.Image.open(out) as im:
        assert im.n_frames == 3 and im.size == (16, 16)


def test_video_mp4_with_ffmpeg(tmp_path):
    if not video_mod.ffmpeg_available():
        pytest.skip("imageio-ffmpeg (with its ffmpeg binary) is not installed")
    import imageio_ffmpeg

    out = write_video(tmp_path / "a.mp4", _solid_frames(6, 32), fps=12)
    assert out.suffix == ".mp4" and out.stat().st_size > 0
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    got = [np.frombuffer(f, np.uint8).reshape(32, 32, 3) for f in reader]
    assert meta["size"] == (32, 32) and len(got) == 6
    assert got[1][16, 16, 1] > 200 and got[1][16, 16, 0] < 60  # the green frame (lossy codec)


def test_video_rejects_bad_names(tmp_path):
    with pytest.raises(ValueError, match=r"\.mp4 or \.gif"):
        write_video(tmp_path / "a.avi", _solid_frames(2))
