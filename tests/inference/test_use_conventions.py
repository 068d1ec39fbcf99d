"""Conventions from issue #26: a readable repr and .to(device) on the pipeline, model folders with the usual mode,
model cards without this machine's install path, and the projection bar ending on steps/steps."""

from __future__ import annotations

import os
import stat

import numpy as np
import torch

from flowergan.inference.model_card import portable_command


def test_repr_says_what_the_pipeline_is(pipe, tiny_dir):
    r = repr(pipe)
    assert "object at 0x" not in r
    assert r.startswith("Pipeline(") and str(tiny_dir) in r and "resolution=32" in r and "device='cpu'" in r


def test_to_moves_the_networks_and_returns_the_pipeline(tiny_dir):
    import flowergan

    p = flowergan.load(tiny_dir)
    before = p.generate([4])
    assert p.to("meta") is p
    assert p.device == torch.device("meta") and next(p.G.parameters()).device.type == "meta"
    assert p.D is None or next(p.D.parameters()).device.type == "meta"
    p = flowergan.load(tiny_dir).to(torch.device("cpu"))
    assert np.array_equal(p.generate([4]), before)


def test_saved_model_folders_follow_the_umask(pipe, tmp_path):
    old = os.umask(0o022)
    try:
        out = pipe.save_pretrained(tmp_path / "m")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755  # mkdtemp alone gives 0700


def test_model_card_has_no_install_path(pipe, tmp_path):
    pipe.meta["command"] = "/home/me/src/flowergan/.venv/bin/flowergan train --data data/f.zip --kimg 20"
    try:
        out = pipe.save_pretrained(tmp_path / "card")
    finally:
        pipe.meta.pop("command")
    card = (out / "README.md").read_text()
    assert "flowergan train --data data/f.zip --kimg 20" in card and "/home/me" not in card
    assert portable_command("/usr/lib/python3/site-packages/flowergan/__main__.py generate") == "flowergan generate"
    assert portable_command("python -m flowergan info") == "python -m flowergan info"


def test_the_projection_bar_ends_on_the_last_step(pipe, capsys, monkeypatch):
    import tqdm.auto

    class Rare(tqdm.auto.tqdm):  # draws only when forced, as a long run between redraws does at its last step
        def __init__(self, *a, **k):
            super().__init__(*a, **{**k, "mininterval": 1e9, "miniters": 10**9})

    monkeypatch.setattr(tqdm.auto, "tqdm", Rare)
    target = pipe.generate([3])[0]
    pipe.project(target, steps=7, seed=0, progress=True, vgg16="none")
    err = capsys.readouterr().err
    assert "7/7" in err, err[-500:]
