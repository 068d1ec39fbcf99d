"""`bench --what train`: FLOPs, achieved rate and operator calls per phase in the JSON (issue #12)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from flowergan.benchmarking.training import bench_train
from flowergan.cli.main import cli
from flowergan.config import preset
from flowergan.training.recipe import CPU_BF16_ENV

CFG = preset("tiny").replace(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
SMALL_TRAIN_BENCH = ["bench", "--what", "train", "--preset", "tiny", "--resolution", "16", "--channel-base", "256",
                     "--channel-max", "32", "--z-dim", "16", "--w-dim", "16", "--batch", "4", "--repeats", "1",
                     "--warmup", "0"]  # CFG from the command line


def test_bench_train_reports_flops_rate_and_operator_calls():
    r = bench_train(CFG, batch=4, repeats=1, warmup=0, profile=True)
    w = r["phase_weights"]
    assert set(r["phase_ops"]) == set(w) == {"Gmain", "Greg", "Dmain", "Dreg"}
    # amortised exactly as the lazy intervals say
    per_iter = sum(r["phase_tflop"][k] * w[k] for k in w)
    assert r["tflop_per_kimg"] == pytest.approx(per_iter / 4 * 1000)
    assert r["achieved_tflops"] == pytest.approx(per_iter / r["sec_per_batch"])
    assert r["fraction_of_matmul"] == pytest.approx(r["achieved_tflops"] / r["matmul_tflops"])
    assert r["op_calls_per_iter"] == pytest.approx(sum(r["phase_ops"][k]["op_calls"] * w[k] for k in w))
    for k in w:
        assert r["phase_ops"][k]["op_calls"] > 0 and r["phase_ops"][k]["flops"] == pytest.approx(
            r["phase_tflop"][k] * 1e12)
    # the main phases hold the convolutions of both networks: more FLOPs than G's path-length phase
    assert r["phase_tflop"]["Gmain"] > r["phase_tflop"]["Greg"]


@pytest.mark.parametrize("env, amp", [("1", "bf16"), ("0", "off")])
def test_bench_measures_the_training_default_precision(env, amp):
    """No --amp: the step `flowergan train` would run here (auto), resolved by the same resolver."""
    r = CliRunner().invoke(cli, SMALL_TRAIN_BENCH, env={CPU_BF16_ENV: env})
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.splitlines()[-1])["amp"] == amp


@pytest.mark.parametrize("flag, path", [([], False), (["--sync-free"], True)])
def test_bench_sync_free_runs_the_accelerator_path_on_the_cpu(flag, path):
    r = CliRunner().invoke(cli, SMALL_TRAIN_BENCH + flag)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.splitlines()[-1])["sync_free"] is path
