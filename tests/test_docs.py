"""The docs cannot drift: every ```bash command of README.md's quick tour and model sizes and of the user docs runs,
as written, in one temporary folder, in the docs' order (each doc may use what an earlier one made, as a reader
would); a parameter count a command's comment quotes (`# G_params N`) must be what it prints.

Only sizes are made tiny, through SIZES below (e.g. `--kimg 20` -> `--kimg 0.1`); a command is skipped only when it
is listed in SKIPS with the reason. `flowergan` and `python` are this checkout and this interpreter (`flowergan`
lines run in-process, through the same click entry point). Slow (a few minutes on 2 cores): run with
FLOWERGAN_SLOW=1 or -m slow, as CI does.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# (file, the heading whose ```bash blocks are run, or None for every block of the file), in reading order.
# docs/training.md comes last: it makes its own runs (runs/first, runs/logged) and 128-px dataset, and fine-tunes on
# data it makes; only its GPU/torchrun, Oxford download, TensorBoard server and official-pickle lines are skipped.
# Not covered: README.md's two setup commands (the demo and this suite), its import block (an official pickle),
# docs/robustness.md (probe scripts against an old commit) and docs/BENCHMARKS.md (benchmarks: long runs by design).
DOCS = [
    ("README.md", "## Quick tour"),
    ("README.md", "## Models and sizes"),
    ("docs/data.md", None),
    ("docs/use.md", None),
    ("docs/metrics.md", None),
    ("docs/training.md", None),
]

# Sizes made tiny: (command it applies to or None for any, option pattern, replacement). Nothing else changes.
SIZES = [
    (None, r"--count \d+", "--count 32"),          # dataset images
    # the 512-channel model of use.md's rosinality example: one step of 4 images (at its default batch of 32, an fp32
    # step with R1 and path length takes ~30 s on 2 cores)
    ("train", r"--channel-max 512 --kimg [\d.]+", "--channel-max 512 --kimg 0.004 --batch 4"),
    ("train", r"--kimg 40\b", "--kimg 0.2"),        # training.md's resume that extends its 20-kimg run: still twice
    ("train", r"--kimg (?!0\.)[\d.]+", "--kimg 0.1"),  # training length (a fraction below 1 is already tiny)
    ("train", r"--metrics-num \d+", "--metrics-num 16"),   # generated images of a metric during training
    (None, r"--seeds 0-(?:[89]|\d\d+)\b", "--seeds 0-7"),   # many seeds -> 8 (seed 7 stays: the tour projects it)
    (None, r"--steps \d+", "--steps 4"),           # projection steps
    (None, r"--frames \d+", "--frames 3"),         # video frames per transition
    ("metrics", r"--num \d+", "--num 16"),         # generated images of a metric
    ("fid", r"--num \d+", "--num 16"),
    ("directions", r"--samples \d+", "--samples 500"),
]

# Commands not run, each with its reason (matched as a prefix of the command, after joining continued lines).
SKIPS = {
    "source .venv/bin/activate": "the test runs this checkout's flowergan and interpreter directly",
    "pip install": "needs the internet; the test environment has every extra installed",
    "flowergan serve": "a server that runs until Ctrl-C (tests/web covers it)",
    "flowergan prepare oxford102": "downloads Oxford 102 (~330 MB)",
    "flowergan prepare ~/Pictures/garden": "your own photo folder",
    "flowergan project --network runs/tour --target out/gen/seed0007.png --space w+ --vgg16 download":
        "downloads NVIDIA's vgg16.pt",
    "python bench/export.py": "a benchmark (minutes); its figures are quoted, not checked",
    "PYTHONPATH=. .venv/bin/python bench/docs_figures.py": "rewrites this repository's docs/images from the "
                                                           "repository root (tests/test_bench_scripts.py runs it "
                                                           "into a temporary folder)",
    "flowergan bench": "a benchmark",
    "tensorboard --logdir": "the TensorBoard server runs until Ctrl-C (the event files are checked in "
                            "tests/ecosystem/test_eco_loggers.py)",
    "flowergan train --data data/my-flowers-1024.zip --finetune network-snapshot-025000.pkl":
        "an official StyleGAN2-ADA pickle (NVIDIA's download; tests/training/test_cli_train.py fine-tunes from a "
        "small one)",
    "torchrun": "several processes or machines (tests/training/test_distributed.py runs gloo on the CPU)",
    "flowergan train --data data/oxford-128.zip": "trains on the Oxford download (GPU-sized runs)",
}


def _commands(text: str, heading: str | None) -> list[tuple[int, str]]:
    """(line number, command) of every ```bash block (under `heading` only, when given), continued lines joined,
    comment and blank lines dropped."""
    lines = text.splitlines()
    out, in_block, section_ok, pending, start = [], False, heading is None, "", 0
    for no, line in enumerate(lines, 1):
        if line.startswith("#") and not in_block:
            section_ok = heading is None or line.strip() == heading
            continue
        if line.startswith("```"):
            in_block = line.strip() == "```bash" and not in_block and section_ok
            continue
        if not in_block:
            continue
        if not pending:
            start = no
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        cmd = (pending + line).strip()
        pending = ""
        if cmd and not cmd.startswith("#"):
            out.append((start, re.sub(r"\s+", " ", cmd)))
    return out


