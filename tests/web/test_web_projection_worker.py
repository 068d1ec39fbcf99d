"""A projection runs on a worker of its own: the other panels are answered while it runs, the target is shown
at once and the projection's current image (its progress) while it runs."""

from __future__ import annotations

import base64
import io
import threading
import time

import numpy as np
import PIL.Image
import pytest
from test_web_api import call, decode
from web_testkit import Running, tiny_pipeline

from flowergan.inference import load_target
from flowergan.web import Limits


def _photo_url() -> str:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    PIL.Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@pytest.fixture
def blocked():
    """A server whose projection shows one progress image, then waits until the test releases it."""
    pipe = tiny_pipeline()
    release, previewed = threading.Event(), threading.Event()
    real = pipe.project

    def project(photo, steps=100, **kw):
        import torch

        kw["preview"](0, torch.zeros(1, 3, 32, 32))  # a mid-grey progress image
        kw["callback"](0, 1.0)
        previewed.set()
        assert release.wait(30), "the test never released the projection"
        return real(photo, steps=2, space=kw.get("space", "w"), vgg16="none", progress=False)

    pipe.project = project
    running = Running(pipe, Limits(timeout_s=5.0))
    yield running, pipe, release, previewed
    release.set()
    running.stop()


def test_generation_is_answered_while_a_projection_runs(blocked):
    running, pipe, release, previewed = blocked
    status, job, _ = call(running.url, "/api/project", {"image": _photo_url(), "steps": 20})
    assert status == 200
    assert previewed.wait(10)
    t0 = time.perf_counter()
    status, out, _ = call(running.url, "/api/generate", {"seed": 5})
    took = time.perf_counter() - t0
    assert status == 200, out  # on the shared worker this waited behind the projection: 504 after 5 s
    assert took < 4.0
    np.testing.assert_array_equal(decode(out["images"][0]), pipe.generate([5])[0])
    status, mixed, _ = call(running.url, "/api/mix", {"row_seed": 1, "col_seed": 2})
    assert status == 200
    status, st, _ = call(running.url, f"/api/project/{job['job']}")
    assert status == 200 and not st["done"] and st["step"] == 1  # still running
    # the target is shown at once, and the current image while it runs
    np.testing.assert_array_equal(decode(st["target"]), load_target(_photo_url_image(), 32))
    assert (decode(st["preview"]) == 128).all()  # the mid-grey image handed to the preview callback
    # a second upload is refused while one runs; the first then finishes
    status, err, _ = call(running.url, "/api/project", {"image": _photo_url(), "steps": 20})
    assert status == 503 and "already running" in err["error"]
    release.set()
    for _ in range(200):
        st = call(running.url, f"/api/project/{job['job']}")[1]
        if st["done"]:
            break
        time.sleep(0.05)
    assert st["done"] and st["error"] is None and st["image"].startswith("data:image/png")


def _photo_url_image() -> np.ndarray:
    png = base64.b64decode(_photo_url().split(",", 1)[1])
    return np.asarray(PIL.Image.open(io.BytesIO(png)).convert("RGB"))


def test_projection_draws_from_its_own_random_generator():
    """What other threads do to the global RNG (a seeded random-noise image calls torch.manual_seed) does not
    change a projection running beside them, nor does the projection touch the global RNG."""
    import torch

    pipe = tiny_pipeline()
    target = pipe.generate([7])[0]
    ref = pipe.project(target, steps=8, vgg16="none", progress=False)

    def meddle(step, image):  # as another thread would, between any two of the projector's draws
        torch.manual_seed(1000 + step)
        torch.randn(17)

    again = pipe.project(target, steps=8, vgg16="none", progress=False, preview=meddle)
    np.testing.assert_array_equal(again.w_steps, ref.w_steps)
    torch.manual_seed(5)
    state = torch.random.get_rng_state()
    pipe.project(target, steps=3, vgg16="none", progress=False)
    assert torch.equal(torch.random.get_rng_state(), state)
