"""A run is planned once (`training.plan`): `flowergan train` calls `plan_run` once, the settings are validated
and resolved once, the Trainer takes the plan; every refusal of the planner is a ConfigError; the options
`--resume` may change are one list that writes both the `--resume` help and the refusal."""

from __future__ import annotations

import json
import re

import pytest
import torch
from click.testing import CliRunner

from flowergan.cli.main import cli
from flowergan.config import ConfigError, preset
from flowergan.errors import BadInput
from flowergan.training import plan as planning
from flowergan.training import recipe
from flowergan.training.config import TrainConfig, flag_of

SMALL = ["--preset", "tiny", "--channel-base", "256", "--channel-max", "32", "--z-dim", "16", "--w-dim", "16",
         "--batch", "4", "--no-progress"]
MODEL = dict(channel_base=256, channel_max=32, z_dim=16, w_dim=16)


@pytest.fixture(scope="module")
def data16(tmp_path_factory):
    from flowergan.data.synthetic import prepare_synthetic

    out = tmp_path_factory.mktemp("data") / "flowers16.zip"
    prepare_synthetic(out, count=8, resolution=16, seed=0, progress=False, workers=1)
    return out


@pytest.fixture(scope="module")
def run16(data16, tmp_path_factory):
    """A finished 4-image run of tiny at 16x16 (one checkpoint)."""
    out = tmp_path_factory.mktemp("runs")
    r = CliRunner().invoke(cli, ["train", "--data", str(data16), "--out", str(out), *SMALL, "--kimg", "0.004",
                                 "--snap", "1", "--aug", "none", "--device", "cpu", "--amp", "off"])
    assert r.exit_code == 0, r.output
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    return run


class _Counts:
    def __init__(self, monkeypatch):
        self.plans = self.validates = self.resolutions = 0
        real_plan, real_validate, real_spec = planning.plan_run, TrainConfig.validate, recipe.cfg_spec

        def plan_run(**kw):
            self.plans += 1
            return real_plan(**kw)

        def validate(cfg):
            self.validates += 1
            return real_validate(cfg)

        def cfg_spec(*a, **kw):  # every resolution of a run's settings derives its base config once
            self.resolutions += 1
            return real_spec(*a, **kw)

        monkeypatch.setattr(planning, "plan_run", plan_run)
        monkeypatch.setattr(TrainConfig, "validate", validate)
        monkeypatch.setattr(recipe, "cfg_spec", cfg_spec)


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_run_is_planned_validated_and_resolved_once(data16, tmp_path, monkeypatch, dry_run):
    counts = _Counts(monkeypatch)
    args = ["train", "--data", str(data16), "--out", str(tmp_path / "runs"), *SMALL, "--kimg", "0.004",
            "--snap", "1", "--aug", "none", "--device", "cpu", "--amp", "off"]
    r = CliRunner().invoke(cli, args + (["--dry-run", "--json"] if dry_run else []))
    assert r.exit_code == 0, r.output
    assert (counts.plans, counts.validates, counts.resolutions) == (1, 1, 1)
    if dry_run:
        assert json.loads(r.stdout)["gamma"] == pytest.approx(0.0002 * 16**2 / 32)  # auto's own batch (32)
    else:
        (run,) = (tmp_path / "runs").iterdir()
        assert json.loads((run / "config.json").read_text())["train"]["batch"] == 4


