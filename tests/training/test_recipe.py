"""`flowergan train` resolves exactly the official train.py settings (every row of the golden table, resolved by
the official code for 32..1024, 1/2/4/8 GPUs and every --cfg), with its override rules; bad values fail
before anything is created; --resume refuses conflicting flags; fine-tuning; --config round trip."""

import json
import math

import pytest
import torch
from click.testing import CliRunner
from testkit import dry_run_sections, shown

from flowergan.cli.main import cli
from flowergan.config import ConfigError, ModelConfig, preset
from flowergan.training.config import TrainConfig
from flowergan.training.recipe import resolve

GOLDEN_KEYS = ("batch", "batch_gpu", "mbstd_group", "channel_base", "channel_max", "map_layers", "lr", "gamma",
               "ema_kimg", "ema_rampup", "kimg", "num_fp16_res", "conv_clamp", "pl_weight", "style_mixing",
               "d_architecture")


def _golden_rows():
    from tests.conftest import GOLDEN_DIR

    path = GOLDEN_DIR / "official_train_cfg.json"
    if not path.is_file():
        return []
    return json.loads(path.read_text())["rows"]


def _dry(args, world=1, monkeypatch=None):
    env = {"WORLD_SIZE": str(world)}
    r = CliRunner().invoke(cli, ["train", "--dry-run", "--json", *args], env=env)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def _same(a, b):
    if isinstance(b, float) or isinstance(a, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)
    return a == b


ROWS = _golden_rows()


@pytest.mark.skipif(not ROWS, reason="golden table official_train_cfg.json not found")
def test_dry_run_matches_every_official_row():
    """54 rows: nothing is built (1024 included), WORLD_SIZE=N resolves for N processes, --device cuda
    resolves as for CUDA without one."""
    assert len(ROWS) == 54
    bad = []
    for row in ROWS:
        got = _dry(["--cfg", row["cfg"], "--resolution", str(row["resolution"]), "--device", "cuda"], row["gpus"])
        assert got["world_size"] == row["gpus"] and got["resolution"] == row["resolution"]
        assert got["cfg"] == row["cfg"] and got["device"] == "cuda" and got["amp"] == "fp16"
        for k in GOLDEN_KEYS:
            if not _same(got[k], row[k]):
                bad.append(f"{row['cfg']} res {row['resolution']} x{row['gpus']}: {k} {got[k]!r} != {row[k]!r}")
    assert not bad, "\n".join(bad)


def test_dry_run_from_a_dataset_takes_its_resolution(tmp_path):
    from flowergan.data.synthetic import prepare_synthetic

    data = tmp_path / "f16.zip"
    prepare_synthetic(data, count=8, resolution=16, seed=0, progress=False, workers=1)
    got = _dry(["--data", str(data), "--device", "cuda", "--out", str(tmp_path / "runs")], world=2)
    # auto at 16x16 on 2 GPUs: mb = max(min(2 * min(4096 // 16, 32), 64), 2) = 64, gamma = 2e-4 * 256 / 64
    assert (got["resolution"], got["batch"], got["batch_gpu"], got["mbstd_group"]) == (16, 64, 32, 4)
    assert got["gamma"] == pytest.approx(0.0002 * 16**2 / 64) and got["ema_kimg"] == 20
    assert not (tmp_path / "runs").exists(), "--dry-run creates nothing"


