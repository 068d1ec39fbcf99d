"""The training loop: exact resume, checkpoints, divergence stop, learning signal on a toy problem."""

import copy
import json

import pytest
import torch

from flowergan.benchmarking.training import RandomImages, _CyclicSampler
from flowergan.config import preset
from flowergan.networks.run_folder import list_checkpoints
from flowergan.networks.store import load_model_dir
from flowergan.training.config import TrainConfig
from flowergan.training.loop import Trainer, TrainingDiverged, train
from flowergan.training.plan import plan_training

CFG = preset("tiny").replace(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)


def _tcfg(**kw):
    base = dict(batch=4, kimg=0.016, snap=0.008, r1_interval=2, pl_interval=2, aug="ada", ada_interval=1,
                ada_kimg=1, p=0.1, seed=3, keep=5)
    base.update(kw)
    return TrainConfig(**base)


def _trainer(run_dir, tcfg, resume=None):
    data = RandomImages(CFG, n=24, seed=1)
    return Trainer(plan_training(CFG, tcfg, device="cpu", resume=resume), run_dir, data, device=torch.device("cpu"),
                   sampler_cls=_CyclicSampler)


def _weights(ckpt):
    d = load_model_dir(ckpt)
    return {f"{n}.{k}": v for n in ("G", "G_ema", "D") for k, v in d[n].state_dict().items()}


def test_resume_is_exact(tmp_path):
    a = tmp_path / "straight"
    a.mkdir()
    t = _trainer(a, _tcfg())
    train(t, progress=False)
    assert t.cur_nimg == 16 and t.batch_idx == 4

    b = tmp_path / "split"
    b.mkdir()
    t1 = _trainer(b, _tcfg(kimg=0.008))
    train(t1, progress=False)
    half = list_checkpoints(b)[-1]
    assert json.loads((half / "train_state.json").read_text())["cur_nimg"] == 8
    t2 = _trainer(b, _tcfg(), resume=half)
    assert t2.cur_nimg == 8 and abs(float(t2.augment_pipe.p) - float(t1.augment_pipe.p)) == 0
    train(t2, progress=False)

    wa, wb = _weights(list_checkpoints(a)[-1]), _weights(list_checkpoints(b)[-1])
    assert wa.keys() == wb.keys()
    diff = {k: float((wa[k] - wb[k]).abs().max()) for k in wa if not torch.equal(wa[k], wb[k])}
    assert not diff, f"resumed run differs from the straight run: {diff}"
    sa = json.loads((list_checkpoints(a)[-1] / "train_state.json").read_text())
    sb = json.loads((list_checkpoints(b)[-1] / "train_state.json").read_text())
    assert sa["ada"] == sb["ada"] and sa["pl_mean"] == sb["pl_mean"] and sa["sampler"] == sb["sampler"]
    # ADA moved p at the specified rate: each step moves it by exactly batch / (ada_kimg * 1000)
    assert abs((sa["ada"]["p"] - 0.1) / (4 / 1000) - round((sa["ada"]["p"] - 0.1) / (4 / 1000))) < 1e-9


def test_run_outputs_and_pruning(tmp_path):
    t = _trainer(tmp_path, _tcfg(keep=2, kimg=0.016, snap=0.004))
    train(t, progress=False)
    ckpts = list_checkpoints(tmp_path)
    assert [c.name for c in ckpts] == ["snapshot-0000000012", "snapshot-0000000016"]
    assert (tmp_path / "log.jsonl").is_file() and (tmp_path / "reals.png").is_file()
    assert len(list((tmp_path / "samples").glob("fakes-*.png"))) == 4
    recs = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert recs[-1]["kimg"] == 0.016 and "Loss/G/loss" in recs[-1] and "Progress/augment" in recs[-1]
    assert not list((tmp_path / "checkpoints").glob(".*")), "no temp folders left"


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    t = _trainer(tmp_path, _tcfg(kimg=0.016, snap=0.004, aug="none"))
    train_kimg_half = t.cfg.replace(kimg=0.008)
    t.cfg = train_kimg_half
    train(t, progress=False)
    good = list_checkpoints(tmp_path)[-1]
    t.cfg = t.cfg.replace(kimg=0.016)
    with torch.no_grad():
        t.D.b4.out.bias.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="NaN/inf"):
        train(t, progress=False)
    assert list_checkpoints(tmp_path)[-1] == good


@pytest.mark.slow
def test_compiled_main_phases_train(tmp_path):
    """--compile: the main phases run through torch.compile'd synthesis and D; weights still update."""
    t = _trainer(tmp_path, _tcfg(kimg=0.008, compile=True, aug="none"))
    before = {k: v.clone() for k, v in t.G.state_dict().items()}
    train(t, progress=False)
    assert t.cur_nimg == 8
    assert any(not torch.equal(before[k], v) for k, v in t.G.state_dict().items())
    assert all(not k.startswith("_orig_mod") and "._orig_mod" not in k for k in t.G.state_dict())


def test_compile_mode_reaches_torch_compile(monkeypatch):
    """--compile-mode (reduce-overhead: CUDA graphs) is what torch.compile gets, for synthesis and D alike;
    an unknown mode is refused by the config before anything is built."""
    from flowergan.config import ConfigError

    seen = []
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: seen.append((fn, kw)) or fn)
    t = _trainer(None, _tcfg(compile=True, compile_mode="reduce-overhead", aug="none"))
    assert [(fn, kw) for fn, kw in seen] == [(t.G.synthesis, {"mode": "reduce-overhead"}),
                                            (t.D, {"mode": "reduce-overhead"})]
    with pytest.raises(ConfigError, match="--compile-mode .fastest.: choose one of default, reduce-overhead"):
        _tcfg(compile=True, compile_mode="fastest").validate()


