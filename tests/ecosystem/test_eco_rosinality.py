"""Interop with rosinality's stylegan2-pytorch (what pSp, e4e, HyperStyle, GANSpace load): our export loads
with torch.load(weights_only=True) into the Generator architecture written out in rosinality_ref.py
(strict: every key and shape) and draws the same images; import-rosinality reads real training checkpoints
(argparse Namespace included) safely and reproduces that architecture's images and D logits; hostile pickles are refused
before anything runs; configurations rosinality cannot express are refused in one line."""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from rosinality_ref import RosDiscriminator, RosGenerator

from flowergan.cli.main import cli
from flowergan.compat.official import RefusedPickleError
from flowergan.compat.rosinality import read_rosinality, rosinality_args, to_rosinality
from flowergan.compat.torchsave import read_torch_save
from flowergan.config import ConfigError, ModelConfig, preset
from flowergan.export.rosinality import write_rosinality
from flowergan.inference.loader import load_networks
from flowergan.networks.generator import Generator
from flowergan.networks.store import write_model_dir

TOL = 2e-5  # fp32, different summation orders; measured ~3e-6 at 16x16, ~5e-6 at 64x64
SMALL = dict(resolution=16, z_dim=32, w_dim=32, map_layers=2, channel_base=16384, channel_max=512)


def _randomised(cfg: ModelConfig, seed: int = 0) -> Generator:
    """Our generator with every tensor random (biases, noise strengths, w_avg too), so each mapping matters."""
    torch.manual_seed(seed)
    G = Generator.from_config(cfg).eval().requires_grad_(False)
    for name, p in G.named_parameters():
        if "noise_strength" in name:
            p.uniform_(0.1, 0.5)
        elif name.endswith("bias"):
            p.add_(torch.randn_like(p) * 0.2)
        if "torgb.weight" in name:
            p.mul_(0.3)
    G.mapping.w_avg.normal_()
    return G


def _z(n: int, dim: int, seed: int = 3) -> torch.Tensor:
    return torch.from_numpy(np.random.RandomState(seed).randn(n, dim).astype(np.float32))


def _load_ref(path: Path, args: dict) -> tuple[RosGenerator, torch.Tensor]:
    ckpt = torch.load(path, weights_only=True, map_location="cpu")  # what pSp / e4e / GANSpace do
    assert set(ckpt) == {"g_ema", "latent_avg"}
    R = RosGenerator(**args).eval().requires_grad_(False)
    R.load_state_dict(ckpt["g_ema"], strict=True)
    return R, ckpt["latent_avg"]


@pytest.mark.parametrize("lr", [0.01, 0.02])
def test_export_loads_strictly_into_rosinality_and_draws_the_same_images(tmp_path, lr):
    G = _randomised(ModelConfig(**SMALL, map_lr_mult=lr))
    info = write_rosinality(G, tmp_path / "g.pt")
    args = info["generator_args"]
    assert args == {"size": 16, "style_dim": 32, "n_mlp": 2, "channel_multiplier": 2}
    assert json.loads((tmp_path / "g.pt.json").read_text())["generator_args"] == args
    R, latent_avg = _load_ref(tmp_path / "g.pt", args)
    assert torch.equal(latent_avg, G.mapping.w_avg)
    z = _z(3, 32)
    with torch.no_grad():
        ours = G(z, None, truncation_psi=0.7, noise_mode="const")
        theirs = R(z, truncation=0.7, truncation_latent=latent_avg)
        assert ours.abs().max() > 0.5 and (ours - theirs).abs().max() <= TOL
        ws = torch.randn(2, G.num_ws, 32)  # W+ (style mixing, inversion encoders' output)
        assert (G.synthesis(ws, noise_mode="const") - R(latent=ws)).abs().max() <= TOL


def test_export_without_the_kernel_mapping_would_differ(tmp_path):
    """The check above can fail: flipping the 2x convs' taps (the TF-era convention) changes the images."""
    G = _randomised(ModelConfig(**SMALL))
    sd, latent_avg, args = to_rosinality(G)
    for k in [k for k in sd if k.startswith("convs.") and k.endswith(".conv.weight")][::2]:
        sd[k] = sd[k].flip([3, 4])
    R = RosGenerator(**args.to_dict()).eval()
    R.load_state_dict(sd, strict=True)
    z = _z(2, 32)
    with torch.no_grad():
        assert (G(z, None, noise_mode="const") - R(z)).abs().max() > 1e-2


