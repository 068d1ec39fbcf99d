"""bench/gpu_report.py turns what bench/gpu.sh brought back into issue #23's table; here on a synthetic $OUT whose
figures are known by construction (each run trains at a fixed, chosen speed)."""

import importlib.util
import json
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("gpu_report", ROOT / "bench" / "gpu_report.py")
gpu_report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_report)

START = 1_800_000_000.25  # the stage's launch (epoch seconds)


def _ours(startup: float, sec_per_kimg: float, kimgs: list[float], peaks: list[float], target=None) -> str:
    """A log.jsonl as `flowergan train --log-every 1` writes it: a config line, then a line per tick."""
    lines = [json.dumps({"config": {"train": {"kimg": kimgs[-1] if target is None else target}}})]
    for i, (k, p) in enumerate(zip(kimgs, peaks)):
        rec = {"kimg": k, "batch_idx": int(k * 1000 / 32), "Timing/sec_per_kimg": sec_per_kimg,
               "Timing/unix_time": START + startup + k * sec_per_kimg, "Resources/peak_gpu_mem_gb": p}
        if i == 0:
            rec.update({"Timing/first_call_sec/Gmain": 9.5, "Timing/first_call_sec/Dreg": 20.25})
        lines.append(json.dumps(rec))
    return "\n".join(lines) + "\n"


def _official(startup: float, secs: list[float], peaks: list[float]) -> str:
    """The official run's stamped log: tick 0 after start-up (its first batch), then a tick per 4 kimg."""
    lines = ["[10:00:01 +0.5s] official| Setting up PyTorch plugin \"bias_act_plugin\"... Done.",
             "[10:00:21 +20.5s] official| Setting up PyTorch plugin \"upfirdn2d_plugin\"... Done.",
             f"[10:00:31 +{startup:.1f}s] official| tick 0     kimg 0.0      time 31s          sec/tick 2.1     "
             f"sec/kimg 65.6   maintenance 29.0   cpumem 3.20   gpumem {peaks[0]:.2f}   augment 0.000"]
    t = startup
    for i, (s, p) in enumerate(zip(secs, peaks[1:]), start=1):
        t += 4 * s
        lines.append(f"[10:01:00 +{t:.1f}s] official| tick {i}     kimg {4.0 * i:.1f}      time 1m 00s       "
                     f"sec/tick {4 * s:.1f}    sec/kimg {s:.2f}    maintenance 0.1    cpumem 3.45   gpumem {p:.2f}   "
                     f"augment 0.00{i}")
    return "\n".join(lines) + "\n"


def _out(tmp_path, packed=True):
    out = tmp_path / "out"
    stages = tmp_path / "w" / "stages"
    stages.mkdir(parents=True)
    out.mkdir()
    (stages / "env.txt").write_text("name, memory.total [MiB], driver_version\nNVIDIA H200, 143771 MiB, 570.1\n"
                                    "torch 2.11.0+cu130 cuda 13.0\n")
    # ours: 40 s to the first tick, then 4 s/kimg; kimg 1.024, 2.016, ... as batch 32 ticks land
    kimgs = [1.024, 2.016, 3.008, 4.0, 5.024, 6.016, 7.008, 8.0, 9.024]
    (stages / "train-auto128.log.jsonl").write_text(_ours(40.0, 4.0, kimgs, [7.5] + [3.0] * 8))
    (stages / "official.log").write_text(_official(31.0, [5.5, 6.0, 6.5], [35.08, 6.28, 6.30, 6.25]))
    (stages / "tiny-imgs.out").write_text(json.dumps({"what": "train", "img_per_s": 1234.5, "batch": 16,
                                                       "amp": "fp16"}) + "\n")
    (stages / "cap12.log.jsonl").write_text(_ours(30.0, 5.0, [1.024], [9.0], target=1))
    summary = [{"stage": "prepare-data", "rc": 0, "start": START - 20, "seconds": 12.1, "limit": 60},
               {"stage": "train-auto128", "rc": 0, "start": START, "seconds": 150.2, "limit": 190},
               {"stage": "official", "rc": 0, "start": START + 200, "seconds": 160.0, "limit": 170},
               {"stage": "cap12", "rc": 0, "start": START, "seconds": 40.0, "limit": 110},
               {"stage": "train-lite128", "skipped": True, "why": "no time left"}]
    (out / "summary.jsonl").write_text("".join(json.dumps(r) + "\n" for r in summary))
    if packed:
        with tarfile.open(out / "stages.tar.gz", "w:gz") as tar:
            tar.add(stages, arcname="stages")
    else:
        stages.rename(out / "stages")
    return out


