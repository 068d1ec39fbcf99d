"""`flowergan train`'s rough edges: --data-workers bounded by the CPU count, a full disk named (exit 1, how to
go on), optional loggers checked before the run folder exists, a readable --dry-run, a fine-tune's run folder
named after its preset, and a progress bar that ends at its total."""

from __future__ import annotations

import errno
import importlib.util
import json
import re
import warnings
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from flowergan.cli.errors import classify
from flowergan.cli.main import cli
from flowergan.training import loggers
from flowergan.training import plan as planning

SMALL = ["--preset", "tiny", "--channel-base", "256", "--channel-max", "32", "--z-dim", "16", "--w-dim", "16",
         "--batch", "4", "--no-progress"]


@pytest.fixture(scope="module")
def data16(tmp_path_factory):
    from flowergan.data.synthetic import prepare_synthetic

    out = tmp_path_factory.mktemp("data") / "flowers16.zip"
    prepare_synthetic(out, count=16, resolution=16, seed=0, progress=False, workers=1)
    return out


def _train(args, env=None):
    return CliRunner().invoke(cli, ["train", *args], env=env)


# ---- --data-workers -----------------------------------------------------------------------------------
def test_data_workers_are_bounded_by_the_cpu_count_before_anything_is_made(data16, tmp_path, monkeypatch):
    monkeypatch.setattr(planning, "usable_cpus", lambda: 4)
    monkeypatch.delenv("FLOWERGAN_MAX_WORKERS", raising=False)
    out = tmp_path / "runs"
    for n in (100_000, 5):
        r = _train(["--data", str(data16), "--out", str(out), *SMALL, "--kimg", "0.004", "--data-workers", str(n)])
        assert r.exit_code == 2, r.output
        assert f"--data-workers {n:,}" in r.output and "4 usable CPU cores" in r.output, r.output
        assert "FLOWERGAN_MAX_WORKERS" in r.output and "Traceback" not in r.output
        assert not out.exists(), "no run folder for a refused run"
    r = _train(["--data", str(data16), "--out", str(out), *SMALL, "--data-workers", "4", "--dry-run"])
    assert r.exit_code == 0, r.output
    # the environment variable raises the bound past the core count (and is then the only bound)
    env = {"FLOWERGAN_MAX_WORKERS": "8"}
    assert _train(["--data", str(data16), "--out", str(out), *SMALL, "--data-workers", "8", "--dry-run"],
                  env).exit_code == 0
    r = _train(["--data", str(data16), "--out", str(out), *SMALL, "--data-workers", "9", "--dry-run"], env)
    assert r.exit_code == 2 and "FLOWERGAN_MAX_WORKERS allows" in r.output, r.output


# ---- a full disk --------------------------------------------------------------------------------------
def _enospc_safetensors(*args, **kwargs):
    from safetensors import SafetensorError

    raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")


def _train_to_a_full_disk(data16, tmp_path) -> tuple[Path, str]:
    """A run (snapshots every 4 images) that stops on the full disk: (its folder, the last line it printed)."""
    out = tmp_path / "runs"
    r = _train(["--data", str(data16), "--out", str(out), *SMALL, "--kimg", "0.008", "--snap", "0.004"])
    assert r.exit_code == 1, r.output
    (run,) = out.iterdir()
    return run, r.output.strip().splitlines()[-1]


def test_a_full_disk_while_saving_a_checkpoint_names_it_and_says_how_to_go_on(data16, tmp_path, monkeypatch):
    import flowergan.networks.store as store

    monkeypatch.setattr(store, "save_file", _enospc_safetensors)
    run, line = _train_to_a_full_disk(data16, tmp_path)
    assert line.startswith(f"Error: {run / 'checkpoints' / 'snapshot-0000000004'}: the disk is full"), line
    assert "free some space" in line and "start the run again (it has no checkpoint yet)" in line
    assert not list((run / "checkpoints").iterdir()), "no half-written checkpoint or temp folder left"


def test_a_full_disk_after_a_checkpoint_says_to_resume_from_it(data16, tmp_path, monkeypatch):
    import flowergan.networks.store as store

    real, calls = store.save_file, []

    def full_after_first_checkpoint(*args, **kwargs):  # two files a checkpoint: weights, state tensors
        calls.append(1)
        if len(calls) > 2:
            _enospc_safetensors()
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "save_file", full_after_first_checkpoint)
    run, line = _train_to_a_full_disk(data16, tmp_path)
    assert line.startswith(f"Error: {run / 'checkpoints' / 'snapshot-0000000008'}: the disk is full"), line
    assert f"continue with `flowergan train --resume {run}` (from snapshot-0000000004" in line, line
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["snapshot-0000000004"]


def test_a_full_disk_while_logging_names_the_log_file(data16, tmp_path, monkeypatch):
    class Full:
        def __init__(self, *a, **k):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(loggers, "open", Full, raising=False)  # the module's open(); nothing else is affected
    out = tmp_path / "runs"
    r = _train(["--data", str(data16), "--out", str(out), *SMALL, "--kimg", "0.004"])
    assert r.exit_code == 1, r.output
    (run,) = out.iterdir()
    assert f"Error: {run / 'log.jsonl'}: the disk is full" in r.output, r.output


def test_a_safetensors_os_error_is_a_failure_not_bad_input():
    from safetensors import SafetensorError

    code, msg = classify(SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)"))
    assert code == 1 and "the disk is full" in msg
    code, _ = classify(SafetensorError("Error while deserializing header: HeaderTooLarge"))
    assert code == 2  # a damaged file stays bad input