def test_override_rules():
    base = ["--resolution", "512", "--device", "cuda"]
    # --batch overrides batch and batch_gpu only; gamma and EMA stay those of the base config's batch (8).
    got = _dry([*base, "--batch", "32"])
    assert (got["batch"], got["batch_gpu"]) == (32, 32)
    assert got["gamma"] == pytest.approx(0.0002 * 512**2 / 8) and got["ema_kimg"] == pytest.approx(2.5)
    got = _dry([*base, "--batch", "32"], world=4)
    assert (got["batch"], got["batch_gpu"]) == (32, 8)
    got = _dry([*base, "--gamma", "1.5", "--kimg", "7", "--lr", "0.001", "--ema", "3"])
    assert (got["gamma"], got["kimg"], got["lr"], got["ema_kimg"]) == (1.5, 7, 0.001, 3)
    got = _dry([*base, "--fp32"])
    assert (got["num_fp16_res"], got["conv_clamp"], got["amp"]) == (0, None, "off")
    got = _dry([*base, "--amp", "bf16"])
    assert (got["num_fp16_res"], got["conv_clamp"], got["amp"]) == (0, None, "bf16")
    # the CPU trains in fp32 unless asked
    got = _dry(["--resolution", "512", "--device", "cpu"])
    assert (got["num_fp16_res"], got["conv_clamp"], got["amp"], got["device"]) == (0, None, "off", "cpu")
    # explicit flag > model preset > --cfg: tiny keeps its narrow channels under paper512; flags beat tiny
    got = _dry(["--resolution", "32", "--cfg", "paper512", "--preset", "tiny"])
    assert (got["channel_base"], got["channel_max"], got["map_layers"], got["z_dim"]) == (2048, 64, 2, 64)
    assert (got["gamma"], got["batch"], got["batch_gpu"], got["mbstd_group"]) == (0.5, 64, 8, 8)
    got = _dry(["--resolution", "32", "--preset", "tiny", "--channel-base", "4096", "--set", "mbstd_group=2"])
    assert (got["channel_base"], got["mbstd_group"]) == (4096, 2)
    # the flower experiment's model: auto's channels and batch at 128, lite-128's mapping and widths
    got = _dry(["--resolution", "128", "--preset", "lite-128"])
    got_sizes = (got["channel_base"], got["map_layers"], got["z_dim"], got["w_dim"], got["batch"])
    assert got_sizes == (16384, 4, 256, 256, 32)
    # a non-auto config on fewer GPUs than its reference keeps batch_gpu and accumulates rounds
    got = _dry(["--resolution", "256", "--cfg", "stylegan2", "--device", "cuda"], world=2)
    assert (got["batch"], got["batch_gpu"], got["rounds"]) == (32, 4, 4)
    # a batch below the group size shrinks the group (the official networks use min(group, batch))
    got = _dry(["--resolution", "64", "--batch", "2"])
    assert got["mbstd_group"] == 2


@pytest.mark.parametrize("args, message", [
    (["--kimg", "nan"], "--kimg nan: must be a finite number"),
    (["--snap", "inf"], "--snap inf: must be a finite number"),
    (["--lr", "nan"], "--lr nan: must be a finite number"),
    (["--target", "nan"], "--target nan: must be a finite number"),
    (["--seed", "-1"], "--seed -1: must be an integer >= 0"),
    (["--ema", "-2"], "--ema -2.0: must be > 0"),
    (["--ema-rampup", "-0.1"], "--ema-rampup -0.1: must be >= 0"),
    (["--batch", "6"], "not a multiple of the minibatch-stddev group 4"),
    (["--metrics", "fid,fidd"], "--metrics: unknown 'fidd'"),
    (["--amp", "fp16", "--device", "cpu"], "--amp fp16: the fp16 blocks run in float16 only on CUDA"),
    (["--fp32", "--amp", "bf16"], "--fp32 and --amp bf16 contradict"),
])
def test_bad_values_fail_before_anything_is_created(tmp_path, flowers16, args, message):
    out = tmp_path / "runs"
    r = CliRunner().invoke(cli, ["train", "--data", str(flowers16), "--out", str(out), "--preset", "tiny", *args])
    assert r.exit_code != 0 and message in r.output, r.output
    assert not out.exists(), "no run folder is left behind"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_cuda_is_refused(tmp_path, flowers16):
    out = tmp_path / "runs"
    r = CliRunner().invoke(cli, ["train", "--data", str(flowers16), "--out", str(out), "--preset", "tiny",
                                 "--device", "cuda", "--kimg", "0.004"])
    assert r.exit_code != 0 and "CUDA is not available" in r.output
    assert not out.exists()


def test_python_api_resolves_like_the_cli():
    """TrainConfig(amp=...) and None fields mean the same from Python; the resolved config says what runs."""
    r = resolve(TrainConfig(amp="fp16", device="cuda"), ModelConfig(resolution=256), world_size=1)
    assert (r.model.num_fp16_res, r.model.conv_clamp, r.train.amp) == (4, 256, "fp16")
    assert (r.train.batch, r.train.gamma, r.train.ema_kimg) == (16, pytest.approx(0.8192), 5)
    again = resolve(r.train, r.model, world_size=1)  # resolving a resolved run changes nothing
    assert again.train == r.train and again.model == r.model
    with pytest.raises(ConfigError, match="divisible by the number of processes"):
        resolve(TrainConfig(batch=6), ModelConfig(), world_size=4)


@pytest.fixture(scope="module")
def flowers16(tmp_path_factory):
    from flowergan.data.synthetic import prepare_synthetic

    out = tmp_path_factory.mktemp("data") / "flowers16.zip"
    prepare_synthetic(out, count=16, resolution=16, seed=0, progress=False, workers=1)
    return out


SMALL = ["--preset", "tiny", "--channel-base", "256", "--channel-max", "32", "--z-dim", "16", "--w-dim", "16",
         "--batch", "4", "--no-progress", "--device", "cpu"]


