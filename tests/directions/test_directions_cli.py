"""`flowergan directions` and `flowergan edit` end to end on a tiny random-weight model, and class names from
prepare to dataset.json, the dataset reader, a checkpoint and the loaded pipeline."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner
from testkit import make_tiny, one_thread

from flowergan.cli.main import cli
from flowergan.inference.directions import Directions
from flowergan.networks.store import write_model_dir

_one_thread = pytest.fixture(autouse=True)(one_thread)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    cfg, G, D = make_tiny()
    return write_model_dir(tmp_path_factory.mktemp("cli") / "tiny", cfg, {"G": G, "G_ema": G, "D": D})


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_directions_then_edit_strip_and_video(model, tmp_path):
    r = invoke("directions", "--network", model, "--method", "sefa", "--layers", "coarse", "--num", "5",
               "--samples", "200", "--device", "cpu")
    assert r.exit_code == 0, r.output
    path = model / "directions" / "sefa-coarse.safetensors"  # beside the model by default
    assert path.is_file() and path.with_suffix(".json").is_file() and "5 sefa directions on ws 0-2" in r.output
    d = Directions.load(path)
    assert len(d) == 5 and d.layers == [0, 1, 2]

    import flowergan

    pipe = flowergan.load(model)
    r = invoke("edit", "--network", model, "--directions", path, "--seeds", "1,2", "--dir", "2",
               "--strength", "-2:2:5", "--trunc", "0.7", "--plain", "--out", tmp_path / "strip.png", "--device", "cpu")
    assert r.exit_code == 0, r.output
    strip = np.asarray(PIL.Image.open(tmp_path / "strip.png"))
    assert strip.shape == (64, 160, 3)  # 2 rows (seeds) x 5 columns (strengths) of 32 px
    expect = pipe.edit([1, 2], d, "-2:2:5", index=2, truncation_psi=0.7)
    np.testing.assert_array_equal(strip[32:, 64:96], expect[1, 2])
    np.testing.assert_array_equal(strip[:32, 64:96], pipe.generate([1], 0.7)[0])  # strength 0

    r = invoke("edit", "--network", model, "--directions", path, "--seeds", "3", "--strength", "-3:3:4",
               "--plain", "--out", tmp_path / "walk.gif", "--device", "cpu")
    assert r.exit_code == 0, r.output
    gif = PIL.Image.open(tmp_path / "walk.gif")
    assert gif.n_frames == 4 and gif.size == (32, 32)

    # a projected w (as flowergan project writes it) is edited as it is
    ws = pipe.seeds_to_ws([4]).numpy()
    np.savez(tmp_path / "projected_w.npz", w=ws)
    r = invoke("edit", "--network", model, "--directions", path, "--projected-w", tmp_path / "projected_w.npz",
               "--strength", "0", "--plain", "--out", tmp_path / "proj.png", "--device", "cpu")
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(np.asarray(PIL.Image.open(tmp_path / "proj.png")), pipe.generate([4])[0])


@pytest.mark.parametrize("args, msg", [
    (["--seeds", "1", "--out", "x.jpg"], ".png"),
    (["--out", "x.png"], "give --seeds"),
    (["--seeds", "1", "--projected-w", "PW", "--out", "x.png"], "give --seeds"),
    (["--seeds", "1", "--strength", "1:2", "--out", "x.png"], "start:stop:count"),
    (["--seeds", "1", "--dir", "9", "--out", "x.png"], "holds 3 directions"),
    (["--seeds", "0-999", "--strength", "-3:3:7", "--out", "x.png"], "FLOWERGAN_MAX_BATCH"),
])
def test_edit_refuses_bad_arguments_before_work(model, tmp_path, args, msg):
    d = Directions(vectors=np.eye(3, 64), std=np.ones(3), method="pca", layers=[0])
    d.fingerprint = ""
    p = d.save(tmp_path / "d.safetensors")
    np.savez(tmp_path / "pw.npz", w=np.zeros([1, 8, 64], np.float32))
    args = [str(tmp_path / "pw.npz") if a == "PW" else a for a in args]
    args = [str(tmp_path / a) if a.startswith("x.") else a for a in args]
    r = invoke("edit", "--network", model, "--directions", p, *args)
    assert r.exit_code == 2 and msg in r.output, r.output
    assert not list(tmp_path.glob("x.*"))


def test_directions_refuses_bad_arguments(model, tmp_path):
    r = invoke("directions", "--network", model, "--method", "class", "--out", tmp_path / "c.safetensors")
    assert r.exit_code == 2 and "conditional model" in r.output
    r = invoke("directions", "--network", model, "--out", tmp_path / "c.npz")
    assert r.exit_code == 2 and ".safetensors" in r.output
    r = invoke("directions", "--network", model, "--layers", "5-99", "--out", tmp_path / "c.safetensors")
    assert r.exit_code == 2 and "out of range" in r.output
    assert not list(tmp_path.iterdir())


def test_class_names_flow_from_prepare_to_the_pipeline(tmp_path):
    """synthetic --labels-by-family writes the family names; the reader, a checkpoint and load() keep them."""
    import flowergan
    from flowergan.data.dataset import ImageDataset
    from flowergan.data.synthetic import FAMILIES, prepare_synthetic

    out = tmp_path / "fam.zip"
    prepare_synthetic(out, count=40, resolution=16, labels_by_family=True, workers=1, progress=False)
    with zipfile.ZipFile(out) as zf:
        meta = json.loads(zf.read("dataset.json"))
    assert meta["class_names"] == list(FAMILIES) and len(meta["labels"]) == 40
    ds = ImageDataset(out, use_labels=True)
    assert {c for _, c in meta["labels"]} == set(range(len(FAMILIES)))  # every family drawn in 40 images
    assert ds.label_dim == len(FAMILIES) and ds.class_names == list(FAMILIES)
    # unlabelled datasets carry no names
    prepare_synthetic(tmp_path / "plain.zip", count=3, resolution=16, workers=1, progress=False)
    with zipfile.ZipFile(tmp_path / "plain.zip") as zf:
        assert "class_names" not in json.loads(zf.read("dataset.json"))
    # a conditional model whose metadata records the names shows them
    cfg, G, D = make_tiny(c_dim=3, seed=1)
    m = write_model_dir(tmp_path / "cond", cfg, {"G": G, "G_ema": G, "D": D},
                        meta={"class_names": ["daisy", "rose", "lily"]})
    assert flowergan.load(m).class_names == ["daisy", "rose", "lily"]
    bad = write_model_dir(tmp_path / "cond2", cfg, {"G": G, "G_ema": G, "D": D}, meta={"class_names": ["a"]})
    assert flowergan.load(bad).class_names is None  # wrong count: ignored, not guessed


def test_oxford_labels_get_the_published_names(tmp_path):
    """Oxford's imagelabels.mat (1-based) -> dataset.json with the published category names."""
    scipy_io = pytest.importorskip("scipy.io")
    from flowergan.data.classes import OXFORD102_CLASS_NAMES
    from flowergan.data.prepare import prepare_dataset

    src = tmp_path / "jpg"
    src.mkdir()
    rng = np.random.RandomState(0)
    for i in range(1, 5):
        PIL.Image.fromarray(rng.randint(0, 255, (24, 24, 3), dtype=np.uint8)).save(src / f"image_{i:05d}.jpg")
    scipy_io.savemat(tmp_path / "imagelabels.mat", {"labels": np.array([[1, 77, 102, 3]])})
    prepare_dataset(src, tmp_path / "ox.zip", resolution=16, labels=tmp_path / "imagelabels.mat", workers=1,
                    progress=False)
    with zipfile.ZipFile(tmp_path / "ox.zip") as zf:
        meta = json.loads(zf.read("dataset.json"))
    assert meta["class_names"] == list(OXFORD102_CLASS_NAMES)
    assert meta["class_names"][76] == "passion flower" and meta["class_names"][101] == "blackberry lily"
    assert sorted(c for _, c in meta["labels"]) == [0, 2, 76, 101]


