"""G.config / D.config, save_pretrained / from_pretrained round trips, the model card and the Hub paths
(an offline Hub cache laid out by hand; push_to_hub against a recording stand-in for HfApi)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load, load_file
from testkit import make_tiny

import flowergan
from flowergan.config import preset
from flowergan.inference import Pipeline
from flowergan.networks import Discriminator, Generator, build_networks
from flowergan.networks.store import write_model_dir


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), k


def test_modules_keep_their_config(tiny_dir):
    cfg = preset("tiny").replace(c_dim=2)
    G, D = build_networks(cfg, seed=0)
    assert G.config == cfg and D.config == cfg
    assert Generator(z_dim=4, c_dim=0, w_dim=4, img_resolution=8, img_channels=3).config is None
    m = flowergan.load(tiny_dir)
    assert m.G.config == preset("tiny") and m.D.config == preset("tiny") and m.config == preset("tiny")


def test_save_pretrained_round_trip_is_bit_exact(tiny_dir, tmp_path):
    m = flowergan.load(tiny_dir)
    out = m.save_pretrained(tmp_path / "saved")
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "weights.safetensors"]
    m2 = Pipeline.from_pretrained(out)
    assert m2.config == m.config
    _same_weights(m.G, m2.G)
    _same_weights(m.D, m2.D)
    assert (m2.generate([0, 7], truncation_psi=0.7) == m.generate([0, 7], truncation_psi=0.7)).all()
    # and again: saving the reloaded model stores the same tensors
    out2 = m2.save_pretrained(tmp_path / "saved2")
    t1, t2 = load_file(out / "weights.safetensors"), load_file(out2 / "weights.safetensors")
    assert t1.keys() == t2.keys() and all(torch.equal(t1[k], t2[k]) for k in t1)


def test_a_pipeline_built_from_modules_saves_with_G_config(tmp_path):
    cfg, G, D = make_tiny(seed=3)
    out = Pipeline(G, D=D).save_pretrained(tmp_path / "m")
    _same_weights(G, flowergan.load(out).G)
    G_bare = Generator(z_dim=4, c_dim=0, w_dim=4, img_resolution=8, img_channels=3)
    with pytest.raises(ValueError, match="no config"):
        Pipeline(G_bare).save_pretrained(tmp_path / "bare")
    assert not (tmp_path / "bare").exists()


def test_model_card_states_the_training_facts(tmp_path):
    cfg, G, D = make_tiny()
    run = tmp_path / "runs" / "00003-tiny-flowers-32-b16"
    meta = {"kimg": 12.5, "augment_p": 0.125, "metrics": {"fid": 123.456},
            "train": {"data": "/data/flowers-32.zip", "metrics_num": 1000},
            "dataset": {"name": "flowers-32.zip", "size": 2000}}
    write_model_dir(run / "checkpoints" / "snapshot-0000012500", cfg, {"G": G, "G_ema": G, "D": D}, meta=meta)
    cmd = "flowergan train --data /data/flowers-32.zip --preset tiny --kimg 12.5 --metrics fid"
    (run / "config.json").write_text(json.dumps({"command": cmd}))
    out = flowergan.load(run).save_pretrained(tmp_path / "export" / "flowers-tiny")
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: flowergan\n")
    for expected in ["# flowers-tiny", "32x32x3", "314,387", "337,281",  # README's tiny G / D counts
                     "flowers-32.zip, 2,000 images", "12.5 kimg", "0.1250", "123.46", "1,000 generated images",
                     "Inception-v3", cmd]:
        assert expected in card, expected
    # the command travels with the folder, so a copy of a copy keeps it
    doc = json.loads((out / "config.json").read_text())
    assert doc["command"] == cmd and doc["kimg"] == 12.5
    again = flowergan.load(out).save_pretrained(tmp_path / "copy")
    assert cmd in (again / "README.md").read_text()


def test_model_card_without_facts_says_unknown(tmp_path):
    cfg, G, D = make_tiny()
    out = Pipeline(G, D=None).save_pretrained(tmp_path / "m")
    card = (out / "README.md").read_text()
    assert "| discriminator parameters | not saved |" in card and "unknown" in card and "not measured" in card
    assert flowergan.load(out).D is None


def _lay_out_hub_cache(cache: Path, repo_id: str, model_dir: Path, extra: dict[str, bytes] | None = None) -> str:
    """The Hub cache layout: models--owner--name/{refs/main, snapshots/<commit>/<files>}."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    root = cache / ("models--" + repo_id.replace("/", "--"))
    snap = root / "snapshots" / commit
    snap.mkdir(parents=True)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)
    for f in model_dir.iterdir():
        (snap / f.name).write_bytes(f.read_bytes())
    for name, data in (extra or {}).items():
        (snap / name).write_bytes(data)
    return commit