@pytest.fixture(scope="module")
def one_run(tmp_path_factory, flowers16):
    runs = tmp_path_factory.mktemp("runs")
    r = CliRunner().invoke(cli, ["train", "--data", str(flowers16), "--out", str(runs), *SMALL, "--kimg", "0.004",
                                 "--snap", "0.004", "--gamma", "0.5", "--lr", "0.003"])
    assert r.exit_code == 0, r.output
    return next(runs.iterdir())


def test_resume_refuses_conflicting_flags(one_run):
    out = str(one_run.parent)
    for args, flag in ((["--batch", "8"], "--batch 8 conflicts with the run's 4"),
                       (["--z-dim", "32"], "--z-dim 32 conflicts with the run's 16"),
                       (["--gamma", "1"], "--gamma 1.0 conflicts with the run's 0.5"),
                       (["--data", str(one_run)], "--data")):
        r = CliRunner().invoke(cli, ["train", "--out", out, "--resume", str(one_run), *args, "--dry-run"])
        assert r.exit_code != 0 and flag in r.output and "--finetune" in r.output, r.output
    r = CliRunner().invoke(cli, ["train", "--out", out, "--resume", str(one_run), "--kimg", "0.008", "--snap", "1",
                                 "--batch", "4", "--dry-run", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["kimg"] == 0.008 and json.loads(r.stdout)["gamma"] == 0.5


def test_resume_switches_between_fp32_and_bf16(one_run, tmp_path):
    """A run resumed with --amp bf16 (or --amp off) continues from the same state in the new precision and
    its new checkpoint records it; --amp fp16 stays a conflict (it changes the model)."""
    import shutil

    from flowergan.networks.run_folder import list_checkpoints

    run = tmp_path / "runs" / one_run.name
    shutil.copytree(one_run, run)
    before = list_checkpoints(run)
    r = CliRunner().invoke(cli, ["train", "--out", str(run.parent), "--resume", str(run), "--kimg", "0.008",
                                 "--amp", "bf16", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "precision off -> bf16" in r.output
    new = [c for c in list_checkpoints(run) if c not in before]
    assert new and json.loads((new[-1] / "config.json").read_text())["train"]["amp"] == "bf16"
    r = CliRunner().invoke(cli, ["train", "--out", str(run.parent), "--resume", str(run), "--amp", "fp16",
                                 "--device", "cuda", "--dry-run"])
    assert r.exit_code != 0 and "--amp fp16 conflicts with the run's off" in r.output, r.output


def test_config_round_trip(one_run, tmp_path):
    saved = json.loads((one_run / "config.json").read_text())
    r = CliRunner().invoke(cli, ["train", "--config", str(one_run / "config.json"), "--dry-run", "--json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert (got["gamma"], got["lr"], got["batch"], got["z_dim"], got["channel_base"]) == (0.5, 0.003, 4, 16, 256)
    r = CliRunner().invoke(cli, ["train", "--config", str(one_run / "config.json"), "--dry-run", "--seed", "5",
                                 "--batch", "8"])
    d = dry_run_sections(r.stdout)
    assert d["train"]["seed"] == "5" and d["train"]["batch"] == "8" and d["train"]["lr"] == "0.003"
    assert d["model"] == {k: shown(v) for k, v in saved["model"].items()}  # same model
    t = TrainConfig.from_dict(saved["train"])
    assert t.to_dict() == saved["train"]  # the saved train config loads back unchanged


def _distinct_model(tmp_path, cfg):
    """A model folder whose G, G_ema and D all hold different tensors."""
    from flowergan.networks import build_networks
    from flowergan.networks.store import write_model_dir

    G, D = build_networks(cfg, seed=1)
    G_ema, _ = build_networks(cfg, seed=2)
    write_model_dir(tmp_path / "start", cfg, {"G": G, "G_ema": G_ema, "D": D})
    return tmp_path / "start", G, G_ema, D


def test_finetune_loads_each_network_from_its_own_tensors(tmp_path):
    from flowergan.benchmarking.training import RandomImages, _CyclicSampler
    from flowergan.training.loop import Trainer
    from flowergan.training.plan import load_start_networks, plan_training

    cfg = preset("tiny").replace(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
    path, G, G_ema, D = _distinct_model(tmp_path, cfg)
    start = load_start_networks(path)
    t = Trainer(plan_training(cfg, TrainConfig(batch=4, finetune=str(path)), device="cpu", start=start), None,
                RandomImages(cfg, n=8), device=torch.device("cpu"), sampler_cls=_CyclicSampler)
    for mine, src in ((t.G, G), (t.G_ema, G_ema), (t.D, D)):
        for (k, a), b in zip(mine.state_dict().items(), src.state_dict().values()):
            assert torch.equal(a, b), k
    assert not torch.equal(t.G.mapping.fc0.weight, t.G_ema.mapping.fc0.weight)
    assert (t.cfg.ada_kimg, t.cfg.ema_rampup) == (100, 0)  # the official fine-tuning settings
    t2 = Trainer(plan_training(cfg, TrainConfig(batch=4, finetune=str(path), ada_kimg=300, ema_rampup=0.05),
                               device="cpu"), None, RandomImages(cfg, n=8), device=torch.device("cpu"),
                 sampler_cls=_CyclicSampler)
    assert (t2.cfg.ada_kimg, t2.cfg.ema_rampup) == (300, 0.05)  # unless set explicitly


def test_finetune_cli_from_official_snapshot(tmp_path, golden_dir):
    from flowergan.compat.official import load_official_pickle
    from flowergan.data.synthetic import prepare_synthetic

    data = tmp_path / "f32.zip"
    prepare_synthetic(data, count=8, resolution=32, seed=1, progress=False, workers=1)
    pkl = golden_dir / "official_tiny.pkl"
    r = CliRunner().invoke(cli, ["train", "--data", str(data), "--finetune", str(pkl), "--dry-run", "--json",
                                 "--batch", "4", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)  # one JSON object on stdout; notes go to stderr
    assert (got["ada_kimg"], got["ema_rampup"], got["channel_max"], got["z_dim"]) == (100, None, 64, 64)
    from flowergan.training.plan import load_start_networks

    start, off = load_start_networks(pkl), load_official_pickle(pkl)
    for k in ("G", "G_ema", "D"):
        assert all(torch.equal(a, b) for a, b in zip(start[k].state_dict().values(), off[k].state_dict().values()))


def test_accumulation_rounds_add_gradients_like_the_official_loop():
    """batch 4 as 2 rounds of batch_gpu 2: D's gradient is the sum of the two rounds' gradients (official)."""
    from flowergan.benchmarking.training import RandomImages, _CyclicSampler
    from flowergan.training.loop import Trainer
    from flowergan.training.plan import plan_training

    cfg = preset("tiny").replace(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16, mbstd_group=2)
    g = torch.Generator().manual_seed(3)
    real, z = torch.rand(4, 3, 16, 16, generator=g) * 2 - 1, torch.randn(4, 4, 16, generator=g)
    c, gen_c = torch.zeros(4, 0), torch.zeros(4, 4, 0)

    def grads(batch, batch_gpu, sl):
        tcfg = TrainConfig(batch=batch, batch_gpu=batch_gpu, aug="none", style_mixing=0.0, noise_mode="const")
        t = Trainer(plan_training(cfg, tcfg, device="cpu"), None, RandomImages(cfg, n=8), device=torch.device("cpu"),
                    sampler_cls=_CyclicSampler)
        assert t.rounds == batch // batch_gpu
        t.step(real=(real[sl], c[sl]), gen_z=z[:, sl], gen_c=gen_c[:, sl], phases=["Dmain"])
        return {n: p.grad.clone() for n, p in t.D.named_parameters() if p.grad is not None}

    both = grads(4, 2, slice(0, 4))
    a, b = grads(2, 2, slice(0, 2)), grads(2, 2, slice(2, 4))
    assert both.keys() == a.keys()
    for n in both:
        torch.testing.assert_close(both[n], a[n] + b[n], rtol=1e-5, atol=1e-7, msg=n)


def test_run_configs_written_before_the_resolver_still_load():
    old = {"data": "x.zip", "batch": 16, "gamma": 0.0128, "lr_g": 0.004, "lr_d": 0.004, "ema_kimg": 5.0,
           "workers": 0, "amp": "off", "device": "cpu"}
    t = TrainConfig.from_dict(old)
    assert (t.lr, t.batch, t.gamma, t.ema_kimg) == (0.004, 16, 0.0128, 5.0)
    with pytest.raises(ConfigError, match="lr_g=0.004 and lr_d=0.002 differ"):
        TrainConfig.from_dict({**old, "lr_d": 0.002})


def test_config_file_without_request_section(tmp_path):
    """A hand-written config.json with only `train` and `model` works too; flags still override it."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"train": {"batch": 8, "gamma": 0.25}, "model": {"z_dim": 32, "resolution": 64}}))
    r = CliRunner().invoke(cli, ["train", "--config", str(path), "--resolution", "64", "--dry-run", "--json",
                                 "--device", "cuda", "--lr", "0.001"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert (got["batch"], got["gamma"], got["z_dim"], got["lr"], got["num_fp16_res"]) == (8, 0.25, 32, 0.001, 4)
