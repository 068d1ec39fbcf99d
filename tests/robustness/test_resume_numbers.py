"""Resume checks every restored number: ADA state, sampler position, RNG states, image count, best record and
the weights against the config; a newest checkpoint failing one is skipped with the reason (the same fallback
as for damaged files). The run's data replaced by another resolution, channel or image count is one clear error;
a finished run says it is done."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from core_kit import checkpointed_run, copy_of
from PIL import Image
from safetensors.torch import load_file, save_file

from flowergan.cli.main import cli
from flowergan.config import ModelConfig
from flowergan.networks import build_networks
from flowergan.networks.store import ModelFileError
from flowergan.training.checkpoint import find_resume

S, ST, W, C = "train_state.json", "train_state.safetensors", "weights.safetensors", "config.json"
NEWEST, PREVIOUS = "snapshot-0000000016", "snapshot-0000000008"


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """A finished ADA run (batch 4) with checkpoints at 8 and 16 images, trained on 32 16x16 RGB images."""
    run = checkpointed_run(tmp_path_factory.mktemp("numbers"))
    return run


@pytest.fixture
def run(base_run, tmp_path):
    return copy_of(base_run, tmp_path)


def _edit_state(d: Path, change) -> None:
    doc = json.loads((d / S).read_text())
    change(doc)
    (d / S).write_text(json.dumps(doc))  # json writes NaN / Infinity as Python's json reads them back


def _edit_tensor(d: Path, key: str, value: torch.Tensor) -> None:
    t = load_file(str(d / ST))
    t[key] = value
    save_file(t, str(d / ST))


def _set(path: str, value):
    def change(doc):
        *keys, last = path.split(".")
        for k in keys:
            doc = doc[k]
        doc[last] = value
    return lambda d: _edit_state(d, change)


def _other_architecture(d: Path) -> None:
    """weights.safetensors replaced by those of a wider model (config.json left as it was)."""
    cfg = ModelConfig.from_dict(json.loads((d / C).read_text())["model"]).replace(channel_max=64)
    G, D = build_networks(cfg, seed=1)
    t = {f"{n}.{k}": v.clone().contiguous()
         for n, m in (("G", G), ("G_ema", G), ("D", D)) for k, v in m.state_dict().items()}
    save_file(t, str(d / W))


def _another_runs_model(d: Path) -> None:
    """A consistent checkpoint (config + weights) of a model with another z_dim than the run's."""
    doc = json.loads((d / C).read_text())
    cfg = ModelConfig.from_dict(doc["model"]).replace(z_dim=32)
    G, D = build_networks(cfg, seed=1)
    t = {f"{n}.{k}": v.clone().contiguous()
         for n, m in (("G", G), ("G_ema", G), ("D", D)) for k, v in m.state_dict().items()}
    save_file(t, str(d / W))
    (d / C).write_text(json.dumps({**doc, "model": cfg.to_dict()}))


