"""The start-up breakdown of issue #23: `flowergan train` records each phase's first-call seconds once, and every
log line carries the wall clock (launch-to-N-kimg from outside); the CUDA memory cap is parsed and validated."""

import json
import logging
import time

import pytest
import torch
from click.testing import CliRunner

from flowergan.benchmarking.training import RandomImages, _CyclicSampler
from flowergan.cli.main import cli
from flowergan.config import ConfigError, preset
from flowergan.training.config import TrainConfig
from flowergan.training.loop import Trainer, cap_cuda_memory, train
from flowergan.training.plan import plan_training

CFG = preset("tiny").replace(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
PHASES = ("Gmain", "Greg", "Dmain", "Dreg")


def _run(tmp_path, **kw):
    tcfg = TrainConfig(**{**dict(batch=4, kimg=0.016, snap=1, log_every=0.004, r1_interval=2, pl_interval=2,
                               aug="ada", ada_interval=1, p=0.1, seed=3), **kw})
    data = RandomImages(CFG, n=24, seed=1)
    t = Trainer(plan_training(CFG, tcfg, device="cpu"), tmp_path, data, device=torch.device("cpu"),
                sampler_cls=_CyclicSampler)
    return t


def test_first_call_seconds_are_logged_once_per_phase(tmp_path, caplog):
    t = _run(tmp_path)
    before = time.time()
    with caplog.at_level(logging.INFO, logger="flowergan.training.loop"):
        train(t, progress=False)
    after = time.time()
    recs = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    recs = [r for r in recs if "batch_idx" in r]
    assert len(recs) == 4  # 16 images, a line every 4
    first = {k.rsplit("/", 1)[1]: v for k, v in recs[0].items() if k.startswith("Timing/first_call_sec/")}
    assert set(first) == set(PHASES)  # batch 0: every phase is due, each timed on its first call
    assert all(0 < v < after - before for v in first.values())
    assert first == pytest.approx(t.first_call_sec)
    assert not any(k.startswith("Timing/first_call_sec/") for r in recs[1:] for k in r)  # once only
    stamps = [r["Timing/unix_time"] for r in recs]
    assert before <= stamps[0] and stamps == sorted(stamps) and stamps[-1] <= after
    lines = [m for m in caplog.messages if m.startswith("first ")]
    assert [m.split()[1] for m in lines] == list(PHASES)  # one console line each, in phase order
    assert all(m.endswith(" s") for m in lines)


def test_a_later_first_call_is_logged_at_its_own_tick(tmp_path):
    t = _run(tmp_path)
    t.step(phases=["Gmain", "Dmain"])  # batch 0 without the regularisers: they first run at batch 2
    assert set(t.first_call_sec) == {"Gmain", "Dmain"}
    train(t, progress=False)
    recs = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines() if "batch_idx" in line]
    where = {k.rsplit("/", 1)[1]: r["batch_idx"] for r in recs for k in r if k.startswith("Timing/first_call_sec/")}
    assert where == {"Gmain": 2, "Dmain": 2, "Greg": 3, "Dreg": 3}  # each once, at the tick after its first call


def test_cuda_memory_cap_validation_and_cpu_note(caplog):
    TrainConfig(cuda_memory_gb=12).validate()
    TrainConfig(cuda_memory_gb=0).validate()
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="--cuda-memory-gb"):
            TrainConfig(cuda_memory_gb=bad).validate()
    with caplog.at_level(logging.INFO, logger="flowergan.training.loop"):
        assert cap_cuda_memory(12, torch.device("cpu")) is None
        assert cap_cuda_memory(0, torch.device("cpu")) is None
    notes = [m for m in caplog.messages if "cuda-memory-gb" in m]
    assert notes == ["--cuda-memory-gb 12: no effect on cpu (CUDA only)"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_memory_cap_sets_the_fraction():  # pragma: no cover - GPU machines only
    dev = torch.device("cuda")
    total = torch.cuda.get_device_properties(dev).total_memory
    try:
        assert cap_cuda_memory(1, dev) == pytest.approx(2**30 / total)
        with pytest.raises(torch.cuda.OutOfMemoryError):
            torch.empty(2 * 2**30, dtype=torch.uint8, device=dev)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, dev)


def test_cli_refuses_a_negative_memory_cap(tmp_path):
    r = CliRunner().invoke(cli, ["train", "--data", str(tmp_path / "none.zip"), "--out", str(tmp_path / "runs"),
                                 "--cuda-memory-gb", "-2"])
    assert r.exit_code == 2, r.output
    assert "--cuda-memory-gb -2" in r.output and "must be >= 0" in r.output
    assert not (tmp_path / "runs").exists()
    r = CliRunner().invoke(cli, ["train", "--cuda-memory-gb", "twelve"])
    assert r.exit_code == 2 and "--cuda-memory-gb" in r.output
