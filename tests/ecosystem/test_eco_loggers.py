"""Log backends: the same scalars, image grids and config reach log.jsonl, TensorBoard (read back from its
event files) and Weights & Biases (offline mode, read back from its run file); a missing package or an
unknown backend is refused before training starts."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from testkit import dry_run_sections

from flowergan.cli.main import cli
from flowergan.training import loggers
from flowergan.training.config import TrainConfig
from flowergan.training.loggers import RunLoggers, check_backends

CONFIG = {"model": {"z_dim": 8, "resolution": 16}, "train": {"batch": 4, "kimg": 0.008}}
RECORDS = [{"kimg": 0.004, "Loss/G/loss": 1.5, "Progress/augment": 0.0},
           {"kimg": 0.008, "Loss/G/loss": 0.25, "Progress/augment": 0.125}]


def _grid() -> np.ndarray:
    g = np.zeros([8, 16, 3], np.uint8)
    g[:, 8:] = 200  # two tiles: black | grey
    return g


def _log_everything(run_dir: Path, names) -> None:
    lg = RunLoggers(run_dir, names, config=CONFIG)
    for r in RECORDS:
        lg.write(r)
    lg.image("fakes", _grid(), 0.008)
    lg.close()


def _wandb_records(run_file: Path):
    """The protobuf records of a W&B run file: a 7-byte header (':W&B', magic, version), then LevelDB-style
    log blocks of 32 KiB with records [crc32c:4][length:2][type:1][data] (1 full, 2 first, 3 middle, 4 last)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = run_file.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, frags = 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        length, kind = struct.unpack("<HB", data[pos + 4:pos + 7])
        if length == 0 and kind == 0:
            pos += left
            continue
        frags += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(frags)
            frags = b""
            yield rec


def test_jsonl_and_tensorboard_hold_the_same_scalars_grid_and_config(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _log_everything(tmp_path, ("jsonl", "tensorboard"))
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert lines == [{"config": CONFIG}, *RECORDS]

    acc = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    acc.Reload()
    assert sorted(acc.Tags()["scalars"]) == ["Loss/G/loss", "Progress/augment"]
    for key in ("Loss/G/loss", "Progress/augment"):
        assert [(e.step, e.value) for e in acc.Scalars(key)] == [(4, RECORDS[0][key]), (8, RECORDS[1][key])]
    (img,) = acc.Images("fakes")
    assert img.step == 8 and (img.width, img.height) == (16, 8)
    import io

    from PIL import Image

    assert (np.asarray(Image.open(io.BytesIO(img.encoded_image_string)).convert("RGB")) == _grid()).all()
    text = acc.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert json.loads(text.strip("`\njson")) == CONFIG


@pytest.mark.slow
def test_wandb_offline_run_holds_the_same_scalars_grid_and_config(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wb-cache"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wb-config"))
    _log_everything(tmp_path, ("wandb",))
    run_file = None
    for _ in range(100):  # the run file is closed by W&B's service process, a moment after finish()
        run_file = next(iter((tmp_path / "wandb").glob("offline-run-*/run-*.wandb")), None)
        if run_file is not None and any(r.WhichOneof("record_type") == "exit" for r in _wandb_records(run_file)):
            break
        time.sleep(0.1)
    assert run_file is not None, "no offline W&B run file"
    config, history = {}, []
    for rec in _wandb_records(run_file):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            config.update({u.key: json.loads(u.value_json) for u in rec.run.config.update})
        elif kind == "config":
            config.update({u.key: json.loads(u.value_json) for u in rec.config.update})
        elif kind == "history":
            row: dict = {}
            for i in rec.history.item:
                keys = [i.key] if i.key else list(i.nested_key)
                d = row
                for k in keys[:-1]:
                    d = d.setdefault(k, {})
                d[keys[-1]] = json.loads(i.value_json)
            history.append(row)
    assert {k: config.get(k) for k in CONFIG} == CONFIG
    steps = [h for h in history if "Loss/G/loss" in h]
    assert [(h["_step"], h["Loss/G/loss"], h["Progress/augment"], h["kimg"]) for h in steps] == \
        [(4, 1.5, 0.0, 0.004), (8, 0.25, 0.125, 0.008)]
    (img,) = [h["fakes"] for h in history if "fakes" in h]
    assert img["_type"] == "image-file" and (img["width"], img["height"]) == (16, 8)
    from PIL import Image

    png = run_file.parent / "files" / img["path"]
    assert (np.asarray(Image.open(png).convert("RGB")) == _grid()).all()