def _program(cmd: str) -> str:
    words = shlex.split(cmd, comments=True)
    while words and re.match(r"^\w+=", words[0]):  # VAR=value before the command
        words = words[1:]
    return words[1] if words and words[0] == "flowergan" and len(words) > 1 else (words[0] if words else "")


def tiny(cmd: str) -> str:
    """`cmd` with the sizes of SIZES replaced."""
    prog = _program(cmd)
    for only, pattern, repl in SIZES:
        if only is None or only == prog:
            cmd = re.sub(pattern, repl, cmd)
    return cmd


def skip_reason(cmd: str) -> str | None:
    return next((why for prefix, why in SKIPS.items() if cmd.startswith(prefix)), None)


def _shims(folder: Path) -> dict[str, str]:
    """A bin folder first on the PATH: `flowergan` and `python` are this checkout and this interpreter."""
    folder.mkdir()
    for name, target in (("flowergan", f'exec "{sys.executable}" -m flowergan "$@"'),
                         ("python", f'exec "{sys.executable}" "$@"')):
        (folder / name).write_text(f"#!/bin/sh\n{target}\n")
        (folder / name).chmod(0o755)
    env = dict(os.environ, PATH=f"{folder}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONPATH=str(ROOT),
               FLOWERGAN_CACHE=str(folder.parent / "cache"), OMP_NUM_THREADS="2", HF_HUB_OFFLINE="1")
    for var in ("FLOWERGAN_DEBUG", "FLOWERGAN_VGG16", "FLOWERGAN_TRUSTED_SHA256"):
        env.pop(var, None)
    return env


def test_commands_are_found_and_rewritten():
    """The extraction and the size table, on a sample."""
    text = "# A\n```bash\nflowergan x --kimg 20 \\\n    --seeds 0-63   # note\n```\n## Quick tour\n```bash\n" \
           "# a comment\nflowergan train --kimg 20 --count 2000\n```\n```python\nnot bash\n```\n"
    assert _commands(text, None) == [(3, "flowergan x --kimg 20 --seeds 0-63 # note"),
                                     (9, "flowergan train --kimg 20 --count 2000")]
    assert _commands(text, "## Quick tour") == [(9, "flowergan train --kimg 20 --count 2000")]
    assert tiny("flowergan train --data d.zip --kimg 20 --seeds 0-63") == \
        "flowergan train --data d.zip --kimg 0.1 --seeds 0-7"
    assert tiny("flowergan train --preset tiny --channel-max 512 --kimg 20") == \
        "flowergan train --preset tiny --channel-max 512 --kimg 0.004 --batch 4"
    assert tiny("flowergan train --kimg 0.5") == "flowergan train --kimg 0.5"
    assert tiny("flowergan x --kimg 20 --seeds 0-3 --count 2000") == "flowergan x --kimg 20 --seeds 0-3 --count 32"
    assert skip_reason("pip install -e '.[export]'") and skip_reason("flowergan train --kimg 1") is None


