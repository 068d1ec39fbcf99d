"""Generation: seeds -> z as the official generate.py, determinism, truncation, labels, uint8 and grids."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from testkit import official_uint8

import flowergan
from flowergan.inference import Pipeline, load, make_grid, parse_seeds, seeds_to_z, to_uint8
from flowergan.inference.latents import class_to_c, parse_styles, style_ranges


def test_parse_seeds_ranges_and_lists():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("1,5,7-9") == [1, 5, 7, 8, 9]
    assert parse_seeds(" 4 ") == [4]
    assert parse_seeds([3, 1]) == [3, 1]
    assert parse_seeds(7) == [7]
    assert parse_seeds("4294967295") == [2**32 - 1]
    for bad, word in [("9-3", "backwards"), ("a", "cannot parse"), ("", "empty"), ("4294967296", "[0, 4294967295]"),
                      ("1,,2", "cannot parse")]:
        with pytest.raises(ValueError, match=word.replace("[", r"\[").replace("]", r"\]")):
            parse_seeds(bad)


def test_seeds_to_z_matches_randomstate():
    z = seeds_to_z([0, 42], 64)
    assert z.shape == (2, 64) and z.dtype == np.float64
    np.testing.assert_array_equal(z[1], np.random.RandomState(42).randn(1, 64)[0])
    np.testing.assert_array_equal(z[0], np.random.RandomState(0).randn(64))


def test_to_uint8_official_rounding():
    x = torch.tensor([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0]).reshape(1, 1, 2, 3).repeat(1, 3, 1, 1)
    got = to_uint8(x)
    assert got.shape == (1, 2, 3, 3) and got.dtype == np.uint8
    # (x * 127.5 + 128) truncated: -2 -> 0 (clamped), -1 -> 0.5 -> 0, 0 -> 128, 0.5 -> 191.75 -> 191, 1 -> 255, 3 -> 255
    assert got[0, :, :, 0].ravel().tolist() == [0, 0, 128, 191, 255, 255]


def test_make_grid_layout():
    imgs = np.stack([np.full([2, 3, 3], i, np.uint8) for i in range(1, 6)])  # 5 images 2x3
    g = make_grid(imgs, cols=3)
    assert g.shape == (4, 9, 3)
    assert g[0, 0, 0] == 1 and g[0, 3, 0] == 2 and g[0, 6, 0] == 3 and g[2, 0, 0] == 4 and g[2, 3, 0] == 5
    assert g[2, 6, 0] == 0  # the empty sixth cell is background
    assert make_grid(imgs).shape == (4, 9, 3)  # default cols = ceil(sqrt(5)) = 3


def test_load_returns_pipeline(pipe, tiny_dir):
    assert isinstance(pipe, Pipeline)
    assert pipe.G.training is False and pipe.config.resolution == 32
    assert (pipe.resolution, pipe.num_ws, pipe.z_dim, pipe.c_dim) == (32, 8, 64, 0)
    assert isinstance(flowergan.load(tiny_dir), Pipeline)
    assert flowergan.load(tiny_dir, batch_size=4).batch_size == 4


@pytest.mark.parametrize("psi,noise_mode", [(1.0, "const"), (0.7, "none")])
def test_generate_matches_G_directly(pipe, psi, noise_mode):
    G = pipe.G
    images = pipe.generate("3,11", truncation_psi=psi, noise_mode=noise_mode)
    assert images.shape == (2, 32, 32, 3) and images.dtype == np.uint8
    for img, seed in zip(images, [3, 11]):
        z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim))
        with torch.no_grad():
            expected = official_uint8(G(z, None, truncation_psi=psi, noise_mode=noise_mode))[0]
        np.testing.assert_array_equal(img, expected)
    assert not np.array_equal(images[0], images[1])


def test_random_noise_is_deterministic_per_seed(pipe):
    G = pipe.G
    torch.manual_seed(999)
    a = pipe.generate([5, 6], noise_mode="random")
    b = pipe.generate([6], noise_mode="random")  # seed 6 alone, after other RNG use
    np.testing.assert_array_equal(a[1], b[0])
    # the same as seeding torch's generator with the seed right before G(z)
    z = torch.from_numpy(np.random.RandomState(5).randn(1, G.z_dim))
    torch.manual_seed(5)
    with torch.no_grad():
        expected = official_uint8(G(z, None, noise_mode="random"))[0]
    np.testing.assert_array_equal(a[0], expected)
    # and the noise really is random noise, not the constant maps
    assert not np.array_equal(a[0], pipe.generate([5], noise_mode="const")[0])


def test_generate_leaves_global_rng_alone(pipe):
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    pipe.generate([1, 2], noise_mode="random")
    assert torch.equal(torch.rand(3), expected)


def test_truncation_zero_gives_w_avg_image(pipe):
    G = pipe.G
    images = pipe.generate("0-4", truncation_psi=0.0)
    with torch.no_grad():
        ws = G.mapping.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1)
        expected = official_uint8(G.synthesis(ws, noise_mode="const"))[0]
    for img in images:
        np.testing.assert_array_equal(img, expected)
    assert not np.array_equal(pipe.generate([0])[0], expected)  # psi = 1 is not the average


def test_truncation_sweep_shape_and_columns(pipe):
    sweep = pipe.truncation_sweep([1, 2], [1, 0.5, 0])
    assert sweep.shape == (2, 3, 32, 32, 3)
    np.testing.assert_array_equal(sweep[0, 2], sweep[1, 2])            # psi 0: same for every seed
    np.testing.assert_array_equal(sweep[1, 0], pipe.generate([2])[0])   # psi 1: the plain image


def test_batched_pipeline_close_to_exact(tiny_dir):
    batched = load(tiny_dir, batch_size=8)
    single = flowergan.load(tiny_dir)
    a, b = batched.generate("0-9"), single.generate("0-9")
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_conditional_model_needs_a_class(cond_dir):
    p = flowergan.load(cond_dir)
    with pytest.raises(ValueError, match=r"conditional \(c_dim=3\).*\[0, 2\]"):
        p.generate([1])
    with pytest.raises(ValueError, match=r"must be an integer in \[0, 2\]"):
        p.generate([1], class_idx=3)
    img0, img2 = p.generate([1], class_idx=0), p.generate([1], class_idx=2)
    assert not np.array_equal(img0, img2)
    z = torch.from_numpy(np.random.RandomState(1).randn(1, p.z_dim))
    c = torch.tensor([[0.0, 0.0, 1.0]])
    with torch.no_grad():
        np.testing.assert_array_equal(img2[0], official_uint8(p.G(z, c, noise_mode="const"))[0])


def test_unconditional_model_rejects_a_class(pipe):
    with pytest.raises(ValueError, match="unconditional"):
        pipe.generate([1], class_idx=0)
    assert class_to_c(None, 0, 2).shape == (2, 0)


def test_style_ranges_and_parsing():
    assert style_ranges(18) == {"coarse": [0, 1, 2, 3], "middle": [4, 5, 6, 7], "fine": list(range(8, 18)),
                                "all": list(range(18))}
    r8 = style_ranges(8)  # tiny: thirds
    assert (r8["coarse"], r8["middle"], r8["fine"]) == ([0, 1, 2], [3, 4, 5], [6, 7])
    assert parse_styles("0-2,5", 8) == [0, 1, 2, 5]
    assert parse_styles("coarse,fine", 8) == [0, 1, 2, 6, 7]
    assert parse_styles("none", 8) == [] and parse_styles("", 8) == []
    with pytest.raises(ValueError, match=r"indices must be in \[0, 7\]"):
        parse_styles("0-8", 8)
    with pytest.raises(ValueError, match="cannot parse 'bogus'"):
        parse_styles("bogus", 8)


def test_synthesize_checks_shapes(pipe):
    with pytest.raises(ValueError, match=r"ws must be \[N, 8, 64\]"):
        pipe.synthesize(torch.zeros(1, 7, 64))
    with pytest.raises(ValueError, match="noise_mode"):
        pipe.generate([1], noise_mode="loud")


def test_grayscale_model_gives_one_channel_images():
    from flowergan.config import preset
    from flowergan.inference import png_bytes
    from flowergan.networks import build_networks

    G, _ = build_networks(preset("tiny").replace(img_channels=1), seed=0)
    p = Pipeline(G.eval())
    imgs = p.generate([1, 2])
    assert imgs.shape == (2, 32, 32, 1)
    assert png_bytes(imgs[0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert make_grid(imgs, cols=2).shape == (32, 64, 1)