def test_unknown_or_missing_backends_are_refused_up_front(monkeypatch):
    with pytest.raises(ValueError, match="log backend 'mlflow': choose from jsonl, tensorboard, wandb"):
        check_backends(["mlflow"])
    real = loggers.importlib.util.find_spec
    monkeypatch.setattr(loggers.importlib.util, "find_spec", lambda m: None if m == "wandb" else real(m))
    with pytest.raises(ImportError,
                       match=r"--log wandb needs the optional wandb package: pip install 'flowergan\[wandb\]'"):
        check_backends(["jsonl", "wandb"])
    with pytest.raises(Exception, match="each backend must be one of jsonl, tensorboard, wandb"):
        TrainConfig(log=("jsonl", "csv")).validate()
    assert TrainConfig.from_dict({"log": ["jsonl", "tensorboard"]}).log == ("jsonl", "tensorboard")
    assert TrainConfig().to_dict()["log"] == ["jsonl"]


def test_train_cli_takes_several_log_options_and_refuses_a_missing_package(tmp_path, monkeypatch):
    from flowergan.data.synthetic import prepare_synthetic

    data = tmp_path / "f16.zip"
    prepare_synthetic(data, count=8, resolution=16, seed=0, progress=False, workers=1)
    args = ["train", "--data", str(data), "--out", str(tmp_path / "runs"), "--preset", "tiny", "--kimg", "0.008",
            "--batch", "4", "--no-progress", "--dry-run", "--log", "tensorboard", "--log", "jsonl"]
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert dry_run_sections(res.output)["train"]["log"] == "tensorboard, jsonl"
    real = loggers.importlib.util.find_spec
    monkeypatch.setattr(loggers.importlib.util, "find_spec", lambda m: None if m == "tensorboard" else real(m))
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 2 and "pip install 'flowergan[tensorboard]'" in res.output
    assert not (tmp_path / "runs").exists()


def test_a_training_run_logs_scalars_and_grids_to_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from flowergan.data.synthetic import prepare_synthetic

    data = tmp_path / "f16.zip"
    prepare_synthetic(data, count=8, resolution=16, seed=0, progress=False, workers=1)
    args = ["train", "--data", str(data), "--out", str(tmp_path / "runs"), "--preset", "tiny", "--channel-base", "256",
            "--channel-max", "32", "--z-dim", "16", "--w-dim", "16", "--kimg", "0.008", "--snap", "0.004",
            "--batch", "4", "--no-progress", "--log", "tensorboard"]
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    (run,) = (tmp_path / "runs").iterdir()
    lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert lines[0]["config"]["train"]["log"] == ["tensorboard"] and lines[0]["config"]["model"]["z_dim"] == 16
    scalars = [r for r in lines if "kimg" in r]
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    tb = {e.step: e.value for e in acc.Scalars("Loss/G/loss")}
    assert tb == pytest.approx({round(r["kimg"] * 1000): r["Loss/G/loss"] for r in scalars if "Loss/G/loss" in r})
    assert [e.step for e in acc.Images("fakes")] == [4, 8] and [e.step for e in acc.Images("reals")] == [0]
    ckpt_meta = json.loads(sorted((run / "checkpoints").iterdir())[-1].joinpath("config.json").read_text())
    assert ckpt_meta["dataset"] == {"name": "f16.zip", "size": 8}
    import flowergan

    card = (flowergan.load(run).save_pretrained(tmp_path / "model") / "README.md").read_text()
    assert "| training data | f16.zip, 8 images |" in card and "| trained for | 0.008 kimg" in card
