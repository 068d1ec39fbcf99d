"""kill -9 of a real `flowergan train`, during steps and during saves, resumed each time: the final G, G_ema, D
and optimiser state equal an uninterrupted run's bit for bit; the log has every kimg once with the same losses;
every kept checkpoint has its grid, and the grids are the uninterrupted run's."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

SMALL = ["--preset", "tiny", "--channel-base", "256", "--channel-max", "32", "--z-dim", "16", "--w-dim", "16",
         "--batch", "4", "--no-progress", "--kimg", "0.064", "--snap", "0.008", "--keep", "3"]
FINAL = "snapshot-0000000064"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _cmd(data: Path | None, out: Path, resume: bool) -> list[str]:
    base = [sys.executable, "-m", "flowergan", "train", "--out", str(out)]
    return base + (["--resume", "latest", "--no-progress"] if resume else ["--data", str(data), *SMALL])


def _checkpoints(run: Path | None) -> list[str]:
    d = run / "checkpoints" if run else None
    return sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")) if d and d.is_dir() else []


def _temp_files(run: Path) -> list[Path]:
    """Hidden temp files or folders of a save in progress (checkpoint, grid, log, plot, latest.json)."""
    out = []
    for d in (run, run / "samples", run / "checkpoints"):
        if d.is_dir():
            out += [p for p in d.iterdir() if p.name.startswith(".") and ".tmp" in p.name]
    return out


def _log(run: Path) -> list[dict]:
    """log.jsonl's kimg records (a line cut by the kill is left out here; resume drops it from the file).
    The config line heads the log once: checked here, then left out."""
    out = []
    for line in (run / "log.jsonl").read_text().splitlines() if (run / "log.jsonl").is_file() else []:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    configs = [i for i, r in enumerate(out) if "config" in r]
    assert configs in ([], [0]), f"{run}: the config line must head log.jsonl once, found at lines {configs}"
    return [r for r in out if "kimg" in r]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from flowergan.data.synthetic import prepare_synthetic

    out = tmp_path_factory.mktemp("killdata") / "flowers16.zip"
    prepare_synthetic(out, count=200, resolution=16, seed=0, progress=False, workers=1)
    return out


@pytest.mark.slow
def test_kill9_during_steps_and_saves_then_resume_equals_an_uninterrupted_run(tmp_path, data):
    ref_out, out = tmp_path / "ref", tmp_path / "killed"
    subprocess.run(_cmd(data, ref_out, False), check=True, env=ENV, capture_output=True, timeout=600)
    (ref,) = ref_out.iterdir()

    rnd = random.Random(0)
    kills: list[tuple[str, str]] = []   # (mode, what the kill interrupted)
    run: Path | None = None
    ahead = 0  # kills that left log lines past the newest checkpoint (what resume must drop)
    for mode in ("step", "save", "step", "save", "save", "step"):
        proc = subprocess.Popen(_cmd(data, out, run is not None), env=ENV, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        start = _checkpoints(run)
        stale = set(_temp_files(run)) if run else set()  # left by the previous kill: not a save in progress
        deadline = time.time() + 300
        hit = None
        while time.time() < deadline and proc.poll() is None:
            run = run or next(iter(out.iterdir()), None) if out.is_dir() else None
            if run is None:
                time.sleep(0.01)
                continue
            if mode == "save" and start and set(_temp_files(run)) - stale:
                hit = "save"
                break
            if mode == "step" and len(_checkpoints(run)) > len(start):
                time.sleep(rnd.uniform(0.0, 0.3))
                hit = "step"
                break
            time.sleep(0.002)
        if proc.poll() is not None:  # finished before the kill: nothing more to interrupt
            assert proc.returncode == 0, proc.stderr.read().decode()[-3000:]
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        was_saving = bool(set(_temp_files(run)) - stale)
        kills.append((mode, "save" if was_saving else hit or "?"))
        newest = max((int(c.split("-")[1]) for c in _checkpoints(run)), default=0) / 1000
        ahead += any(r["kimg"] > newest for r in _log(run) if "kimg" in r)
    assert len(kills) >= 4, kills
    assert any(what == "save" for _, what in kills), f"no kill landed inside a save: {kills}"
    assert ahead, "no kill left log lines past its last checkpoint, so the log check below would prove nothing"

    if FINAL not in _checkpoints(run) or not json.loads((run / "latest.json").read_text()).get("done"):
        res = subprocess.run(_cmd(data, out, True), env=ENV, capture_output=True, timeout=600)
        assert res.returncode == 0, res.stderr.decode()[-3000:]
    assert len(list(out.iterdir())) == 1, "every resume continued the same run folder"

    # Weights and optimiser state: bit for bit.
    for name in ("weights.safetensors", "train_state.safetensors"):
        a = load_file(str(ref / "checkpoints" / FINAL / name))
        b = load_file(str(run / "checkpoints" / FINAL / name))
        assert a.keys() == b.keys()
        diff = [k for k in a if not torch.equal(a[k], b[k])]
        assert not diff, f"{name}: {len(diff)} tensors differ, e.g. {diff[:3]} (kills: {kills})"
    nets = {k.split(".", 1)[0] for k in load_file(str(run / "checkpoints" / FINAL / "weights.safetensors"))}
    assert {"G", "G_ema", "D"} <= nets

    # The log: each kimg once, in order, with the uninterrupted run's losses.
    ref_log, log = _log(ref), _log(run)
    assert [r["kimg"] for r in log] == [r["kimg"] for r in ref_log]
    for r0, r1 in zip(ref_log, log):
        assert {k: v for k, v in r0.items() if not k.startswith("Timing/")} == \
               {k: v for k, v in r1.items() if not k.startswith("Timing/")}

    # Checkpoints kept and their grids.
    assert _checkpoints(run) == _checkpoints(ref)
    grids = sorted(p.name for p in (run / "samples").iterdir())
    assert grids == sorted(p.name for p in (ref / "samples").iterdir())
    for c in _checkpoints(run):
        kimg = int(c.split("-")[1]) / 1000
        assert f"fakes-{kimg:010.3f}kimg.png" in grids, f"{c} has no grid"
    for g in grids:
        assert (run / "samples" / g).read_bytes() == (ref / "samples" / g).read_bytes(), g
    assert not list((run / "checkpoints").glob(".*")), "temp folders of killed saves are cleaned up"


def test_rewind_drops_log_lines_grids_and_temp_files_past_the_checkpoint(tmp_path):
    """What a killed process leaves after its last checkpoint (at 0.016 kimg) is removed; the rest is kept."""
    from flowergan.training.progress import rewind_run

    lines = [{"kimg": 0.004}, {"kimg": 0.008}, {"kimg": 0.016, "Metrics/fid": 3.0}, {"kimg": 0.016},
             {"kimg": 0.02}, {"kimg": 0.024}]
    text = "".join(json.dumps(r) + "\n" for r in lines) + '{"kimg": 0.028, "Loss/G'  # cut by the kill
    (tmp_path / "log.jsonl").write_text(text)
    (tmp_path / "samples").mkdir()
    for k in (0.008, 0.016, 0.024):
        (tmp_path / "samples" / f"fakes-{k:010.3f}kimg.png").write_bytes(b"png")
    (tmp_path / "samples" / ".fakes-000000.032kimg.png.tmp").write_bytes(b"half")
    (tmp_path / ".progress.png.tmp.png").write_bytes(b"half")
    removed = rewind_run(tmp_path, 0.016)
    assert removed == {"log_lines": 3, "grids": 1}
    assert _log(tmp_path) == lines[:4]
    assert (tmp_path / "log.jsonl").read_text().endswith("}\n")
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["fakes-000000.008kimg.png",
                                                                       "fakes-000000.016kimg.png"]
    assert not (tmp_path / ".progress.png.tmp.png").exists()
    assert rewind_run(tmp_path, 0.016) == {"log_lines": 0, "grids": 0}  # idempotent