def test_a_resumed_run_is_planned_and_resolved_once(run16, monkeypatch):
    counts = _Counts(monkeypatch)
    r = CliRunner().invoke(cli, ["train", "--resume", str(run16), "--kimg", "0.008", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert (counts.plans, counts.validates, counts.resolutions) == (1, 1, 1)


def test_the_trainer_refuses_a_plan_for_another_device_or_process_count():
    from flowergan.benchmarking.training import RandomImages
    from flowergan.training.distributed import DistInfo
    from flowergan.training.loop import Trainer

    cfg = preset("tiny").replace(resolution=16, **MODEL)
    plan = planning.plan_training(cfg, TrainConfig(batch=4, aug="none"), device="cpu", world_size=2)
    with pytest.raises(ValueError, match=r"the plan is for 2 process\(es\) on cpu"):
        Trainer(plan, None, RandomImages(cfg, n=8), device=torch.device("cpu"), info=DistInfo())


def test_plan_training_applies_the_fine_tune_rules_and_loads_the_start_weights_once(run16, monkeypatch):
    loads = []
    real = planning.load_start_networks
    monkeypatch.setattr(planning, "load_start_networks", lambda p: loads.append(p) or real(p))
    cfg = preset("tiny").replace(resolution=16, **MODEL)
    plan = planning.plan_training(cfg, TrainConfig(batch=4, finetune=str(run16)), device="cpu")
    assert loads == [str(run16)] and set(plan.start) >= {"G", "G_ema", "D"}
    assert (plan.resolved.train.ada_kimg, plan.resolved.train.ema_rampup) == (100, 0)  # the official rules


def _plan(**kw):
    args = dict(train={}, preset="tiny", model=dict(MODEL), dry_run=True)
    args.update(kw)
    return planning.plan_run(**args)


def _files(tmp):
    bad_json, wrong = tmp / "bad.json", tmp / "wrong.json"
    bad_json.write_text("{not json")
    wrong.write_text(json.dumps({"train": {"gamma": "high"}}))
    return str(bad_json), str(wrong)


# (name, plan_run arguments from (data, run folder, scratch folder), part of the message): each input the old
# `flowergan train` refused before anything was created.
BAD = [
    ("resume and config", lambda d, run, tmp: dict(resume=run, config_file=_files(tmp)[0]), "drop --config"),
    ("resume changes gamma", lambda d, run, tmp: dict(resume=run, train={"gamma": 3.0}), "--gamma 3.0 conflicts"),
    ("resume changes z", lambda d, run, tmp: dict(resume=run, model={"z_dim": 32}), "--z-dim 32 conflicts"),
    ("resume nothing there", lambda d, run, tmp: dict(resume=str(tmp / "nowhere")), "no such folder"),
    ("resume latest, no runs", lambda d, run, tmp: dict(resume="latest", out_dir=str(tmp / "empty")),
     "no run with a checkpoint"),
    ("no data", lambda d, run, tmp: dict(dry_run=False), "--data is required"),
    ("missing data", lambda d, run, tmp: dict(train={"data": str(tmp / "none.zip")}), "none.zip"),
    ("resolution vs data", lambda d, run, tmp: dict(train={"data": d}, model={**MODEL, "resolution": 32}),
     "the dataset is 16x16"),
    ("cond without labels", lambda d, run, tmp: dict(train={"data": d, "cond": True}), "has no labels"),
    ("c_dim without cond", lambda d, run, tmp: dict(train={"data": d}, model={**MODEL, "c_dim": 3}),
     "needs --cond"),
    ("bad value", lambda d, run, tmp: dict(train={"data": d, "gamma": -1.0}), "--gamma"),
    ("bad batch split", lambda d, run, tmp: dict(train={"data": d, "batch": 6, "batch_gpu": 4}), "--batch-gpu"),
    ("unknown preset", lambda d, run, tmp: dict(preset="huge", train={"data": d}), "unknown preset"),
    ("damaged --config", lambda d, run, tmp: dict(config_file=_files(tmp)[0], train={"data": d}), "bad.json"),
    ("wrong --config", lambda d, run, tmp: dict(config_file=_files(tmp)[1], train={"data": d}), "--gamma 'high'"),
    ("missing --finetune", lambda d, run, tmp: dict(train={"data": d, "finetune": str(tmp / "no-model")}),
     "--finetune"),
    ("fp16 on cpu", lambda d, run, tmp: dict(train={"data": d, "device": "cpu", "amp": "fp16"}), "--amp fp16"),
    ("workers", lambda d, run, tmp: dict(train={"data": d, "data_workers": 100_000}), "--data-workers 100,000"),
    ("world", lambda d, run, tmp: dict(train={"data": d, "batch": 4}, world_size=3), "divisible by the number"),
]


@pytest.mark.parametrize("name,args,part", BAD, ids=[b[0] for b in BAD])
def test_the_planner_refuses_bad_input_with_a_config_error_only(name, args, part, data16, run16, tmp_path):
    with pytest.raises(ConfigError) as got:
        _plan(**args(str(data16), str(run16), tmp_path))
    assert part in str(got.value), got.value
    assert "\n" not in str(got.value).strip()


def test_the_planner_refuses_data_that_changed_under_a_run_as_bad_input(run16, tmp_path):
    from flowergan.data.synthetic import prepare_synthetic

    saved = json.loads((run16 / "config.json").read_text())
    other = tmp_path / "other.zip"
    prepare_synthetic(other, count=5, resolution=16, seed=1, progress=False, workers=1)
    doc = {**saved, "train": {**saved["train"], "data": str(other)}}
    (run16 / "config.json").write_text(json.dumps(doc))
    try:
        with pytest.raises(ConfigError, match="now holds 5") as got:
            _plan(resume=str(run16), dry_run=False)
        assert isinstance(got.value, BadInput)  # exit status 2 without the usage line, as before
    finally:
        (run16 / "config.json").write_text(json.dumps(saved))


def test_world_size_from_the_environment_is_a_config_error(monkeypatch):
    for raw, part in (("two", "expected a whole number"), ("0", "must be >= 1")):
        monkeypatch.setenv("WORLD_SIZE", raw)
        with pytest.raises(ConfigError, match=part):
            planning.world_size_from_env()


def _resume_help() -> str:
    from flowergan.cli.train_cmd import train

    (opt,) = [p for p in train.params if p.name == "resume"]
    return opt.help


def test_the_resume_mutable_list_writes_the_help_and_the_refusal(run16):
    flags = [flag_of(name) for name in recipe.RESUME_MUTABLE]
    help_ = _resume_help()
    with pytest.raises(ConfigError) as got:
        _plan(resume=str(run16), train={"gamma": 3.0})
    for text in (help_, str(got.value)):
        listed = text[text.lower().index("only "):]
        assert re.findall(r"--[a-z][a-z-]*", listed)[:len(flags)] == flags, text
        assert f"{flag_of('amp')} between {' and '.join(recipe.RESUME_AMP_SWITCH)}" in listed
    # and what the list names is what resume accepts: each one passes, each other option is refused
    saved = TrainConfig.from_dict(json.loads((run16 / "config.json").read_text())["train"])
    for name in saved.to_dict():
        cur = getattr(saved, name)
        if isinstance(cur, bool):
            other = not cur
        elif isinstance(cur, (int, float)):
            other = cur * 2 + 1
        elif isinstance(cur, tuple):
            other = (*cur, "other")
        else:
            other = f"{cur}-other"
        refused = recipe.resume_conflicts(saved, {name: other})
        assert bool(refused) == (name not in recipe.RESUME_MUTABLE), (name, refused)


def test_the_summary_follows_the_one_key_list():
    r = recipe.resolve(TrainConfig(batch=8, device="cpu", amp="off"), {"resolution": 32}, cuda=False)
    s = r.summary()
    assert tuple(s) == recipe.SUMMARY_KEYS
    assert (s["batch"], s["batch_gpu"], s["rounds"], s["resolution"], s["amp"], s["device"]) == \
        (8, 8, 1, 32, "off", "cpu")
    assert s["gamma"] == pytest.approx(0.0002 * 32**2 / 32) and s["finetune"] is None
    assert s["ema_rampup"] == 0.05 and s["mbstd_group"] == 4 and s["channel_base"] == 16384


def test_a_fine_tune_loads_its_start_weights_once_and_validates_once(data16, run16, tmp_path, monkeypatch):
    counts = _Counts(monkeypatch)
    loads = []
    real = planning.load_start_networks
    monkeypatch.setattr(planning, "load_start_networks", lambda p: loads.append(p) or real(p))
    r = CliRunner().invoke(cli, ["train", "--data", str(data16), "--out", str(tmp_path / "runs"), *SMALL,
                                 "--kimg", "0.004", "--snap", "1", "--aug", "none", "--device", "cpu", "--amp", "off",
                                 "--finetune", str(run16)])
    assert r.exit_code == 0, r.output
    assert loads == [str(run16)] and (counts.plans, counts.validates) == (1, 1)


def test_plan_training_takes_a_preset_name_like_its_model_config():
    by_name = planning.plan_training("tiny", TrainConfig(batch=4), device="cpu")
    direct = recipe.resolve(TrainConfig(batch=4, device="cpu"), preset("tiny"), cuda=False)
    assert by_name.resolved == direct and by_name.start is None and by_name.resume is None
    assert tuple(by_name.record)[:3] == ("model", "train", "request")
