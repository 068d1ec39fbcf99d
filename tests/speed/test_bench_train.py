"""`bench --what train`: FLOPs, achieved rate and operator calls per phase in the JSON (issue #12)."""

from __future__ import annotations

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
