"""A checkpoint written by the code at commit 66debc1 (ADA's p stored four times) resumes with today's code and
reaches the same weights and ADA state the old code reached (tests/fixtures/resume_66debc1/README.md).

Bit-exact on a CPU of the kind that made the fixture (AVX512 kernels). CPU kernels may round differently on
another instruction set (AVX2, ARM), so there the weights are compared within 1e-6 relative: four training
steps do not amplify a last-bit difference beyond that, and a changed update (another p, a lost ADA
accumulator, another RNG position) moves them by far more."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from flowergan.cli.main import cli

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "resume_66debc1"
RUN = "00000-tiny-flowers16-b4"
SAME_KERNELS = torch.backends.cpu.get_cpu_capability() == "AVX512"


def _point_data_at(run: Path, data: Path) -> None:
    for cfg in [run / "config.json", *run.glob("checkpoints/*/config.json")]:
        doc = json.loads(cfg.read_text())
        doc["train"]["data"] = str(data)
        if "request" in doc:
            doc["request"]["train"]["data"] = str(data)
        cfg.write_text(json.dumps(doc, indent=2))


@pytest.fixture(scope="module")
def resumed(tmp_path_factory) -> Path:
    tmp_path = tmp_path_factory.mktemp("old66debc1")
    data = tmp_path / "flowers16.zip"
    shutil.copy(FIXTURE / "flowers16.zip", data)
    run = tmp_path / "runs" / RUN
    shutil.copytree(FIXTURE / "run", run)
    _point_data_at(run, data)
    res = CliRunner().invoke(cli, ["train", "--resume", str(run), "--no-progress"])
    assert res.exit_code == 0, res.output
    return run / "checkpoints" / "snapshot-0000000032"


def test_old_checkpoint_resumes_to_the_old_codes_weights(resumed):
    got = load_file(resumed / "weights.safetensors")
    want = load_file(FIXTURE / "expected" / "weights.safetensors")
    nets = [k for k in want if k.split(".")[0] in ("G", "G_ema", "D")]
    assert len(nets) > 50 and {k.split(".")[0] for k in nets} == {"G", "G_ema", "D"}
    for k in nets:
        if SAME_KERNELS:
            assert torch.equal(got[k], want[k]), k
        else:
            torch.testing.assert_close(got[k], want[k], rtol=1e-6, atol=1e-7, msg=k)


def test_old_checkpoint_resumes_to_the_old_codes_ada_state(resumed):
    want = json.loads((FIXTURE / "expected" / "train_state.json").read_text())["ada"]
    got = json.loads((resumed / "train_state.json").read_text())["ada"]
    # p moved 0.11 -> 0.17 at the step after the resume, in float64 from the restored float64 value; that step
    # used the signs accumulated before the checkpoint (pending 1 of 3 iterations).
    assert want["p"] == 0.16999999999999998
    assert got["p"] == want["p"]
    assert (got["sign_sum"], got["count"], got["pending"], got["last_rt"]) == \
        (want["sign_sum"], want["count"], want["pending"], want["last_rt"])
