"""CLI smoke tests (click CliRunner): generate, mix, truncation, interpolate, project write what they say."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
from testkit import read_png, run_cli

from flowergan.inference import video as video_mod


def test_generate_writes_seed_pngs_and_grid(tiny_dir, tmp_path, pipe):
    out = tmp_path / "gen"
    res = run_cli(["generate", "--network", str(tiny_dir), "--seeds", "0-2,7", "--trunc", "0.7", "--outdir", str(out),
                "--grid", "--device", "cpu"])
    assert "wrote 5 file(s)" in res.output
    assert sorted(p.name for p in out.iterdir()) == ["grid.png", "seed0000.png", "seed0001.png", "seed0002.png",
                                                     "seed0007.png"]
    np.testing.assert_array_equal(read_png(out / "seed0007.png"), pipe.generate([7], truncation_psi=0.7)[0])
    grid = read_png(out / "grid.png")
    assert grid.shape == (64, 64, 3)  # 4 images, 2 x 2
    np.testing.assert_array_equal(grid[32:, 32:], read_png(out / "seed0007.png"))


def test_generate_bad_input_is_a_usage_error(tiny_dir, cond_dir, tmp_path):
    res = run_cli(["generate", "--network", str(tiny_dir), "--seeds", "5-1", "--outdir", str(tmp_path)], ok=False)
    assert res.exit_code == 2 and "runs backwards" in res.output
    res = run_cli(["generate", "--network", str(cond_dir), "--seeds", "1", "--outdir", str(tmp_path / "c")], ok=False)
    assert res.exit_code == 2 and "conditional" in res.output and "--class" in res.output
    run_cli(["generate", "--network", str(cond_dir), "--seeds", "1", "--class", "2", "--outdir", str(tmp_path / "c")])
    assert (tmp_path / "c" / "seed0001.png").is_file()


def test_mix_and_truncation_figures(tiny_dir, tmp_path, pipe):
    run_cli(["mix", "--network", str(tiny_dir), "--rows", "1,2", "--cols", "3,4,5", "--styles", "fine",
          "--plain", "--out", str(tmp_path / "mix.png")])
    fig = read_png(tmp_path / "mix.png")
    assert fig.shape == (3 * 32, 4 * 32, 3)
    np.testing.assert_array_equal(fig[32:64, :32], pipe.generate([1])[0])
    run_cli(["truncation", "--network", str(tiny_dir), "--seeds", "1,2", "--psi", "1,0.5,0",
          "--plain", "--out", str(tmp_path / "t.png")])
    t = read_png(tmp_path / "t.png")
    assert t.shape == (2 * 32, 3 * 32, 3)
    np.testing.assert_array_equal(t[:32, 64:], t[32:, 64:])  # psi 0 column: the same image
    res = run_cli(["mix", "--network", str(tiny_dir), "--rows", "1", "--cols", "2", "--styles", "0-9",
                "--out", str(tmp_path / "m2.png")], ok=False)
    assert res.exit_code == 2 and "indices must be in [0, 7]" in res.output


def test_interpolate_writes_video_with_gif_fallback(tiny_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(video_mod, "ffmpeg_available", lambda: False)
    res = run_cli(["interpolate", "--network", str(tiny_dir), "--seeds", "1,2,3", "--frames", "3", "--space", "w",
                "--out", str(tmp_path / "walk.mp4")])
    assert "GIF" in res.output and (tmp_path / "walk.gif").is_file()
    with PIL.Image.open(tmp_path / "walk.gif") as im:
        assert im.n_frames >= 2  # Pillow may merge identical neighbouring frames; 7 distinct ones here
    res = run_cli(["interpolate", "--network", str(tiny_dir), "--seeds", "1,2", "--out", str(tmp_path / "w.avi")],
               ok=False)
    assert res.exit_code == 2 and ".mp4 or .gif" in res.output


def test_project_writes_all_outputs(tiny_dir, tmp_path, pipe):
    target = pipe.generate([4])[0]
    PIL.Image.fromarray(np.kron(target, np.ones((2, 2, 1), np.uint8))).save(tmp_path / "photo.png")  # 64x64
    out = tmp_path / "proj"
    res = run_cli(["project", "--network", str(tiny_dir), "--target", str(tmp_path / "photo.png"), "--steps", "12",
                "--outdir", str(out), "--video-every", "3", "--vgg16", "none"])
    assert "PSNR" in res.output and "pixel-pyramid" in res.output
    names = {p.name for p in out.iterdir()}
    assert {"target.png", "proj.png", "projected_w.npz"} <= names and ({"proj.mp4", "proj.gif"} & names)
    with np.load(out / "projected_w.npz") as f:
        assert f["w"].shape == (1, 8, 64)
        w = f["w"]
    # generate --projected-w renders the same image as proj.png
    run_cli(["generate", "--network", str(tiny_dir), "--projected-w", str(out / "projected_w.npz"),
          "--outdir", str(tmp_path / "re")])
    np.testing.assert_array_equal(read_png(tmp_path / "re" / "proj00.png"), read_png(out / "proj.png"))
    np.testing.assert_array_equal(read_png(tmp_path / "re" / "proj00.png"), pipe.synthesize(w)[0])


@pytest.mark.parametrize("cmd", ["generate", "mix", "truncation", "interpolate", "project", "serve"])
def test_help_works(cmd):
    assert "Example" in run_cli([cmd, "--help"]).output
