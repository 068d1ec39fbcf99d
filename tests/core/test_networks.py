"""Architecture facts: official parameter counts, shapes, modes, truncation, conditioning, the model format."""

import json

import pytest
import torch

from flowergan.config import PRESETS, ConfigError, ModelConfig, preset
from flowergan.networks import Discriminator, Generator, build_networks, count_params
from flowergan.networks.store import load_model_dir, write_model_dir

# Official stylegan2-ada-pytorch counts (from its networks built with these arguments).
OFFICIAL_COUNTS = [
    (PRESETS["auto-128"], 22_949_277, 23_882_369),
    (PRESETS["paper-128"], 24_525_213, 23_882_369),
    (PRESETS["lite-128"], 20_852_125, 23_882_369),
    (ModelConfig(channel_base=32768, map_layers=8), 29_328_669, 28_389_121),
]


@pytest.mark.parametrize("cfg,g_params,d_params", OFFICIAL_COUNTS)
def test_official_parameter_counts(cfg, g_params, d_params):
    with torch.device("meta"):
        G, D = Generator.from_config(cfg), Discriminator.from_config(cfg)
    assert count_params(G) == g_params
    assert count_params(D) == d_params
    assert G.num_ws == cfg.num_ws == 12


def test_golden_config_counts(golden_dir):
    from flowergan.compat import config_from_official

    meta = json.loads((golden_dir / "golden_public.json").read_text())
    cfg = config_from_official(meta["generator_kwargs"], meta["discriminator_kwargs"])
    G, D = build_networks(cfg)
    assert (count_params(G), count_params(D), G.num_ws) == (meta["G_params"], meta["D_params"], meta["num_ws"])


@pytest.mark.parametrize("arch", ["orig", "skip", "resnet"])
def test_architectures_and_shapes(arch):
    cfg = preset("tiny").replace(resolution=16, g_architecture=arch, d_architecture=arch, c_dim=3)
    G, D = build_networks(cfg, seed=0)
    z = torch.randn(4, cfg.z_dim)
    c = torch.eye(3)[[0, 1, 2, 0]]
    img = G(z, c)
    assert img.shape == (4, 3, 16, 16) and img.dtype == torch.float32
    assert D(img, c).shape == (4, 1)
    # conditioning matters
    assert not torch.allclose(G(z, c, noise_mode="const"), G(z, c.roll(1, 0), noise_mode="const"))


def test_noise_modes_and_determinism():
    G, _ = build_networks(preset("tiny"), seed=0)
    for m in G.modules():
        if hasattr(m, "noise_strength"):
            m.noise_strength.data.fill_(0.5)
    G.eval()
    z = torch.randn(2, G.z_dim)
    a, b = G(z, noise_mode="const"), G(z, noise_mode="const")
    assert torch.equal(a, b)
    assert not torch.allclose(G(z, noise_mode="random"), G(z, noise_mode="random"))
    assert not torch.allclose(a, G(z, noise_mode="none"))
    with pytest.raises(ValueError, match="noise_mode"):
        G(z, noise_mode="bogus")


def test_truncation_closed_form():
    G, _ = build_networks(preset("tiny"), seed=0)
    G.mapping.w_avg.normal_()
    z = torch.randn(3, G.z_dim)
    ws = G.mapping(z, None)
    w_avg = G.mapping.w_avg
    torch.testing.assert_close(G.mapping(z, None, truncation_psi=0.0), w_avg.expand_as(ws))
    torch.testing.assert_close(G.mapping(z, None, truncation_psi=0.5), w_avg + 0.5 * (ws - w_avg))
    cut = G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=2)
    torch.testing.assert_close(cut[:, 2:], ws[:, 2:])
    torch.testing.assert_close(cut[:, :2], (w_avg + 0.5 * (ws - w_avg))[:, :2])


def test_w_avg_tracking_in_training_mode_only():
    G, _ = build_networks(preset("tiny"), seed=0)
    z = torch.randn(8, G.z_dim)
    G.eval()
    G.mapping(z, None)
    assert torch.count_nonzero(G.mapping.w_avg) == 0
    G.train()
    w = G.mapping(z, None)[:, 0]
    torch.testing.assert_close(G.mapping.w_avg, 0.005 * w.mean(0))  # lerp from zeros with beta 0.995


def test_mbstd_interleaved_groups():
    from flowergan.networks.discriminator import MinibatchStdLayer

    x = torch.randn(8, 4, 2, 2)
    y = MinibatchStdLayer(group_size=4)(x)
    # sample n belongs to group n % 2 (groups interleave): recompute for group {0, 2, 4, 6}
    g = x[0::2]
    expect = (g.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
    torch.testing.assert_close(y[0, 4], torch.full((2, 2), float(expect)))
    torch.testing.assert_close(y[6, 4], y[0, 4])
    with pytest.raises(ValueError, match="not divisible"):
        MinibatchStdLayer(group_size=4)(torch.randn(6, 4, 2, 2))


def test_model_dir_round_trip(tmp_path):
    cfg = preset("tiny")
    G, D = build_networks(cfg, seed=1)
    write_model_dir(tmp_path / "m", cfg, {"G": G, "G_ema": G, "D": D}, meta={"augment_p": 0.3})
    d = load_model_dir(tmp_path / "m")
    assert d["config"] == cfg and d["meta"]["augment_p"] == 0.3
    for k, v in G.state_dict().items():
        assert torch.equal(d["G_ema"].state_dict()[k], v)
    assert not list(tmp_path.glob(".m*")), "no temp folders left behind"


def test_config_validation_and_strict_json():
    with pytest.raises(ConfigError, match="power of two"):
        ModelConfig(resolution=96)
    with pytest.raises(ConfigError, match="z_dim"):
        ModelConfig(z_dim=0)
    with pytest.raises(ConfigError, match="unknown key"):
        ModelConfig.from_dict({**ModelConfig().to_dict(), "zdim": 3})
    cfg = preset("lite-128")
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
