"""Round 3: counts and magnitudes from flags, files and the API are bounded before any work (export batch and
psi, edit strength and fps, w far from the model's range), directions files carry unit rows and a plausible
std, and an image that is not finite is an error, never a PNG."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from hostile3_kit import resign_directions
from surface_kit import fails, files_under, run, write_tiny
from testkit import make_tiny

from flowergan.errors import BoundsError
from flowergan.inference import Pipeline
from flowergan.inference.directions import Directions, find_directions, parse_strengths
from flowergan.infra import NonFiniteImageError, to_uint8, to_uint8_nchw


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def pipe():
    return Pipeline(make_tiny()[1])


@pytest.fixture(scope="module")
def dirs_file(pipe, tmp_path_factory):
    dirs = find_directions(pipe.G, "sefa", "all", num=3, samples=300)
    return dirs.save(tmp_path_factory.mktemp("d") / "d.safetensors")


# ---- export ---------------------------------------------------------------------------------------
def test_export_batch_and_psi_are_bounded_before_loading(tiny, tmp_path):
    from flowergan.export.graph import ExportSpec

    out = tmp_path / "g.pt"
    fails(run(["export", "--network", tiny, "--format", "torchscript", "--out", out, "--batch", 1_000_000]), 2,
          "1,000,000 images per batch", "4,096", "FLOWERGAN_MAX_BATCH")
    fails(run(["export", "--network", tiny, "--format", "torchscript", "--out", out, "--truncation-psi", "nan"]),
          2, "--truncation-psi", "not a finite number")
    fails(run(["export", "--network", tiny, "--format", "torchscript", "--out", out, "--truncation-psi", "3"]),
          2, "--truncation-psi", "[-2, 2]")
    assert files_under(tmp_path) == []
    with pytest.raises(BoundsError, match="FLOWERGAN_MAX_BATCH"):
        ExportSpec(batch=1_000_000).validate()
    with pytest.raises(BoundsError, match="not a finite number"):
        ExportSpec(truncation_psi=float("nan")).validate()
    ExportSpec(batch=4096, truncation_psi=0.7).validate()  # the documented limit itself is fine


# ---- edit -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("flag,value,words", [
    ("--strength", "1e30", ["1e+30 is out of range", "[-100, 100]"]),
    ("--strength", "-3:1e30:5", ["out of range"]),
    ("--strength", "0,101", ["101 is out of range"]),
    ("--fps", "inf", ["--fps", "not a finite number"]),
    ("--fps", "0", ["--fps", "out of range"]),
    ("--fps", "1e9", ["--fps", "out of range"]),
])
def test_edit_strength_and_fps_are_bounded(tiny, dirs_file, tmp_path, flag, value, words):
    out = tmp_path / ("e.gif" if flag == "--fps" else "e.png")
    fails(run(["edit", "--network", tiny, "--directions", dirs_file, "--seeds", 1, flag, value, "--out", out]),
          2, *words)
    assert not out.exists()


def test_strengths_in_range_are_kept_and_the_api_refuses_the_rest(pipe, dirs_file):
    assert parse_strengths("-3:3:7") == [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
    assert parse_strengths([-100, 100]) == [-100.0, 100.0]
    for bad in ("1e30", [0, -1e30], "0:1e300:3", 1e30):
        with pytest.raises(BoundsError, match="out of range"):
            parse_strengths(bad)
    d = Directions.load(dirs_file)
    with pytest.raises(BoundsError, match="out of range"):
        pipe.edit([1], d, 1e30)


# ---- latents far outside the model's range ----------------------------------------------------------
def test_w_far_from_w_avg_is_refused_and_ordinary_w_pass(pipe, tiny, tmp_path):
    avg, spread = pipe.w_stats()
    # independent of the check: untruncated w lie about one spread away, psi scales that
    ws = pipe.seeds_to_ws(range(200))[:, 0].double()
    dist = (ws - avg).norm(dim=1) / spread
    assert 0.5 < float(dist.mean()) < 1.5 and float(dist.max()) < 5
    pipe.generate("0-3", truncation_psi=2.0)   # the widest psi the CLI takes renders
    pipe.generate("0-3", truncation_psi=-1.0)
    u = torch.randn(pipe.w_dim, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    far = (avg + 50 * spread * u / u.norm()).float().expand(pipe.num_ws, -1)[None]   # 50 spreads away
    with pytest.raises(BoundsError, match=r"lies 50 typical spreads.*FLOWERGAN_MAX_W_DISTANCE"):
        pipe.synthesize(far)
    near = (avg + 10 * spread * u / u.norm()).float().expand(pipe.num_ws, -1)[None]
    assert pipe.synthesize(near).shape[0] == 1
    with pytest.raises(ValueError, match="NaN"):
        pipe.synthesize(torch.full_like(far, math.nan))


def test_cli_refuses_projected_w_far_outside_the_models_range(tiny, tmp_path, monkeypatch):
    from flowergan.inference.loader import load_networks

    p = Pipeline(load_networks(tiny).G)
    avg, spread = p.w_stats()
    w = (avg + 1000 * spread / math.sqrt(p.w_dim)).float().expand(p.num_ws, -1)[None].numpy()  # 1000 spreads
    np.savez(tmp_path / "far.npz", w=w)
    fails(run(["generate", "--network", tiny, "--projected-w", tmp_path / "far.npz", "--outdir", tmp_path / "o"]),
          2, "--projected-w", "typical spreads", "FLOWERGAN_MAX_W_DISTANCE")
    assert files_under(tmp_path / "o") == []
    monkeypatch.setenv("FLOWERGAN_MAX_W_DISTANCE", "2000")  # the variable raises it
    res = run(["generate", "--network", tiny, "--projected-w", tmp_path / "far.npz", "--outdir", tmp_path / "o"])
    assert res.exit_code == 0, res.output


# ---- directions files -----------------------------------------------------------------------------
@pytest.mark.parametrize("change,words", [
    (lambda v, s: (v * 3, s), "has length 3"),
    (lambda v, s: (v, s * 0 + 1e30), "std 1e+30"),
    (lambda v, s: (v, -s), "outside the plausible range"),
])
def test_resigned_directions_with_hostile_values_are_refused(tiny, dirs_file, tmp_path, change, words, monkeypatch):
    import shutil

    from flowergan.web.server import ExplorerServer

    monkeypatch.setattr(ExplorerServer, "serve_forever", lambda self, *a, **k: None)  # never block the test

    f = tmp_path / "d.safetensors"
    shutil.copy(dirs_file, f)
    shutil.copy(dirs_file.with_suffix(".json"), f.with_suffix(".json"))
    d = Directions.load(f)
    vec, std = change(d.vectors, d.std)
    resign_directions(f, vec, std)   # the checksum matches: only the format's own rules catch it
    with pytest.raises(ValueError, match=re.escape(words)):
        Directions.load(f)
    fails(run(["edit", "--network", tiny, "--directions", f, "--seeds", 1, "--out", tmp_path / "e.png"]), 2, words)
    fails(run(["serve", "--network", tiny, "--directions", f, "--port", 0]), 2, words)  # refused before serving
    assert not (tmp_path / "e.png").exists()


# ---- images that are not finite -------------------------------------------------------------------
def test_the_one_uint8_conversion_refuses_non_finite_images():
    x = np.zeros([1, 3, 4, 4], np.float32)
    assert to_uint8(x).shape == (1, 4, 4, 3)
    for bad in (math.nan, math.inf, -math.inf):
        y = x.copy()
        y[0, 1, 2, 3] = bad
        with pytest.raises(NonFiniteImageError, match="1 NaN or infinite value"):
            to_uint8(y)
        with pytest.raises(NonFiniteImageError):
            to_uint8(torch.from_numpy(y))
        with pytest.raises(NonFiniteImageError):
            to_uint8_nchw(torch.from_numpy(y))


def _overflowing(G):
    """Finite weights (they pass every file check) whose image overflows to infinity: toRGB x 1e38."""
    with torch.no_grad():
        G.synthesis.b32.torgb.weight.mul_(1e38)
        G.synthesis.b32.torgb.affine.bias.fill_(1e38)
    return G


def test_a_model_that_renders_non_finite_images_writes_nothing(tmp_path):
    from flowergan.networks.store import write_model_dir

    cfg, G, D = make_tiny()
    G = _overflowing(G)
    with pytest.raises(NonFiniteImageError):
        Pipeline(G).generate([1])
    model = write_model_dir(tmp_path / "m", cfg, {"G": G, "G_ema": G, "D": D})
    fails(run(["generate", "--network", model, "--seeds", "0-1", "--outdir", tmp_path / "o"]), 1,
          "NaN or infinite", "nothing was written")
    assert files_under(tmp_path / "o") == []