def test_channel_multiplier_1_at_64(tmp_path):
    """The 128x128 presets' ladder (channel_base 16384) is rosinality's channel_multiplier 1: 256 at 64x64."""
    G = _randomised(ModelConfig(resolution=64, z_dim=32, w_dim=32, map_layers=1, channel_base=16384), seed=1)
    info = write_rosinality(G, tmp_path / "g.pt")
    assert info["generator_args"] == {"size": 64, "style_dim": 32, "n_mlp": 1, "channel_multiplier": 1}
    R, latent_avg = _load_ref(tmp_path / "g.pt", info["generator_args"])
    assert R.convs[6].conv.weight.shape == (1, 256, 512, 3, 3)
    z = _z(1, 32)
    with torch.no_grad():
        ours = G(z, None, truncation_psi=0.5, noise_mode="const")
        assert (ours - R(z, truncation=0.5, truncation_latent=latent_avg)).abs().max() <= TOL
    back = read_rosinality(tmp_path / "g.pt")
    assert back["args"].channel_multiplier == 1 and back["config"].channel_base == 16384


def test_presets_that_export():
    got = {name: rosinality_args(preset(name)).to_dict() for name in ("auto-128", "paper-128", "lite-128")}
    assert got == {"auto-128": {"size": 128, "style_dim": 512, "n_mlp": 2, "channel_multiplier": 1},
                   "paper-128": {"size": 128, "style_dim": 512, "n_mlp": 8, "channel_multiplier": 1},
                   "lite-128": {"size": 128, "style_dim": 256, "n_mlp": 4, "channel_multiplier": 1}}
    f = ModelConfig(resolution=1024, map_layers=8, channel_base=32768, conv_clamp=256, num_fp16_res=4)
    assert rosinality_args(f).to_dict() == {"size": 1024, "style_dim": 512, "n_mlp": 8, "channel_multiplier": 2}


@pytest.mark.parametrize("changes, words", [
    (dict(c_dim=3), "conditional (c_dim=3)"),
    (dict(g_architecture="orig"), "'orig'"),
    (dict(g_architecture="resnet"), "'resnet'"),
    (dict(img_channels=1), "img_channels is 1"),
    (dict(z_dim=64), "one style_dim"),
    (dict(map_hidden=64), "one style_dim"),
    (dict(resolution=64, channel_base=8192), "64: 128"),       # half the 1x ladder
    (dict(resolution=32, channel_base=2048, channel_max=64), "32: 64"),  # the tiny preset's ladder
    (dict(resolution=64, channel_base=65536, channel_max=1024), "32: 1024"),  # rosinality caps 4..32 px at 512
    (dict(resolution=2048, channel_base=2**16), "over rosinality's largest size"),
])
def test_unsupported_configs_are_refused(changes, words):
    cfg = ModelConfig(**{**SMALL, **changes})
    with pytest.raises(ConfigError, match="cannot export to rosinality's format") as e:
        rosinality_args(cfg)
    assert words in str(e.value) and "\n" not in str(e.value)


def _rosinality_training_checkpoint(path: Path, legacy: bool, seed: int = 5,
                                    d: dict | None = None) -> tuple[RosGenerator, RosDiscriminator]:
    """A checkpoint laid out as rosinality's train.py saves one: g, d, g_ema, optimisers, args (a Namespace)."""
    torch.manual_seed(seed)
    R = RosGenerator(16, 24, 3).eval().requires_grad_(False)
    RD = RosDiscriminator(16).eval().requires_grad_(False)
    for name, p in [*R.named_parameters(), *RD.named_parameters()]:
        if name.endswith("noise.weight"):
            p.uniform_(0.1, 0.5)
        elif name.endswith("bias"):
            p.add_(torch.randn_like(p) * 0.2)
    g = RosGenerator(16, 24, 3)
    opt = torch.optim.Adam(g.parameters())
    ckpt = {"g": g.state_dict(), "d": RD.state_dict() if d is None else d, "g_ema": R.state_dict(),
            "g_optim": opt.state_dict(), "d_optim": {"state": {}, "param_groups": []},
            "args": argparse.Namespace(size=16, latent=24, n_mlp=3, channel_multiplier=1, lr=0.002, path="lmdb"),
            "ada_aug_p": 0.25}
    torch.save(ckpt, path, _use_new_zipfile_serialization=not legacy)
    return R, RD