def test_zero_weight_regularisation_is_skipped():
    """pl_weight 0 / gamma 0 turn the lazy phases off (no penalty, no optimiser step); the others still run."""
    from flowergan.config import ConfigError

    for bad in (dict(pl_weight=-1.0), dict(gamma=-0.1)):
        with pytest.raises(ConfigError, match="must be >= 0"):
            _tcfg(**bad).validate()
    t = _trainer(None, _tcfg(aug="none", pl_weight=0.0, gamma=0.0))
    stats = t.step()  # batch 0: every phase is due
    assert "Loss/G/loss" in stats and "Loss/D/loss_real" in stats
    assert "Loss/pl_penalty" not in stats and "Loss/r1_penalty" not in stats
    t = _trainer(None, _tcfg(aug="none"))
    stats = t.step()
    assert "Loss/pl_penalty" in stats and "Loss/r1_penalty" in stats


def test_ada_adjusts_p_once_every_ada_interval_iterations():
    # Official cadence: p moves after iterations 4, 8, 12, ... whatever extra D passes over reals the R1
    # iterations add (R1 every 16 here: 2 of the 32 iterations run D twice on reals).
    t = _trainer(None, _tcfg(r1_interval=16, pl_interval=4, ada_interval=4, kimg=1, p=0.5))
    at, real_step = [], t.ada.step

    def counting_step(*a, **kw):
        at.append(t.batch_idx)
        return real_step(*a, **kw)

    t.ada.step = counting_step
    ps = [t.ada.p]
    for _ in range(32):
        t.step()
        ps.append(t.ada.p)
    assert at == list(range(4, 33, 4))
    # p changes only at those iterations, each time by batch * interval / (ada_kimg * 1000) = 16 / 1000
    moved = [i for i in range(32) if ps[i + 1] != ps[i]]
    assert set(moved) <= {b - 1 for b in at} and len(moved) >= 6
    assert all(abs(ps[i + 1] - ps[i]) == pytest.approx(16 / 1000, rel=1e-9) for i in moved)


def test_optimisers_follow_adam_with_the_lazy_regularisation_correction():
    """Both optimisers step like Adam written out in float64 (Kingma & Ba, bias-corrected), with the
    official lazy-regularisation correction: lr * c and betas ** c, c = interval / (interval + 1)."""
    t = _trainer(None, _tcfg(lr=0.002, r1_interval=16, pl_interval=4, betas=(0.5, 0.99), eps=1e-8))
    for module, c in (("G", 4 / 5), ("D", 16 / 17)):
        opt = t.opts[module]
        lr, b1, b2, eps = 0.002 * c, 0.5 ** c, 0.99 ** c, 1e-8
        params = [p for group in opt.param_groups for p in group["params"]]
        assert len(params) == len(list((t.G if module == "G" else t.D).parameters()))
        ref = [p.detach().double().clone() for p in params]
        m = [torch.zeros_like(r) for r in ref]
        v = [torch.zeros_like(r) for r in ref]
        g = torch.Generator().manual_seed(7)
        for step in range(1, 4):
            grads = [torch.randn(p.shape, generator=g) for p in params]
            for p, gr in zip(params, grads):
                p.grad = gr.clone()
            opt.step()
            for i, gr in enumerate(grads):
                m[i] = b1 * m[i] + (1 - b1) * gr.double()
                v[i] = b2 * v[i] + (1 - b2) * gr.double() ** 2
                ref[i] = ref[i] - lr * (m[i] / (1 - b1 ** step)) / ((v[i] / (1 - b2 ** step)).sqrt() + eps)
        worst = max(((p.detach().double() - r).abs().max() / r.abs().max().clamp(min=1e-3)).item()
                    for p, r in zip(params, ref))
        assert worst < 1e-5, (module, worst)


def test_resumed_optimiser_keeps_its_own_implementation():
    """A checkpoint's optimiser state saved by the for-each Adam loads into the fused one and stays fused (a
    plain load_state_dict would take fused=None from the file), and the next step is Adam's either way."""
    from flowergan.training.checkpoint import load_optimizer_state

    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(32))
    old = torch.optim.Adam([w], lr=0.01, betas=(0.0, 0.99), fused=None)
    for _ in range(3):
        w.grad = torch.randn(32)
        old.step()
    saved = copy.deepcopy(old.state_dict())  # as read from a file: tensors of its own
    assert saved["param_groups"][0]["fused"] is None
    w2 = torch.nn.Parameter(w.detach().clone())
    new = torch.optim.Adam([w2], lr=0.01, betas=(0.0, 0.99), fused=True)
    load_optimizer_state(new, saved)
    assert new.param_groups[0]["fused"] is True and new.param_groups[0]["lr"] == 0.01
    g = torch.randn(32)
    w.grad, w2.grad = g.clone(), g.clone()
    old.step()
    new.step()
    torch.testing.assert_close(w2.detach(), w.detach(), rtol=0, atol=1e-6)
    assert float(new.state[w2]["step"]) == 4
