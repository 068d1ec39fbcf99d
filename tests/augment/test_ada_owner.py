"""ADA's p has one owner and one writer: the controller moves it with the official rule (written out here by hand,
step by step) and the pipe only reads it; a write from anywhere else raises, and a training run with a resume
writes p exactly once per adjustment and once per restore."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from flowergan.augment import AdaController, AugmentPipe, real_sign_stats
from flowergan.augment.ada import AdaController as _Ada


def test_p_follows_the_official_rule_step_by_step():
    # Karras et al. 2020 / the official loop: every `interval` iterations
    #   p <- max(p + sign(r_t - target) * batch * interval / (ada_kimg * 1000), 0)
    # with r_t the mean sign of D's logits on reals since the last adjustment; ours also clamps at p_max = 1.
    batch, interval, ada_kimg, target = 8, 3, 0.05, 0.2  # a step of 24 / 50 = 0.48: hits both clamps
    ada = AdaController(target=target, speed_kimg=ada_kimg, interval=interval, p=0.1)
    pipe = AugmentPipe.from_preset("bgc", p=ada.current_p)
    rng = np.random.RandomState(0)
    p, signs, n, seen = 0.1, 0.0, 0, []
    for it in range(1, 40):
        for _ in range(1 + (it % 4 == 0)):  # some iterations run D on reals twice (R1): both count
            logits = torch.from_numpy(rng.randn(batch, 1) + rng.choice([-2.0, 2.0], p=[0.35, 0.65])).float()
            ada.accumulate(real_sign_stats(logits))
            signs += float(np.sign(logits.numpy()).sum())
            n += logits.numel()
        ada.end_minibatch()
        if ada.ready:
            ada.step(batch * interval)
        if it % interval == 0:  # the rule, by hand, in Python floats
            rt = signs / n
            p = min(max(p + float(np.sign(rt - target)) * batch * interval / (ada_kimg * 1000), 0.0), 1.0)
            signs, n = 0.0, 0
            assert ada.last_rt == rt
        assert ada.p == p, it  # bit for bit, also between adjustments
        assert float(pipe.p) == float(np.float32(p))  # the pipe sees ADA's p as float32
        seen.append(p)
    assert 0.0 in seen and 1.0 in seen and len(set(seen)) >= 4  # both clamps and free moves were exercised


def test_a_write_to_p_from_outside_the_controller_raises():
    ada = AdaController(p=0.25)
    pipe = AugmentPipe.from_preset("bgc", p=ada.current_p)
    x = torch.zeros(2, 3, 8, 8)
    with pytest.raises(RuntimeError, match="[Ii]nplace"):
        pipe.p.fill_(0.5)  # the pipe's p is a read-only view
    with pytest.raises(AttributeError):
        pipe.p = torch.tensor(0.5)
    with pytest.raises(RuntimeError, match="Unexpected key"):
        pipe.load_state_dict({"p": torch.tensor(0.5)})
    pipe(x)  # still fine: nothing was written
    ada.current_p().fill_(0.5)  # a stray write to the owner's tensor ...
    with pytest.raises(RuntimeError, match="written from outside the controller"):
        pipe(x)  # ... is refused at the pipe's next read
    with pytest.raises(RuntimeError, match="written from outside the controller"):
        ada.step(8)


def test_a_training_run_and_its_resume_write_p_only_through_the_controller(tmp_path, monkeypatch):
    from flowergan.cli.main import cli
    from flowergan.data.synthetic import prepare_synthetic

    writes = []
    real_write = _Ada._write_p

    def counting_write(self, value):
        writes.append(self)
        real_write(self, value)

    monkeypatch.setattr(_Ada, "_write_p", counting_write)
    data = tmp_path / "d.zip"
    prepare_synthetic(data, count=8, resolution=16, seed=0, progress=False, workers=1)
    small = ["--preset", "tiny", "--channel-base", "128", "--channel-max", "16", "--z-dim", "8", "--w-dim", "8",
             "--map-layers", "1", "--batch", "4", "--no-progress", "--ada-interval", "2", "--ada-kimg", "0.1"]
    res = CliRunner().invoke(cli, ["train", "--data", str(data), "--out", str(tmp_path / "runs"), *small,
                                   "--kimg", "0.012", "--snap", "0.012"])
    assert res.exit_code == 0, res.output
    assert len(writes) == 1  # 3 iterations: one adjustment (after iteration 2)
    first = writes[0]
    # every write to the tensor went through _write_p: its version counter moved once per write (no other)
    assert first._p._version == first._p_version
    (run,) = (tmp_path / "runs").iterdir()
    res = CliRunner().invoke(cli, ["train", "--resume", str(run), "--kimg", "0.024", "--no-progress"])
    assert res.exit_code == 0, res.output
    # the restore, then iterations 4..6: adjustments after iterations 4 and 6
    assert len(writes) == 4 and len({id(a) for a in writes[1:]}) == 1
    assert writes[1]._p._version == writes[1]._p_version

    # stored once: train_state.json "ada"."p" (exact); no copy in config.json, the weights or "augment_p"
    import json

    from safetensors.torch import load_file

    from flowergan.inference.loader import load_networks

    ckpt = sorted((run / "checkpoints").iterdir())[-1]
    state = json.loads((ckpt / "train_state.json").read_text())
    assert state["ada"]["p"] == writes[-1].p and "augment_p" not in state
    assert "augment_p" not in json.loads((ckpt / "config.json").read_text())
    assert not any(k.startswith("augment_pipe") for k in load_file(ckpt / "weights.safetensors"))
    loaded = load_networks(ckpt)  # inference still reports the p the run ended with
    assert loaded.augment_p == state["ada"]["p"] == loaded.meta["augment_p"]