# ---- optional loggers ---------------------------------------------------------------------------------
@pytest.fixture
def no_wandb_login(tmp_path, monkeypatch):
    """No key anywhere W&B looks (environment, .netrc, settings files) and no offline mode."""
    for var in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_DISABLED", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NETRC", str(tmp_path / "home" / ".netrc"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wb-config"))
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wb-dir"))
    (tmp_path / "home").mkdir()
    return tmp_path


@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="wandb is not installed")
def test_wandb_without_a_key_is_refused_before_the_run_folder(data16, no_wandb_login):
    out = no_wandb_login / "runs"
    r = _train(["--data", str(data16), "--out", str(out), *SMALL, "--kimg", "0.004", "--log", "wandb"])
    assert r.exit_code == 2, r.output
    assert "wandb login" in r.output and "WANDB_MODE=offline" in r.output and "internal error" not in r.output
    assert r.output.count("Error:") == 1 and "Usage:" not in r.output
    assert not out.exists()


def test_wandb_readiness_follows_the_places_wandb_reads(no_wandb_login, monkeypatch):
    home = no_wandb_login / "home"
    assert not loggers.wandb_can_start()
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert loggers.wandb_can_start()
    monkeypatch.setenv("WANDB_MODE", "online")
    assert not loggers.wandb_can_start()
    (home / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password 0123456789abcdef\n")
    assert loggers.wandb_can_start()  # what `wandb login` writes
    monkeypatch.delenv("WANDB_MODE")
    (home / ".netrc").write_text("machine example.com login u password p\n")
    assert not loggers.wandb_can_start()
    (no_wandb_login / "wb-dir" / "wandb").mkdir(parents=True)
    (no_wandb_login / "wb-dir" / "wandb" / "settings").write_text("[default]\nmode = offline\n")
    assert loggers.wandb_can_start()  # what `wandb offline` writes
    monkeypatch.setenv("WANDB_API_KEY", "0123")
    assert loggers.wandb_can_start()


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="tensorboard is not installed")
def test_a_tensorboard_that_does_not_import_is_refused_up_front(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "torch.utils.tensorboard", None)
    with pytest.raises(ImportError, match=r"--log tensorboard: the tensorboard package does not import.*pip install"):
        loggers.check_backends(("tensorboard",))


# ---- --dry-run and run folder names -------------------------------------------------------------------
def test_dry_run_is_a_readable_report_and_json_stays_json(data16, tmp_path):
    from flowergan.training.recipe import SUMMARY_KEYS

    out = tmp_path / "runs"
    r = _train(["--data", str(data16), "--out", str(out), *SMALL, "--dry-run"])
    assert r.exit_code == 0, r.output
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.stdout)
    assert f"run folder: {out / '00000-tiny-flowers16-b4'} (made when training starts)" in r.stdout
    assert re.search(r"^  batch +4$", r.stdout, re.M) and "Resolved settings:" in r.stdout
    assert not out.exists()
    r = _train(["--data", str(data16), "--out", str(out), *SMALL, "--dry-run", "--json"])
    assert r.exit_code == 0 and tuple(json.loads(r.stdout)) == SUMMARY_KEYS


def _model(path, **changes):
    from flowergan.config import PRESETS
    from flowergan.networks import build_networks
    from flowergan.networks.store import write_model_dir

    cfg = PRESETS["tiny"].replace(**changes)  # 32x32
    G, D = build_networks(cfg, seed=0)
    write_model_dir(path, cfg, {"G": G, "G_ema": G, "D": D})
    return path


def test_a_finetune_run_folder_is_named_after_the_preset_of_its_weights(tmp_path):
    from flowergan.data.synthetic import prepare_synthetic

    data = tmp_path / "roses.zip"
    prepare_synthetic(data, count=8, resolution=32, seed=0, progress=False, workers=1)
    for model, want in ((_model(tmp_path / "tiny"), "00000-tiny-roses-b"),
                        (_model(tmp_path / "narrow", channel_max=32), "00000-custom-roses-b")):
        r = _train(["--data", str(data), "--out", str(tmp_path / "runs"), "--finetune", str(model), "--dry-run"])
        assert r.exit_code == 0, r.output
        assert f"run folder: {tmp_path / 'runs' / want}" in r.stdout, r.stdout


# ---- the progress bar ---------------------------------------------------------------------------------
def test_progress_bar_ends_at_its_total_without_warnings(tmp_path, capsys):
    """kimg 0.010 at batch 4: the last step overshoots to 12 images; the bar still ends at 0.01/0.01 kimg."""
    from flowergan.benchmarking.training import RandomImages, _CyclicSampler
    from flowergan.config import preset
    from flowergan.training.config import TrainConfig
    from flowergan.training.loop import Trainer, train
    from flowergan.training.plan import plan_training

    cfg = preset("tiny").replace(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
    t = Trainer(plan_training(cfg, TrainConfig(batch=4, kimg=0.010, snap=1, aug="none", seed=0), device="cpu"),
                tmp_path,
                RandomImages(cfg, n=8, seed=1), device=torch.device("cpu"), sampler_cls=_CyclicSampler)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(t, progress=True)
    err = capsys.readouterr().err
    assert t.cur_nimg == 12
    assert not [w for w in caught if "Tqdm" in type(w.message).__name__], [str(w.message) for w in caught]
    final = err.replace("\r", "\n").strip().splitlines()[-1]
    assert "0.01/0.01 kimg" in final and "100%" in final and "<-" not in err, final
