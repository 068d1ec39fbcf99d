"""--network: a folder of runs means its newest run, every command says which checkpoint it loaded, and a
missing path is refused with the networks that do exist (the quick tour's first stumble, issue #26)."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner
from PIL import Image
from testkit import make_tiny

from flowergan.cli.main import cli
from flowergan.networks.store import write_model_dir


def _run_folder(root, name: str, seed: int):
    """A run folder holding one checkpoint of a tiny generator with weights from `seed`."""
    cfg, G, D = make_tiny(seed=seed)
    ckpt = root / name / "checkpoints" / "snapshot-0000000004"
    write_model_dir(ckpt, cfg, {"G": G, "G_ema": G, "D": D})
    return ckpt


def test_a_folder_of_runs_gives_its_newest_run_and_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _run_folder(tmp_path / "runs", "00000-tiny-a", seed=1)
    newest = _run_folder(tmp_path / "runs", "00001-tiny-b", seed=2)
    res = CliRunner().invoke(cli, ["generate", "--network", "runs", "--seeds", "3", "--outdir", "out",
                                   "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert f"network: {newest.relative_to(tmp_path)}" in res.output
    import flowergan

    want = flowergan.load(newest).generate([3])[0]
    older = flowergan.load("runs/00000-tiny-a").generate([3])[0]
    got = np.asarray(Image.open("out/seed0003.png"))
    assert np.array_equal(got, want) and not np.array_equal(got, older)


def test_a_missing_network_lists_the_runs_that_exist(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _run_folder(tmp_path / "runs", "00001-tiny-flowers-32-b16", seed=1)
    _run_folder(tmp_path / "runs" / "tour", "00000-tiny-flowers-32-b16", seed=1)
    cfg, G, D = make_tiny()
    write_model_dir(tmp_path / "models" / "flowers", cfg, {"G": G, "G_ema": G, "D": D})
    for cmd in (["generate", "--seeds", "0", "--outdir", "out"], ["mix", "--rows", "1", "--cols", "2", "--out",
                                                                   "m.png"], ["export", "--format", "onnx",
                                                                              "--out", "x.onnx"]):
        res = CliRunner().invoke(cli, [*cmd, "--network", "runs/00000-tiny-flowers-32-b16"])
        assert res.exit_code == 2, res.output
        msg = res.output.strip().splitlines()[-1]
        assert "runs/00000-tiny-flowers-32-b16: does not exist" in msg
        for there in ("runs/00001-tiny-flowers-32-b16", "runs/tour", "models/flowers", "`--network runs`"):
            assert there in msg, msg
    assert not (tmp_path / "out").exists()


def test_nothing_to_list_says_how_to_get_a_network(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["generate", "--network", "runs/x", "--seeds", "0", "--outdir", "out"])
    assert res.exit_code == 2 and "flowergan train" in res.output, res.output


def test_every_loading_command_names_the_checkpoint(tiny_dir, tmp_path):
    for cmd in (["info"], ["mix", "--rows", "1", "--cols", "2", "--out", str(tmp_path / "m.png")],
                ["truncation", "--seeds", "1", "--psi", "1,0", "--out", str(tmp_path / "t.png")],
                ["directions", "--method", "sefa", "--num", "2", "--out", str(tmp_path / "d.safetensors")]):
        res = CliRunner().invoke(cli, [*cmd, "--network", str(tiny_dir)])
        assert res.exit_code == 0, res.output
        assert f"network: {tiny_dir}" in res.output, (cmd, res.output)
