"""Corrupt weights and training state: non-finite tensors refused on save and load (naming the tensor); eleven
ways of breaking the newest checkpoint, each skipped by `--resume` with the reason, falling back to the previous."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from core_kit import checkpointed_run, copy_of
from safetensors.torch import load_file, save_file

from flowergan.cli.main import cli
from flowergan.config import PRESETS
from flowergan.networks import build_networks
from flowergan.networks.store import ModelFileError, load_model_dir, write_model_dir
from flowergan.training.checkpoint import find_resume


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """A finished run with checkpoints at 8 and 16 images."""
    run = checkpointed_run(tmp_path_factory.mktemp("ckpt"))
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["snapshot-0000000008", "snapshot-0000000016"]
    return run


@pytest.fixture
def run(base_run, tmp_path):
    return copy_of(base_run, tmp_path)


def _flip(path: Path, offset: int, value: int | None = None) -> None:
    b = bytearray(path.read_bytes())
    b[offset] = b[offset] ^ 0xFF if value is None else value
    path.write_bytes(bytes(b))


def _nan_weights(path: Path) -> None:
    t = load_file(str(path))
    t["G.synthesis.b8.conv1.weight"][0, 0, 0, 0] = float("nan")
    save_file(t, str(path))


def _drop_key(path: Path, key: str) -> None:
    doc = json.loads(path.read_text())
    del doc[key]
    path.write_text(json.dumps(doc))


W, S, ST, C = "weights.safetensors", "train_state.json", "train_state.safetensors", "config.json"
CORRUPTIONS = {
    "weights truncated": (lambda d: (d / W).write_bytes((d / W).read_bytes()[:-100]), r"weights file is corrupt"),
    "weights zero bytes": (lambda d: (d / W).write_bytes(b""), r"weights file is empty \(0 bytes\)"),
    "weights missing": (lambda d: (d / W).unlink(), r"weights file missing"),
    "header length flipped": (lambda d: _flip(d / W, 0), r"weights file is corrupt.*header"),
    "header text garbled": (lambda d: _flip(d / W, 12, ord("#")), r"weights file is corrupt"),
    "non-finite weights": (lambda d: _nan_weights(d / W), r"'G.synthesis.b8.conv1.weight' holds 1 non-finite"),
    "train state garbled": (lambda d: (d / S).write_text('{"cur_nimg": 16, '), r"training state is not readable JSON"),
    "train state missing": (lambda d: (d / S).unlink(), r"training state missing"),
    "train state lacks a key": (lambda d: _drop_key(d / S, "sampler"), r"'sampler' is None; the training state"),
    "train tensors truncated": (lambda d: (d / ST).write_bytes((d / ST).read_bytes()[:50]), r"state tensors file is"),
    "train state NaN": (lambda d: (d / S).write_text((d / S).read_text().replace('"pl_mean": ',
                                                                                  '"pl_mean": NaN, "x": ', 1)),
                        r"'pl_mean' is nan; the training state is unusable"),
    "config garbled": (lambda d: (d / C).write_text("{not json"), r"model config is not readable JSON"),
    "config hostile": (lambda d: (d / C).write_text(json.dumps({**json.loads((d / C).read_text()), "model": {
        **json.loads((d / C).read_text())["model"], "channel_max": 10**9}})), r"channel_max=1000000000 is invalid"),
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_resume_skips_a_corrupt_newest_checkpoint(run, kind):
    corrupt, reason = CORRUPTIONS[kind]
    newest = run / "checkpoints" / "snapshot-0000000016"
    before = {p.name: p.read_bytes() for p in (run / "checkpoints" / "snapshot-0000000008").iterdir()}
    corrupt(newest)
    for spec in ("latest", str(run)):
        point = find_resume(spec, run.parent)
        assert point.checkpoint.name == "snapshot-0000000008"
        assert [p.name for p, _ in point.skipped] == ["snapshot-0000000016"]
        assert point.skipped[0][1].startswith(str(newest)) and __import__("re").search(reason, point.skipped[0][1])
    with pytest.raises(ModelFileError, match=reason):  # named explicitly, it must verify
        find_resume(str(newest), run.parent)
    assert newest.is_dir(), "the corrupt checkpoint is kept (nothing lost), only skipped"
    assert {p.name: p.read_bytes() for p in (run / "checkpoints" / "snapshot-0000000008").iterdir()} == before


@pytest.mark.slow
def test_cli_resume_falls_back_and_says_why(run):
    _nan_weights(run / "checkpoints" / "snapshot-0000000016" / W)
    res = CliRunner().invoke(cli, ["train", "--out", str(run.parent), "--resume", "latest", "--kimg", "0.024",
                                   "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "--resume: skipped snapshot-0000000016:" in res.output and "non-finite" in res.output
    state = json.loads((run / "checkpoints" / "snapshot-0000000024" / S).read_text())
    assert state["cur_nimg"] == 24
    d = load_model_dir(run / "checkpoints" / "snapshot-0000000016")  # re-trained from 8: finite again
    assert all(torch.isfinite(p).all() for p in d["G"].parameters())


def test_every_checkpoint_corrupt_is_one_clear_error(run):
    for d in (run / "checkpoints").iterdir():
        (d / W).write_bytes(b"")
    res = CliRunner().invoke(cli, ["train", "--out", str(run.parent), "--resume", "latest", "--no-progress"])
    assert res.exit_code == 2, res.output
    assert "no checkpoint of" in res.output and res.output.count("weights file is empty") == 2
    assert "Traceback" not in res.output and res.exception is None or isinstance(res.exception, SystemExit)


def test_garbled_run_config_uses_the_checkpoint_copy(run):
    (run / "config.json").write_text("{garbage")
    point = find_resume("latest", run.parent)
    assert point.checkpoint.name == "snapshot-0000000016"
    assert point.run_config["train"]["batch"] == 4 and point.run_config["model"]["z_dim"] == 16


def test_non_finite_weights_are_refused_on_save_and_nothing_is_written(tmp_path):
    cfg = PRESETS["tiny"].replace(channel_base=256, channel_max=32)
    G, D = build_networks(cfg, seed=0)
    with torch.no_grad():
        D.b4.fc.weight[3, 1] = float("inf")
    with pytest.raises(ModelFileError, match=r"refusing to save .*'D.b4.fc.weight' holds 1 non-finite"):
        write_model_dir(tmp_path / "model", cfg, {"G": G, "D": D})
    assert list(tmp_path.iterdir()) == [], "no folder, no temp files"


def test_non_finite_weights_are_refused_on_load(tmp_path):
    cfg = PRESETS["tiny"].replace(channel_base=256, channel_max=32)
    G, D = build_networks(cfg, seed=0)
    write_model_dir(tmp_path / "m", cfg, {"G": G, "D": D})
    _nan_weights(tmp_path / "m" / W)
    with pytest.raises(ModelFileError, match=r"'G.synthesis.b8.conv1.weight' holds 1 non-finite.*earlier checkpoint"):
        load_model_dir(tmp_path / "m")


@pytest.mark.parametrize("kind", ["weights truncated", "non-finite weights", "config garbled", "config hostile"])
def test_network_run_falls_back_past_a_corrupt_newest_checkpoint(run, kind, caplog):
    """`--network RUN` (inference) skips a damaged newest checkpoint like `--resume` does, and says so."""
    from flowergan.inference.loader import load_networks

    corrupt, reason = CORRUPTIONS[kind]
    newest = run / "checkpoints" / "snapshot-0000000016"
    corrupt(newest)
    with caplog.at_level("WARNING"):
        for spec in (run, run.parent):  # the run folder, or the folder of runs
            m = load_networks(spec)
            assert m.source.name == "snapshot-0000000008"
    assert any("skipping" in r.message and "snapshot-0000000016" in r.message for r in caplog.records)
    with pytest.raises(ModelFileError, match=reason):  # named explicitly, it must load itself
        load_networks(newest)


def test_network_run_with_every_checkpoint_corrupt_lists_each_reason(run):
    from flowergan.inference.loader import load_networks

    for d in (run / "checkpoints").iterdir():
        _nan_weights(d / W)
    with pytest.raises(ModelFileError, match=r"no checkpoint loads") as e:
        load_networks(run)
    assert str(e.value).count("non-finite") == 2 and "snapshot-0000000008" in str(e.value)


def test_finetune_run_falls_back_past_a_corrupt_newest_checkpoint(run, caplog):
    """`--finetune RUN` starts from the newest checkpoint that loads, like `--resume` and `--network`."""
    from flowergan.training.plan import load_start_networks

    _nan_weights(run / "checkpoints" / "snapshot-0000000016" / W)
    with caplog.at_level("WARNING"):
        start = load_start_networks(run)
    assert start["source"].name == "snapshot-0000000008"
    want = load_model_dir(run / "checkpoints" / "snapshot-0000000008")["G_ema"].state_dict()
    got = start["G_ema"].state_dict()
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    assert any("skipping" in r.message and "snapshot-0000000016" in r.message for r in caplog.records)


def test_finetune_with_every_checkpoint_corrupt_is_one_clear_error(run, tmp_path):
    for d in (run / "checkpoints").iterdir():
        _nan_weights(d / W)
    from flowergan.data.synthetic import prepare_synthetic

    data = tmp_path / "d.zip"
    prepare_synthetic(data, count=8, resolution=16, seed=1, progress=False, workers=1)
    res = CliRunner().invoke(cli, ["train", "--data", str(data), "--finetune", str(run), "--dry-run",
                                   "--no-progress"])
    assert res.exit_code == 2, res.output
    assert res.output.count(f"--finetune {run}") == 1 and "no checkpoint loads" in res.output, res.output
    assert res.output.count("non-finite") == 2 and "Traceback" not in res.output
