"""The explorer's editing endpoints over HTTP: direction sets, edits, walk downloads, projection with
progress, truncation cutoff and class names; every bad input gets a 4xx naming the field before any work."""

from __future__ import annotations

import base64
import io
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from testkit import make_tiny, one_thread

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))
from web_testkit import Running  # noqa: E402

from flowergan.inference import Pipeline  # noqa: E402
from flowergan.inference.directions import find_directions  # noqa: E402
from flowergan.web.edit_api import EditLimits  # noqa: E402

_one_thread = pytest.fixture(autouse=True)(one_thread)


def post(url: str, path: str, body: dict) -> tuple[int, dict]:
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    req = urllib.request.Request(url.rstrip("/") + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def get(url: str, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url.rstrip("/") + path, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def decode(url: str) -> np.ndarray:
    return np.asarray(PIL.Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


@pytest.fixture(scope="module")
def pipe():
    return Pipeline(make_tiny()[1])


@pytest.fixture(scope="module")
def saved(pipe):
    return find_directions(pipe.G, "sefa", "coarse", num=4, samples=500)


@pytest.fixture(scope="module")
def server(pipe, saved):
    from flowergan.web import make_server

    srv = Running.__new__(Running)
    srv.server = make_server(pipe, "127.0.0.1", 0, edit_limits=EditLimits(max_project_steps=20, samples=500),
                             directions=[("saved-sefa", saved)])
    srv.url = srv.server.url
    import threading

    srv.thread = threading.Thread(target=srv.server.serve_forever, kwargs={"poll_interval": 0.05},
                                  daemon=True)
    srv.thread.start()
    yield srv
    srv.stop()


def test_info_lists_sets_and_limits(server):
    _, info = get(server.url, "/api/info")
    assert info["direction_sets"][0]["id"] == "saved-sefa" and info["direction_sets"][0]["saved"]
    assert info["direction_sets"][0]["layers"] == [0, 1, 2]
    assert info["edit_limits"]["max_project_steps"] == 20 and info["methods"] == ["sefa", "pca"]
    assert info["class_names"] is None


def test_edit_matches_the_pipeline(server, pipe, saved):
    st, r = post(server.url, "/api/edit", {"seed": 5, "set": "saved-sefa", "values": {"1": 2.0, "3": -1.5},
                                           "psi": 0.7})
    assert st == 200, r
    ws = pipe.seeds_to_ws([5], 0.7)
    off = saved.offset(1, 2.0) + saved.offset(3, -1.5)
    ws[:, saved.layers] += off
    np.testing.assert_array_equal(decode(r["image"]), pipe.synthesize(ws)[0])
    # no values: the plain image
    _, r0 = post(server.url, "/api/edit", {"seed": 5, "set": "saved-sefa", "psi": 0.7})
    np.testing.assert_array_equal(decode(r0["image"]), pipe.generate([5], 0.7)[0])


def test_directions_on_demand(server, pipe):
    st, r = post(server.url, "/api/directions", {"method": "pca", "layers": "fine", "num": 3})
    assert st == 200, r
    assert r["id"] == "pca-fine-3" and r["names"] == ["pc0", "pc1", "pc2"] and not r["saved"]
    ref = find_directions(pipe.G, "pca", "fine", num=3, samples=500)
    np.testing.assert_allclose(r["std"], ref.std.numpy(), rtol=1e-5)
    st, e = post(server.url, "/api/edit", {"seed": 1, "set": "pca-fine-3", "values": {"0": 3}})
    assert st == 200 and not np.array_equal(decode(e["image"]), pipe.generate([1])[0])


def test_cutoff_and_grid(server, pipe):
    st, r = post(server.url, "/api/generate", {"seeds": [1, 2, 3, 4], "psi": 0.0, "cutoff": 2, "grid": True})
    assert st == 200, r
    np.testing.assert_array_equal(decode(r["images"][1]), pipe.generate([2], 0.0, truncation_cutoff=2)[0])
    assert decode(r["grid"]).shape == (64, 64, 3)
    # psi 0 with a cutoff truncates only the first ws: seeds still differ
    assert not np.array_equal(decode(r["images"][0]), decode(r["images"][1]))


def test_walk_video_downloads(server):
    for fmt, magic in [("gif", b"GIF89a"), ("mp4", b"ftyp")]:
        body = {"seeds": [1, 2, 3], "frames": 3, "loop": True, "format": fmt}
        st, r = post(server.url, "/api/walk-video", body)
        assert st == 200, r
        data = base64.b64decode(r["data"].split(",", 1)[1])
        assert r["format"] == fmt and r["frames"] == 10 and r["filename"] == f"walk-1-2-3-loop.{fmt}"
        assert magic in data[:12]
    gif = PIL.Image.open(io.BytesIO(base64.b64decode(post(server.url, "/api/walk-video", {
        "seeds": [1, 2], "frames": 4, "format": "gif"})[1]["data"].split(",", 1)[1])))
    assert gif.n_frames == 5 and gif.size == (32, 32)


def _photo_url(size=(40, 30), fmt="PNG") -> str:
    im = PIL.Image.fromarray(np.random.RandomState(0).randint(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode()


def test_project_with_progress_then_edit(server, pipe, monkeypatch, tmp_path):
    monkeypatch.setenv("FLOWERGAN_VGG16", "")
    monkeypatch.setenv("FLOWERGAN_CACHE", str(tmp_path))
    st, job = post(server.url, "/api/project", {"image": _photo_url(), "steps": 5})
    assert st == 200, job
    for _ in range(600):
        _, s = get(server.url, f"/api/project/{job['job']}")
        if s["done"]:
            break
        time.sleep(0.1)
    assert s["done"] and s["error"] is None and s["step"] == 5 and s["steps"] == 5
    assert decode(s["target"]).shape == (32, 32, 3)
    st, e = post(server.url, "/api/edit", {"projection": s["projection"], "set": "saved-sefa"})
    assert st == 200, e
    np.testing.assert_array_equal(decode(e["image"]), decode(s["image"]))


@pytest.mark.parametrize("path, body, field", [
    ("/api/edit", {"seed": 1, "set": "nope"}, "set"),
    ("/api/edit", {"seed": 1, "set": "saved-sefa", "values": {"9": 1}}, "values"),
    ("/api/edit", {"seed": 1, "set": "saved-sefa", "values": {"0": 99}}, "values[0]"),
    ("/api/edit", {"seed": 1, "set": "saved-sefa", "values": [1]}, "values"),
    ("/api/edit", {"set": "saved-sefa"}, "seed"),
    ("/api/edit", {"projection": "zzz", "set": "saved-sefa"}, "projection"),
    ("/api/edit", {"seed": 1, "set": "saved-sefa", "cutoff": 99}, "cutoff"),
    ("/api/directions", {"method": "class"}, "method"),
    ("/api/directions", {"num": 1000}, "num"),
    ("/api/directions", {"layers": "40-50"}, "layers"),
    ("/api/walk-video", {"seeds": [1, 2], "format": "avi"}, "format"),
    ("/api/walk-video", {"seeds": [1, 2], "frames": 64}, "frames"),
    ("/api/project", {"image": "data:text/plain;base64,aGk=", "steps": 5}, "image"),
    ("/api/project", {"image": _photo_url(), "steps": 21}, "steps"),
    ("/api/project", {"image": "data:image/png;base64,!!!!", "steps": 5}, "image"),
    ("/api/project", {"image": "data:image/png;base64," + base64.b64encode(b"not a png").decode()}, "image"),
])
def test_bad_edit_inputs_get_4xx_naming_the_field(server, path, body, field):
    st, r = post(server.url, path, body)
    assert 400 <= st < 500 and field in r["error"], (st, r)


def test_upload_size_is_bounded_before_reading(server):
    req = urllib.request.Request(server.url + "api/project", data=b"{}", method="POST",
                                 headers={"Content-Type": "application/json", "Content-Length": str(7 << 20)})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 413


def test_huge_photo_is_refused_from_its_header(server):
    big = PIL.Image.new("RGB", (5000, 5000))
    buf = io.BytesIO()
    big.save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    st, r = post(server.url, "/api/project", {"image": url, "steps": 5})
    assert st == 413 and "pixels" in r["error"]


def test_class_names_and_class_directions():
    cfg, G, _ = make_tiny(c_dim=3, seed=1)
    p = Pipeline(G)
    p.class_names = ["daisy", "rose", "lily"]
    running = Running(p)
    try:
        _, info = get(running.url, "/api/info")
        assert info["class_names"] == ["daisy", "rose", "lily"] and "class" in info["methods"]
        st, r = post(running.url, "/api/directions", {"method": "class", "num": 3})
        assert st == 200 and r["names"] == ["daisy", "rose", "lily"]
    finally:
        running.stop()


def test_mismatched_directions_file_is_refused_at_start(pipe):
    from flowergan.web import make_server

    other = find_directions(make_tiny(seed=4)[1], "sefa", num=2, samples=100)
    with pytest.raises(ValueError, match="another model"):
        make_server(pipe, "127.0.0.1", 0, directions=[("other", other)])
    torch.manual_seed(0)
