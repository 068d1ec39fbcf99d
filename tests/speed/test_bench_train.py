"""`bench --what train`: FLOPs, achieved rate and operator calls per phase in the JSON (issue #12)."""

from __future__ import annotations

import json

import pytest

from flowergan.benchmarks.training import bench_train
from flowergan.config import preset

CFG = preset("tiny").replace(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)


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
    from click.testing import CliRunner

    from flowergan.cli.main import cli
    from flowergan.training.recipe import CPU_BF16_ENV

    r = CliRunner().invoke(cli, ["bench", "--what", "train", "--preset", "tiny", "--resolution", "16",
                                 "--channel-base", "256", "--channel-max", "32", "--z-dim", "16", "--w-dim", "16",
                                 "--batch", "4", "--repeats", "1", "--warmup", "0"], env={CPU_BF16_ENV: env})
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.splitlines()[-1])["amp"] == amp