def test_every_doc_has_commands_and_skips_are_few():
    found = {(f, h): _commands((ROOT / f).read_text(), h) for f, h in DOCS}
    assert all(found.values()), found
    every = [c for cmds in found.values() for _, c in cmds]
    skipped = [c for c in every if skip_reason(c)]
    assert len(skipped) <= len(every) // 4, skipped
    for prefix in SKIPS:  # a skip that no longer matches anything is stale
        assert any(c.startswith(prefix) for c in every) or prefix == "flowergan bench", prefix


def _run(cmd: str, work: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run one command in `work`: a `flowergan ...` line in this process (as the console script would run it,
    without paying Python's and torch's start-up ~35 times), anything else with bash."""
    words = shlex.split(cmd, comments=True)
    assign = {}
    while words and re.match(r"^\w+=", words[0]):
        k, _, v = words.pop(0).partition("=")
        assign[k] = v
    if words and words[0] == "flowergan" and not any(w in ("|", ">", "&&", ";") for w in words):
        from click.testing import CliRunner

        from flowergan.cli.main import cli

        old = os.getcwd()
        os.chdir(work)
        try:
            res = CliRunner().invoke(cli, words[1:], env=assign, prog_name="flowergan")
        finally:
            os.chdir(old)
        out = res.output
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            import traceback

            out += "".join(traceback.format_exception(res.exception))
        return res.exit_code, out
    p = subprocess.run(["bash", "-c", cmd], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    return p.returncode, p.stdout + p.stderr


@pytest.mark.slow
def test_the_docs_run_as_written(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    env = _shims(tmp_path / "bin")
    for k in ("FLOWERGAN_CACHE", "OMP_NUM_THREADS", "HF_HUB_OFFLINE"):
        monkeypatch.setenv(k, env[k])
    for k in ("FLOWERGAN_DEBUG", "FLOWERGAN_VGG16", "FLOWERGAN_TRUSTED_SHA256"):
        monkeypatch.delenv(k, raising=False)
    ran, skipped = [], []
    for doc, heading in DOCS:
        for no, cmd in _commands((ROOT / doc).read_text(), heading):
            why = skip_reason(cmd)
            if why:
                skipped.append(f"{doc}:{no}: {cmd[:60]} ({why})")
                continue
            run = tiny(cmd)
            t0 = time.perf_counter()
            rc, out = _run(run, work, env)
            tail = out[-3000:]
            assert rc == 0, f"{doc}:{no}: `{run}` exited {rc}:\n{tail}"
            assert "Traceback" not in tail, f"{doc}:{no}: `{run}` printed a traceback:\n{tail}"
            for count in re.findall(r"# .*\bG_params (\d+)", cmd):  # a parameter count the doc quotes
                assert f'"G_params": {count}' in out, f"{doc}:{no}: `{run}` does not print G_params {count}"
            ran.append((time.perf_counter() - t0, f"{doc}:{no}: {run[:70]}"))
    slowest = "\n".join(f"{t:6.1f} s  {c}" for t, c in sorted(ran, reverse=True)[:8])
    files = dict.fromkeys(f for f, _ in DOCS)
    per_doc = ", ".join(f"{d} {sum(t for t, c in ran if c.startswith(d + ':')):.0f} s" for d in files)
    print(f"ran {len(ran)} commands in {sum(t for t, _ in ran):.0f} s ({per_doc}); slowest:\n{slowest}\nskipped:\n"
          + "\n".join(skipped))
    assert len(ran) >= 25
