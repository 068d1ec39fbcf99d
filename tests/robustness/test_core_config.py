"""Hostile model configs (config.json, official pickle arguments, flags): strict types, StyleGAN2's ranges and a
parameter-memory estimate checked before anything is built."""

from __future__ import annotations

import json
import time

import pytest
from core_kit import g_kwargs, run_capped

from flowergan.compat.kwargs import config_from_official
from flowergan.config import LIMITS, PRESETS, ConfigError, ModelConfig
from flowergan.networks.store import ModelFileError, read_model_config

TINY = PRESETS["tiny"]


@pytest.mark.parametrize("field", sorted(LIMITS))
@pytest.mark.parametrize("value", ["32", 64.9, 32.0, True])
def test_int_fields_refuse_strings_floats_and_bools(field, value):
    with pytest.raises(ConfigError, match=rf"{field}=.*must be an integer"):
        TINY.replace(**{field: value})


@pytest.mark.parametrize("field,value", [("resolution", 2**15), ("channel_base", 10**9), ("channel_max", 10**9),
                                         ("z_dim", 10**9), ("w_dim", 10**9), ("map_layers", 10**6),
                                         ("d_map_layers", 10**6), ("c_dim", 99_999_999_999), ("map_hidden", 10**9),
                                         ("resolution", 0), ("img_channels", 4), ("mbstd_channels", -1)])
def test_sizes_outside_stylegan2_ranges_are_refused(field, value):
    with pytest.raises(ConfigError, match=rf"{field}={value}.*(must be in \[|must be 1 \(grayscale\))"):
        TINY.replace(**{field: value})


@pytest.mark.parametrize("field,value", [("map_lr_mult", float("nan")), ("w_avg_beta", float("inf")),
                                         ("conv_clamp", float("nan")), ("map_lr_mult", "0.01")])
def test_float_fields_refuse_non_finite_and_strings(field, value):
    with pytest.raises(ConfigError, match=field):
        TINY.replace(**{field: value})


# Official stylegan2-ada-pytorch parameter counts (as in tests/core/test_networks.py), from its own networks.
OFFICIAL = [(PRESETS["auto-128"], 22_949_277, 23_882_369), (PRESETS["paper-128"], 24_525_213, 23_882_369),
            (PRESETS["lite-128"], 20_852_125, 23_882_369),
            (ModelConfig(channel_base=32768, map_layers=8), 29_328_669, 28_389_121)]


@pytest.mark.parametrize("cfg,g,d", OFFICIAL)
def test_closed_form_parameter_count_matches_the_official_networks(cfg, g, d):
    assert cfg.param_counts() == (g, d)
    assert cfg.param_bytes() == 4 * (g + d)


def test_closed_form_count_matches_built_networks_for_every_architecture():
    import torch

    from flowergan.networks import Discriminator, Generator, count_params

    for ga, da, c_dim, extra in [("orig", "skip", 5, {}), ("resnet", "orig", 3, {"map_hidden": 17, "map_embed": 9,
                                                                                 "d_cmap_dim": 13}),
                                 ("skip", "resnet", 0, {"mbstd_channels": 2})]:
        cfg = ModelConfig(resolution=16, z_dim=24, w_dim=40, c_dim=c_dim, channel_base=256, channel_max=48,
                          g_architecture=ga, d_architecture=da, img_channels=1, map_layers=3, d_map_layers=2, **extra)
        with torch.device("meta"):
            G, D = Generator.from_config(cfg), Discriminator.from_config(cfg)
        assert cfg.param_counts() == (count_params(G), count_params(D))


def test_parameter_memory_limit_names_itself_and_how_to_raise_it(monkeypatch):
    big = dict(resolution=1024, channel_base=2**20, channel_max=4096)  # within every range, ~7 GB of G
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=r"GiB as float32, over the limit of 8 GiB.*FLOWERGAN_MAX_PARAM_GB=<GiB>"):
        ModelConfig(**big)
    assert time.perf_counter() - t0 < 1, "refused from the formula, nothing built"
    monkeypatch.setenv("FLOWERGAN_MAX_PARAM_GB", "0.01")  # 10 MiB: auto-128 (187 MB) is now over
    with pytest.raises(ConfigError, match="over the limit of 0.01 GiB"):
        ModelConfig()
    monkeypatch.setenv("FLOWERGAN_MAX_PARAM_GB", "64")
    assert ModelConfig(**big).param_bytes() > 8 * 2**30
    monkeypatch.setenv("FLOWERGAN_MAX_PARAM_GB", "lots")
    with pytest.raises(ConfigError, match="FLOWERGAN_MAX_PARAM_GB='lots'"):
        ModelConfig()


@pytest.mark.parametrize("where,change,msg", [
    ("img_resolution", {"img_resolution": "32"}, r"img_resolution='32' must be an integer"),
    ("img_resolution", {"img_resolution": 64.9}, r"img_resolution=64.9 must be an integer"),
    ("z_dim", {"z_dim": True}, r"z_dim=True must be an integer"),
    ("channel_base", {"synthesis_kwargs": {"channel_base": 10**9, "channel_max": 10**9}},
     r"channel_base=1000000000 is invalid"),
    ("num_layers", {"mapping_kwargs": {"num_layers": 10**6}}, r"map_layers=1000000 .*must be in"),
    ("img_resolution", {"img_resolution": 2**15}, r"resolution=32768 .*must be in"),
    ("missing", {"z_dim": None}, r"z_dim=None must be an integer"),
])
def test_official_kwargs_are_strict(where, change, msg):
    kw = g_kwargs(**change)
    with pytest.raises(ConfigError, match=msg):
        config_from_official(kw)


def test_official_kwargs_missing_required_argument():
    kw = g_kwargs()
    del kw["img_resolution"]
    with pytest.raises(ConfigError, match=r"required argument\(s\) \['img_resolution'\] missing"):
        config_from_official(kw)


def test_model_folder_with_a_huge_config_is_refused_before_building(tmp_path):
    """A config.json asking for 1e9 channels: a clear error in well under a second, with memory capped."""
    doc = {"format": "flowergan-model", "format_version": 1, "model": {**TINY.to_dict(), "channel_max": 10**9,
                                                                         "channel_base": 10**9}}
    (tmp_path / "config.json").write_text(json.dumps(doc))
    with pytest.raises(ModelFileError, match=r"channel_base=1000000000 is invalid: must be in \[1, 4194304\]"):
        read_model_config(tmp_path)
    res = run_capped(f"from flowergan.networks.store import load_model_dir\n"
                     f"try:\n    load_model_dir({str(tmp_path)!r})\n"
                     f"except Exception as e:\n    print(type(e).__name__, e)",
                     mem_mb=2048)
    assert "ModelFileError" in res.stdout and "channel_base=1000000000" in res.stdout, res.stdout + res.stderr