@pytest.mark.parametrize("packed", [True, False])
def test_the_table_from_a_synthetic_out(tmp_path, packed):
    res = gpu_report.collect(_out(tmp_path, packed))
    assert res["card"] == "NVIDIA H200"
    us, off = res["runs"]["train-auto128"], res["runs"]["official"]
    # ours: launch to 4 kimg = 40 + 4 * 4; each later window at exactly 4 s/kimg
    assert us["launch_to_4kimg_s"] == pytest.approx(56.0)
    assert us["windows"]["0-4"] == pytest.approx(56.0 / 4)
    assert us["windows"]["4-8"] == pytest.approx(4.0)
    assert us["windows"]["8-12"] is None and us["kimg_reached"] == pytest.approx(9.024)
    assert us["peak_first_tick_gb"] == 7.5 and us["peak_after_first_tick_gb"] == 3.0
    assert us["first_call_sec"] == {"Gmain": 9.5, "Dreg": 20.25}
    # official: tick 1 at 31 + 22 s; windows from its stamped ticks
    assert off["launch_to_4kimg_s"] == pytest.approx(53.0)
    assert off["windows"]["4-8"] == pytest.approx(6.0) and off["windows"]["8-12"] == pytest.approx(6.5)
    assert off["peak_first_tick_gb"] == 35.08 and off["peak_after_first_tick_gb"] == 6.30
    md = gpu_report.markdown(res)
    assert "Card: NVIDIA H200 (torch 2.11.0+cu130 cuda 13.0)" in md
    assert "| s/kimg, 4-8 kimg | 6.00 | 4.00 | 1.50x |" in md  # official / ours: above 1, we are faster
    assert "| s/kimg, 8-12 kimg | 6.50 | not reached | - |" in md
    assert "| launch to 4 kimg, s (the bar: <= 60) | 53.0 | 56.0 | 0.95x |" in md
    assert us["steady_sec_per_kimg"] == 4.0 and off["steady_sec_per_kimg"] == 6.25  # ticks past 4 kimg: 6.0, 6.5
    assert "| s/kimg after 4 kimg, median of the ticks (the bar: <= 2.8) | 6.25 | 4.00 | 1.56x |" in md
    assert "| per-tick peak GPU memory, GB: largest after | 6.30 | 3.00 | |" in md
    assert "12 GiB cap (`--cuda-memory-gb 12`, 1 kimg): completed (exit 0, 40.0 s)." in md
    assert off["plugins_s"] == 20.5 and "the last was ready 20.5 s after launch" in md
    assert "1234 img/s" in md and "Gmain 9.5, Dreg 20.2" in md
    assert "| train-lite128 | skipped: no time left | - | - |" in md


def test_a_cap_run_that_did_not_reach_1_kimg_fails(tmp_path):
    out = _out(tmp_path, packed=False)
    log = out / "stages" / "cap12.log.jsonl"
    log.write_text(_ours(30.0, 5.0, [0.512], [11.9], target=1))  # stopped (out of memory) before 1 kimg
    assert "completed" not in gpu_report.markdown(gpu_report.collect(out))
    assert "FAILED" in gpu_report.markdown(gpu_report.collect(out))


def test_cli_refuses_a_folder_without_a_summary(tmp_path, capsys):
    assert gpu_report.main([str(tmp_path)]) == 2
    assert "summary.jsonl not found" in capsys.readouterr().err
    out = _out(tmp_path)
    assert gpu_report.main([str(out)]) == 0
    assert capsys.readouterr().out.startswith("Card: NVIDIA H200")
