"""`flowergan train` end to end: a run killed with SIGKILL resumes from its last checkpoint and finishes;
fine-tuning from an official snapshot; clear errors for bad options."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from testkit import dry_run_sections

from flowergan.cli.main import cli
from flowergan.networks.run_folder import list_checkpoints


@pytest.fixture(scope="module")
def flowers16(tmp_path_factory):
    from flowergan.data.synthetic import prepare_synthetic

    out = tmp_path_factory.mktemp("data") / "flowers16.zip"
    prepare_synthetic(out, count=32, resolution=16, seed=0, progress=False, workers=1)
    return out


SMALL = ["--preset", "tiny", "--channel-base", "256", "--channel-max", "32", "--z-dim", "16", "--w-dim", "16",
         "--batch", "4", "--no-progress"]


def test_kill_during_training_then_resume(tmp_path, flowers16):
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "flowergan", "train", "--data", str(flowers16), "--out", str(runs), *SMALL,
           "--kimg", "1000", "--snap", "0.008"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            run = next(iter(runs.glob("0*")), None) if runs.exists() else None
            if run is not None and len(list_checkpoints(run)) >= 2:
                break
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoints appeared within 120 s")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    last = list_checkpoints(run)[-1]
    done_before = json.loads((last / "train_state.json").read_text())["cur_nimg"]
    target = done_before / 1000 + 0.008
    res = CliRunner().invoke(cli, ["train", "--out", str(runs), "--resume", "latest", "--kimg", str(target),
                                   "--no-progress"])
    assert res.exit_code == 0, res.output
    final = json.loads((list_checkpoints(run)[-1] / "train_state.json").read_text())
    assert final["cur_nimg"] == done_before + 8
    assert len([p for p in runs.iterdir() if p.is_dir()]) == 1, "resume continues in the same run folder"
    assert not list((run / "checkpoints").glob(".*")), "temp folders of the killed save are cleaned up"


def test_finetune_from_official_snapshot(tmp_path, golden_dir):
    from flowergan.data.synthetic import prepare_synthetic

    data = tmp_path / "f32.zip"
    prepare_synthetic(data, count=16, resolution=32, seed=1, progress=False, workers=1)
    res = CliRunner().invoke(cli, ["train", "--data", str(data), "--out", str(tmp_path / "runs"), "--batch", "4",
                                   "--kimg", "0.004", "--snap", "0.004", "--finetune",
                                   str(golden_dir / "official_tiny.pkl"), "--freeze-d", "4", "--no-progress"])
    assert res.exit_code == 0, res.output
    run = next((tmp_path / "runs").iterdir())
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["z_dim"] == 64 and cfg["model"]["channel_max"] == 64  # the snapshot's architecture
    assert "using the architecture of the starting weights" in res.output


def test_finetune_needs_matching_resolution(tmp_path, flowers16, golden_dir):
    r = CliRunner().invoke(cli, ["train", "--data", str(flowers16), "--out", str(tmp_path), "--batch", "4",
                                 "--finetune", str(golden_dir / "official_tiny.pkl"), "--dry-run"])
    assert r.exit_code != 0 and "is a 32x32 model but the dataset is 16x16" in r.output


def test_bad_options_have_clear_errors(tmp_path, flowers16):
    r = CliRunner().invoke(cli, ["train", "--out", str(tmp_path), *SMALL])
    assert r.exit_code != 0 and "--data is required" in r.output
    r = CliRunner().invoke(cli, ["train", "--data", str(flowers16), "--out", str(tmp_path), *SMALL,
                                 "--resolution", "32"])
    assert r.exit_code != 0 and "dataset is 16x16" in r.output
    r = CliRunner().invoke(cli, ["train", "--out", str(tmp_path / "none"), "--resume", "latest"])
    assert r.exit_code != 0 and "no run with a checkpoint" in r.output
    r = CliRunner().invoke(cli, ["train", "--data", str(flowers16), "--out", str(tmp_path), *SMALL, "--dry-run"])
    # the official --batch rule: gamma stays that of auto's batch at 16x16 (32), not of --batch 4
    assert r.exit_code == 0 and float(dry_run_sections(r.stdout)["train"]["gamma"]) == pytest.approx(0.0002 * 256 / 32)
    assert not any(Path(tmp_path).iterdir()), "--dry-run writes nothing"
    r = CliRunner().invoke(cli, ["train", "--data", str(flowers16), "--out", str(tmp_path), *SMALL, "--dry-run",
                                 "--pl-weight", "0", "--style-mixing", "0", "--lr", "0.004"])
    train = dry_run_sections(r.stdout)["train"]
    assert (float(train["pl_weight"]), float(train["style_mixing"]), float(train["lr"])) == (0, 0, 0.004)


def test_conditional_training_takes_classes_from_labels(tmp_path):
    from flowergan.data.synthetic import prepare_synthetic
    from flowergan.networks.store import load_model_dir

    data = tmp_path / "fam16.zip"
    prepare_synthetic(data, count=16, resolution=16, seed=2, labels_by_family=True, progress=False, workers=1)
    res = CliRunner().invoke(cli, ["train", "--data", str(data), "--out", str(tmp_path / "runs"), *SMALL,
                                   "--cond", "--kimg", "0.004", "--snap", "0.004"])
    assert res.exit_code == 0, res.output
    run = next((tmp_path / "runs").iterdir())
    m = load_model_dir(list_checkpoints(run)[-1])
    assert m["config"].c_dim == 7 and m["G"].c_dim == 7 and m["D"].c_dim == 7  # 7 shape families
    assert run.name.endswith("-cond")