@pytest.mark.parametrize("legacy", [False, True])
def test_import_rosinality_training_checkpoint(tmp_path, legacy):
    R, RD = _rosinality_training_checkpoint(tmp_path / "080000.pt", legacy)
    with pytest.raises(pickle.UnpicklingError):  # why a safe reader of our own is needed
        torch.load(tmp_path / "080000.pt", weights_only=True)
    res = CliRunner().invoke(cli, ["import-rosinality", str(tmp_path / "080000.pt"), str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert "Generator(size=16, style_dim=24, n_mlp=3, channel_multiplier=1)" in res.output  # from its args
    assert "converted: g, g_ema, d" in res.output and "mean w of 10,000 seeded z" in res.output
    m = load_networks(tmp_path / "m")
    img = torch.randn(8, 3, 16, 16)  # two minibatch-stddev groups of 4
    with torch.no_grad():
        logits = m.D(img)
        assert logits.abs().max() > 1e-2 and (logits - RD(img)).abs().max() <= TOL * max(1, logits.abs().max())
    assert (m.config.resolution, m.config.z_dim, m.config.w_dim, m.config.map_layers) == (16, 24, 24, 3)
    z = _z(3, 24)
    with torch.no_grad():
        ours = m.G(z, None, noise_mode="const")
        assert ours.abs().max() > 0.5 and (ours - R(z)).abs().max() <= TOL
        w_mean = R.style(torch.from_numpy(np.random.RandomState(9).randn(20000, 24).astype(np.float32))).mean(0)
    assert (m.G.mapping.w_avg - w_mean).abs().max() < 0.05 * w_mean.abs().max()  # a mean w, independently drawn


def test_round_trip_is_exact_through_the_cli(tmp_path):
    cfg = ModelConfig(**SMALL, conv_clamp=256)
    G = _randomised(cfg, seed=2)
    write_model_dir(tmp_path / "ours", cfg, {"G": G, "G_ema": G})
    run = CliRunner().invoke
    res = run(cli, ["export", "--format", "rosinality", "--network", str(tmp_path / "ours"), "--out",
                    str(tmp_path / "x.pt")])
    assert res.exit_code == 0, res.output
    assert "Generator(size=16, style_dim=32, n_mlp=2, channel_multiplier=2)" in res.output
    assert "conv_clamp=256 is not applied" in res.output and "max |image difference| = 0 " in res.output
    R, latent_avg = _load_ref(tmp_path / "x.pt", json.loads((tmp_path / "x.pt.json").read_text())["generator_args"])
    res = run(cli, ["import-rosinality", str(tmp_path / "x.pt"), str(tmp_path / "back")])
    assert res.exit_code == 0, res.output
    G2 = load_networks(tmp_path / "back").G
    ours = G.state_dict()
    assert all(torch.equal(t, ours[k]) for k, t in G2.state_dict().items())
    z = _z(2, 32)
    with torch.no_grad():
        a = G(z, None, truncation_psi=0.6, noise_mode="const")
        assert torch.equal(a, G2(z, None, truncation_psi=0.6, noise_mode="const"))
        assert (a - R(z, truncation=0.6, truncation_latent=latent_avg)).abs().max() <= TOL
    again = run(cli, ["export", "--format", "rosinality", "--network", str(tmp_path / "ours"), "--out",
                      str(tmp_path / "x.pt")])
    assert again.exit_code == 2 and "--overwrite" in again.output
    res = run(cli, ["export", "--format", "rosinality", "--network", str(tmp_path / "ours"), "--out",
                    str(tmp_path / "y.pt"), "--truncation-psi", "0.5", "--batch", "4"])
    assert res.exit_code == 2 and "--batch, --truncation-psi do not apply" in res.output
    assert not (tmp_path / "y.pt").exists()


def test_cli_refuses_a_conditional_model_before_writing(tmp_path):
    cfg = ModelConfig(**SMALL, c_dim=2)
    write_model_dir(tmp_path / "c", cfg, {"G_ema": Generator.from_config(cfg)})
    res = CliRunner().invoke(cli, ["export", "--format", "rosinality", "--network", str(tmp_path / "c"),
                                   "--out", str(tmp_path / "c.pt")])
    assert res.exit_code == 2 and "conditional (c_dim=2)" in res.output and len(res.output.splitlines()) == 1
    assert not (tmp_path / "c.pt").exists() and not (tmp_path / "c.pt.json").exists()


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("layout", ["zip", "legacy", "pickle"])
def test_a_code_executing_pickle_is_refused_before_it_runs(tmp_path, layout):
    marker = tmp_path / "ran"
    bad = tmp_path / "evil.pt"
    obj = {"g_ema": {"style.1.weight": torch.zeros(2, 2)}, "args": _Payload(marker)}
    if layout == "pickle":  # a bare pickle (no torch layout), the payload first
        bad.write_bytes(pickle.dumps({"args": _Payload(marker), "g_ema": {}}))
    else:
        torch.save(obj, bad, _use_new_zipfile_serialization=layout == "zip")
    with pytest.raises(RefusedPickleError, match="system"):
        read_torch_save(bad)
    res = CliRunner().invoke(cli, ["import-rosinality", str(bad), str(tmp_path / "out")])
    assert res.exit_code == 2 and "refused to load global" in res.output and "Nothing was executed" in res.output
    assert not marker.exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("legacy", [False, True])
def test_safe_reader_matches_torch_load_on_plain_tensors(tmp_path, legacy):
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    obj = {"a": base, "view": base[1:, 2:], "half": torch.randn(5).half(), "long": torch.arange(3),
           "flag": torch.tensor([True, False]), "nested": [1, 2.5, ("x", None)], "empty": torch.zeros(0)}
    torch.save(obj, tmp_path / "t.pt", _use_new_zipfile_serialization=not legacy)
    got, want = read_torch_save(tmp_path / "t.pt"), torch.load(tmp_path / "t.pt", weights_only=True)
    assert got.keys() == want.keys() and got["nested"] == want["nested"]
    for k in ("a", "view", "half", "long", "flag", "empty"):
        assert got[k].dtype == want[k].dtype and torch.equal(got[k], want[k])


def test_import_refuses_a_modified_generator(tmp_path):
    G = _randomised(ModelConfig(**SMALL))
    sd, latent_avg, _ = to_rosinality(G)
    sd["extra.weight"] = torch.zeros(3)
    torch.save({"g_ema": sd, "latent_avg": latent_avg}, tmp_path / "x.pt")
    res = CliRunner().invoke(cli, ["import-rosinality", str(tmp_path / "x.pt"), str(tmp_path / "m")])
    assert res.exit_code == 2 and "unexpected tensor(s) ['extra.weight']" in res.output
    del sd["extra.weight"]
    sd["convs.1.conv.weight"] = sd["convs.1.conv.weight"][:, :, :256]
    torch.save({"g_ema": sd, "latent_avg": latent_avg[None]}, tmp_path / "x.pt")
    res = CliRunner().invoke(cli, ["import-rosinality", str(tmp_path / "x.pt"), str(tmp_path / "m")])
    assert res.exit_code == 2 and "convs.1.conv.weight is (1, 512, 256, 3, 3)" in res.output
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("legacy", [False, True])
def test_a_truncated_checkpoint_is_one_line(tmp_path, legacy):
    _rosinality_training_checkpoint(tmp_path / "x.pt", legacy)
    data = (tmp_path / "x.pt").read_bytes()
    (tmp_path / "x.pt").write_bytes(data[: len(data) * 2 // 3])
    res = CliRunner().invoke(cli, ["import-rosinality", str(tmp_path / "x.pt"), str(tmp_path / "m")])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert "x.pt" in res.output and ("cut short" if legacy else "zip archive") in res.output
    assert not (tmp_path / "m").exists()


def test_a_discriminator_of_another_layout_is_skipped_with_a_note(tmp_path):
    _rosinality_training_checkpoint(tmp_path / "x.pt", False, d={"convs.0.0.weight": torch.randn(8, 3, 1, 1)})
    res = CliRunner().invoke(cli, ["import-rosinality", str(tmp_path / "x.pt"), str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert "converted: g, g_ema\n" in res.output and "convs.0.0.weight is (8, 3, 1, 1)" in res.output
    assert load_networks(tmp_path / "m").D is None


def test_an_official_snapshot_goes_through_the_same_check(golden_dir, tmp_path):
    """--network takes official pickles too (read safely); this one's 64-channel ladder is not rosinality's."""
    res = CliRunner().invoke(cli, ["export", "--format", "rosinality", "--network",
                                   str(golden_dir / "official_tiny.pkl"), "--out", str(tmp_path / "o.pt")])
    assert res.exit_code == 2 and "(4: 64, 8: 64, 16: 64, 32: 32)" in res.output
    assert "channel_base = 16384*m with channel_max 512" in res.output and not (tmp_path / "o.pt").exists()


def test_storages_claiming_more_than_the_file_are_refused_before_allocating(tmp_path):
    """A legacy-layout file whose tensors each fit in it but together claim more than it holds is refused
    while unpickling (before the storages are allocated or read)."""
    class Claim:  # pickles as the persistent id torch.save writes for a storage, with a made-up size
        def __init__(self, key):
            self.key = key

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.FloatStorage, obj.key, "cpu", 800) if isinstance(obj, Claim) else None

    buf = io.BytesIO()
    for head in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
        pickle.dump(head, buf, protocol=2)
    P(buf, protocol=2).dump({"a": Claim("0"), "b": Claim("1")})
    (tmp_path / "big.pt").write_bytes(buf.getvalue() + bytes(4000))  # 3,200 bytes each, 6,400 together
    assert 3200 < (tmp_path / "big.pt").stat().st_size < 6400
    with pytest.raises(RefusedPickleError, match="claim more bytes than the file holds"):
        read_torch_save(tmp_path / "big.pt")