NAN = float("nan")
HOSTILE = {
    "ADA p NaN": (_set("ada.p", NAN), r"ADA p is nan, expected a probability in \[0, 1\]"),
    "ADA p above 1": (_set("ada.p", 7.5), r"ADA p is 7.5"),
    "ADA p negative": (_set("ada.p", -0.5), r"ADA p is -0.5"),
    "ADA p a string": (_set("ada.p", "0.1"), r"ADA p is '0.1'"),
    "ADA statistics infinite": (_set("ada.sign_sum", float("inf")), r"ADA statistics .*not finite"),
    "ADA statistics inconsistent": (_set("ada.count", -3.0), r"ADA statistics"),
    "ADA last r_t absurd": (_set("ada.last_rt", 1e30), r"'last_rt' is 1e\+30"),
    "augment_p out of range": (_set("augment_p", 2.0), r"'augment_p' is 2.0"),
    "pl_mean negative": (_set("pl_mean", -1.0), r"'pl_mean' is -1.0"),
    "sampler past the data": (_set("sampler.pos", 10**6), r"sampler position 1,000,000 is past the data"),
    "sampler epoch absurd": (_set("sampler.epoch", 10**9), r"has read more images than the 16 the run has shown"),
    "sampler negative": (_set("sampler.pos", -1), r"sampler 'pos' is -1"),
    "sampler malformed": (_set("sampler.n", "32"), r"sampler state .* is not a position"),
    "label RNG truncated": (_set("label_rng", ["MT19937", [1, 2]]), r"'label_rng' is not a numpy MT19937 state"),
    "label RNG key out of range": (lambda d: _edit_state(d, lambda s: s["label_rng"][1].__setitem__(0, 2**40)),
                                   r"'label_rng' is not"),
    "CPU RNG truncated": (lambda d: _edit_tensor(d, "rng.cpu", torch.zeros(100, dtype=torch.uint8)),
                          r"'rng.cpu' is torch.uint8 \[100\], not a CPU generator state"),
    "CPU RNG of another dtype": (lambda d: _edit_tensor(d, "rng.cpu", torch.zeros(5056, dtype=torch.float32)),
                                 r"'rng.cpu' is torch.float32"),
    "CUDA RNG malformed": (lambda d: _edit_tensor(d, "rng.cuda", torch.zeros(3, dtype=torch.uint8)),
                           r"'rng.cuda' is torch.uint8 \[3\], not a CUDA generator state"),
    "image count absurd": (_set("cur_nimg", 10**12), r"'cur_nimg' is 1,000,000,000,000 but the checkpoint is named"),
    "batch counter absurd": (_set("batch_idx", 10**9), r"'cur_nimg' 16 is not 'batch_idx' 1,000,000,000 x"),
    "best FID NaN": (_set("best", {"fid": NAN, "kimg": 0.008, "checkpoint": PREVIOUS}), r"'best' is"),
    "world size zero": (_set("world_size", 0), r"'world_size' is 0"),
    "weights of another architecture": (_other_architecture, r"the weights are not those of the model in .*"
                                                             r"of another shape"),
    "another run's model": (_another_runs_model, r"the checkpoint's model differs from the run's .*z_dim 32"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_resume_skips_a_checkpoint_with_an_implausible_number(run, kind):
    corrupt, reason = HOSTILE[kind]
    newest = run / "checkpoints" / NEWEST
    corrupt(newest)
    for spec in ("latest", str(run)):
        point = find_resume(spec, run.parent)
        assert point.checkpoint.name == PREVIOUS, f"{kind}: resumed from the damaged {point.checkpoint.name}"
        assert [p.name for p, _ in point.skipped] == [NEWEST]
        why = point.skipped[0][1]
        assert why.startswith(str(newest)) and re.search(reason, why), why
        assert "\n" not in why
    with pytest.raises(ModelFileError, match=reason):  # named explicitly, it must verify
        find_resume(str(newest), run.parent)


def test_trainer_api_refuses_a_malformed_rng_state_clearly(run):
    """The Python API's Trainer(plan_training(..., resume=...)) runs the same
    checks: a clear ModelFileError, not an IndexError."""
    from flowergan.training.config import TrainConfig
    from flowergan.training.loop import Trainer
    from flowergan.training.plan import plan_training

    ckpt = run / "checkpoints" / NEWEST
    HOSTILE["label RNG truncated"][0](ckpt)
    saved = json.loads((run / C).read_text())
    from flowergan.data.dataset import ImageDataset

    ds = ImageDataset(saved["train"]["data"])
    with pytest.raises(ModelFileError, match=r"'label_rng' is not a numpy MT19937 state"):
        Trainer(plan_training(ModelConfig.from_dict(saved["model"]), TrainConfig.from_dict(saved["train"]),
                              device="cpu", resume=ckpt), None, ds, device=torch.device("cpu"))


def test_cli_resume_past_a_nan_ada_p_trains_from_the_previous_checkpoint(run):
    """The newest checkpoint's ADA p is NaN: --resume says why it skips it and trains on from the intact one
    (before: it trained from the NaN, then refused to save, blaming divergence)."""
    HOSTILE["ADA p NaN"][0](run / "checkpoints" / NEWEST)
    res = CliRunner().invoke(cli, ["train", "--out", str(run.parent), "--resume", "latest", "--kimg", "0.024",
                                   "--no-progress"])
    assert res.exit_code == 0, res.output
    assert f"--resume: skipped {NEWEST}:" in res.output and "ADA p is nan" in res.output
    for name in (NEWEST, "snapshot-0000000024"):  # re-trained from 8: 16 rewritten, then 24
        state = json.loads((run / "checkpoints" / name / S).read_text())
        assert 0 <= state["ada"]["p"] <= 1 and state["cur_nimg"] == int(name[-10:])


def _replace_data(run: Path, path: Path) -> None:
    doc = json.loads((run / C).read_text())
    doc["train"]["data"] = str(path)
    (run / C).write_text(json.dumps(doc))


def _gray_zip(path: Path, n: int, res: int) -> None:
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as z:
        for i in range(n):
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (res, res), dtype=np.uint8), "L").save(buf, format="PNG")
            z.writestr(f"img{i:05d}.png", buf.getvalue())


@pytest.mark.parametrize("kind", ["resolution", "channels", "count"])
def test_resume_on_replaced_data_is_one_clear_error(run, tmp_path, kind):
    from flowergan.data.synthetic import prepare_synthetic

    data = tmp_path / f"other-{kind}.zip"
    if kind == "resolution":
        prepare_synthetic(data, count=32, resolution=32, seed=0, progress=False, workers=1)
        want = r"trained on 16x16 with 3 channel\(s\) images but its data .* now holds 32x32 with 3 channel\(s\)"
    elif kind == "channels":
        _gray_zip(data, 32, 16)
        want = r"trained on 16x16 with 3 channel\(s\) images but its data .* now holds 16x16 with 1 channel\(s\)"
    else:
        prepare_synthetic(data, count=8, resolution=16, seed=0, progress=False, workers=1)
        want = r"trained on 32 images \(x-flips included\) but its data .* now holds 8"
    _replace_data(run, data)
    before = sorted(p.name for p in run.rglob("*"))
    res = CliRunner().invoke(cli, ["train", "--out", str(run.parent), "--resume", str(run), "--kimg", "0.024",
                                   "--no-progress"])
    assert res.exit_code == 2, res.output
    assert re.search(want, res.output) and str(data) in res.output, res.output
    assert "internal error" not in res.output and "Traceback" not in res.output
    assert res.output.count("Error:") == 1 and "Usage:" not in res.output
    assert sorted(p.name for p in run.rglob("*")) == before, "nothing written"


def test_resuming_a_finished_run_says_it_is_done(run):
    before = sorted(p.name for p in (run / "checkpoints").iterdir())
    res = CliRunner().invoke(cli, ["train", "--out", str(run.parent), "--resume", "latest", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "the run is done at 0.016 kimg" in res.output and "pass a larger --kimg" in res.output
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == before
    assert "run folder:" not in res.output, "no trainer was built, nothing started"