@pytest.fixture
def offline_hub(monkeypatch):
    hub = pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # read at import time by huggingface_hub
    return hub


def test_from_pretrained_reads_a_hub_repo_from_an_offline_cache(offline_hub, tiny_dir, tmp_path):
    m = flowergan.load(tiny_dir)
    saved = m.save_pretrained(tmp_path / "saved")
    cache = tmp_path / "hf-cache"
    _lay_out_hub_cache(cache, "alice/flowers-tiny", saved)
    m2 = Pipeline.from_pretrained("alice/flowers-tiny", cache_dir=cache)
    assert m2.config == m.config and m2.source.parent.name == "snapshots"
    _same_weights(m.G, m2.G)
    _same_weights(m.D, m2.D)
    assert (flowergan.load("alice/flowers-tiny@main", cache_dir=cache).generate([3]) == m.generate([3])).all()


def test_hub_repo_without_a_model_is_refused_and_pickles_are_never_fetched(offline_hub, tiny_dir, tmp_path):
    cache = tmp_path / "hf-cache"
    only_pkl = tmp_path / "pkl"
    only_pkl.mkdir()
    (only_pkl / "network-snapshot.pkl").write_bytes(b"never read")
    _lay_out_hub_cache(cache, "bob/pickles", only_pkl)
    with pytest.raises(FileNotFoundError, match="no flowergan model"):
        Pipeline.from_pretrained("bob/pickles", cache_dir=cache)
    with pytest.raises(FileNotFoundError, match="carol/absent: no such local folder, and the Hub repo could not"):
        Pipeline.from_pretrained("carol/absent", cache_dir=cache)


def test_push_to_hub_uploads_the_saved_folder(monkeypatch, tiny_dir, tmp_path):
    hub = pytest.importorskip("huggingface_hub")
    calls = []

    class RecordingApi:
        def __init__(self, token=None):
            calls.append(("init", token))

        def create_repo(self, repo_id, private=False, exist_ok=False):
            calls.append(("create_repo", repo_id, private, exist_ok))

        def upload_folder(self, repo_id, folder_path, commit_message):
            files = {p.name: p.read_bytes() for p in Path(folder_path).iterdir()}
            calls.append(("upload_folder", repo_id, files, commit_message))
            return type("Info", (), {"commit_url": f"https://example.invalid/{repo_id}/commit/1"})()

    monkeypatch.setattr(hub, "HfApi", RecordingApi)
    m = flowergan.load(tiny_dir)
    url = m.push_to_hub("alice/flowers-tiny", private=True, token="t0k")
    assert url.endswith("alice/flowers-tiny/commit/1")
    assert calls[0] == ("init", "t0k") and calls[1] == ("create_repo", "alice/flowers-tiny", True, True)
    _, repo, files, msg = calls[2]
    assert repo == "alice/flowers-tiny" and sorted(files) == ["README.md", "config.json", "weights.safetensors"]
    assert b"# flowers-tiny" in files["README.md"]
    pushed = load(files["weights.safetensors"])
    saved = load_file(m.save_pretrained(tmp_path / "same") / "weights.safetensors")
    assert pushed.keys() == saved.keys() and all(torch.equal(pushed[k], saved[k]) for k in saved)
    with pytest.raises(ValueError, match="owner/name"):
        m.push_to_hub("no-slash")


def test_the_pipeline_works_without_huggingface_hub(monkeypatch, tiny_dir, tmp_path):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails as if not installed
    m = flowergan.load(tiny_dir)
    out = m.save_pretrained(tmp_path / "m")
    assert isinstance(flowergan.load(out).D, Discriminator)
    with pytest.raises(FileNotFoundError, match=r"no such local file or folder; .*flowergan\[hub\]"):
        flowergan.load("alice/flowers-tiny")
    with pytest.raises(FileNotFoundError, match="not a flowergan model folder"):
        flowergan.load(tmp_path / "missing-folder")