def test_training_records_the_dataset_class_names(tmp_path):
    import torch

    import flowergan
    from flowergan.config import preset
    from flowergan.data.dataset import ImageDataset
    from flowergan.data.synthetic import FAMILIES, prepare_synthetic
    from flowergan.networks.locate import list_checkpoints
    from flowergan.training.config import TrainConfig
    from flowergan.training.loop import Trainer, train
    from flowergan.training.plan import plan_training

    out = prepare_synthetic(tmp_path / "fam.zip", count=40, resolution=16, labels_by_family=True, workers=1,
                            progress=False)["output"]
    ds = ImageDataset(out, use_labels=True)
    cfg = preset("tiny").replace(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16,
                                 c_dim=ds.label_dim)
    tcfg = TrainConfig(batch=4, kimg=0.008, snap=0.008, aug="none", seed=0, keep=1)
    (tmp_path / "run").mkdir()
    train(Trainer(plan_training(cfg, tcfg, device="cpu"), tmp_path / "run", ds, device=torch.device("cpu")),
          progress=False)
    ckpt = list_checkpoints(tmp_path / "run")[-1]
    assert flowergan.load(ckpt).class_names == list(FAMILIES)


def test_bad_class_names_are_ignored_by_the_reader(tmp_path):
    from flowergan.data.dataset import ImageDataset

    src = tmp_path / "ds"
    (src / "00000").mkdir(parents=True)
    PIL.Image.new("RGB", (8, 8)).save(src / "00000" / "img00000000.png")
    (src / "dataset.json").write_text(json.dumps({"labels": [["00000/img00000000.png", 0]], "class_names": [7]}))
    ds = ImageDataset(src, use_labels=True)
    assert ds.label_dim == 1 and ds.class_names is None
