"""RUN/config.json has one schema (`training.run_record`): what `flowergan train` writes reads back unchanged,
and the older forms (no `request`; a checkpoint's own config.json) load through the same reader."""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner

from flowergan.cli.main import cli
from flowergan.config import ConfigError
from flowergan.networks.run_folder import list_checkpoints
from flowergan.training import plan as planning
from flowergan.training.run_record import RUN_RECORD_KEYS, RunRecord

SMALL = ["--preset", "tiny", "--channel-base", "256", "--channel-max", "32", "--z-dim", "16", "--w-dim", "16",
         "--batch", "4", "--no-progress", "--aug", "none", "--device", "cpu", "--amp", "off"]


@pytest.fixture(scope="module")
def run16(tmp_path_factory):
    from flowergan.data.synthetic import prepare_synthetic

    data = tmp_path_factory.mktemp("data") / "flowers16.zip"
    prepare_synthetic(data, count=8, resolution=16, seed=0, progress=False, workers=1)
    out = tmp_path_factory.mktemp("runs")
    r = CliRunner().invoke(cli, ["train", "--data", str(data), "--out", str(out), *SMALL, "--kimg", "0.004",
                                 "--snap", "1", "--seed", "2"])
    assert r.exit_code == 0, r.output
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    return run


def test_the_record_a_run_writes_has_the_schema_and_reads_back_unchanged(run16):
    doc = json.loads((run16 / "config.json").read_text())
    assert tuple(doc) == RUN_RECORD_KEYS
    rec = RunRecord.from_json(doc)
    assert not rec.derived and rec.to_json() == doc
    assert rec.request["preset"] == "tiny" and rec.request["train"]["seed"] == 2 and rec.world_size == 1
    assert rec.train["batch"] == 4 and rec.model["z_dim"] == 16
    assert rec.command == " ".join(sys.argv)  # the process's command line (under CliRunner: pytest's own)


def test_a_record_without_request_asks_for_its_resolved_options():
    doc = {"model": {"z_dim": 32, "resolution": 64, "num_fp16_res": 0, "conv_clamp": None, "map_layers": 2},
           "train": {"batch": 8, "gamma": 0.25}}
    rec = RunRecord.from_json(doc)
    assert rec.derived and rec.request == {"preset": None, "train": {"batch": 8, "gamma": 0.25},
                                           "model": {"z_dim": 32, "resolution": 64, "map_layers": 2}}
    fp16 = RunRecord.from_json({**doc, "model": {**doc["model"], "num_fp16_res": 4, "conv_clamp": 256}})
    assert (fp16.request["model"]["num_fp16_res"], fp16.request["model"]["conv_clamp"]) == (4, 256)


def test_a_checkpoints_own_config_json_is_a_record_of_the_same_run(run16):
    run = RunRecord.from_json(json.loads((run16 / "config.json").read_text()))
    ckpt = RunRecord.from_json(json.loads((list_checkpoints(run16)[-1] / "config.json").read_text()))
    assert ckpt.derived and ckpt.model == run.model and ckpt.train == run.train


@pytest.mark.parametrize("doc", [[1, 2], "x", {"model": [], "train": {}}, {"model": {}, "train": {}, "request": 3},
                                 {"model": {}, "train": {}, "request": {"train": [1]}}])
def test_what_is_not_a_record_is_a_config_error(doc):
    with pytest.raises(ConfigError):
        RunRecord.from_json(doc)


def test_a_run_whose_record_has_no_request_still_resumes_and_seeds_a_config(run16, tmp_path):
    saved = (run16 / "config.json").read_text()
    doc = json.loads(saved)
    doc.pop("request")
    (run16 / "config.json").write_text(json.dumps(doc))
    try:
        plan = planning.plan_run(train={"kimg": 0.008}, preset="auto-128", model={}, resume=str(run16), dry_run=True)
        assert plan.resume is not None and plan.resolved.train.seed == 2 and plan.resolved.train.kimg == 0.008
        base, model, preset = planning.read_config_file(run16 / "config.json")
        assert (base.seed, base.batch, model["z_dim"], preset) == (2, 4, 16, None)
    finally:
        (run16 / "config.json").write_text(saved)
