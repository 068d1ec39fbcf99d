"""The explorer's parts on their own, without a server or a socket: the endpoint handlers receive what they
use (a model, a `run` and limits), the worker turns a job's outcome into the answer, and the request
vocabulary reads bounded bodies."""

from __future__ import annotations

import base64
import io
import threading
from email.message import Message

import numpy as np
import pytest
from test_web_api import decode

from flowergan.inference.images import png_bytes
from flowergan.infra import NonFiniteImageError
from flowergan.web.edit_api import EditApi
from flowergan.web.generate_api import GenerateApi
from flowergan.web.limits import EditLimits, Limits
from flowergan.web.requests import ApiError, generation_options, read_json, walk_fields
from flowergan.web.worker import Busy, GenerationWorker


def _inline(calls: list):
    def run(fn):
        calls.append(fn)
        return fn()
    return run


def test_the_generation_endpoints_need_only_a_model_a_run_and_limits(web_pipe):
    calls = []
    api = GenerateApi(web_pipe, Limits(max_batch=2), _inline(calls))
    out = api.api_generate({"seeds": [3, 4], "psi": 0.7})
    assert len(calls) == 1 and out["seeds"] == [3, 4]
    want = web_pipe.generate([3, 4], truncation_psi=0.7, noise_mode="const")
    for got, w in zip(out["images"], want):
        np.testing.assert_array_equal(decode(got), w)
    with pytest.raises(ApiError, match=r"seeds: must be a list of 1 to 2 integers") as e:
        api.api_generate({"seeds": [1, 2, 3]})
    assert e.value.status == 400 and len(calls) == 1  # refused before any work
    assert api.info()["limits"]["max_batch"] == 2


def test_the_editing_endpoints_need_no_server(web_pipe):
    calls, started = [], []
    api = EditApi(web_pipe, _inline(calls), started.append, EditLimits(samples=64), Limits(max_frames=5))
    d = api.api_directions({"method": "pca", "num": 2})
    assert d["id"] == "pca-all-2" and len(d["names"]) == 2 and len(calls) == 1
    out = api.api_edit({"seed": 1, "set": "pca-all-2", "values": {"0": 0.0}})
    np.testing.assert_array_equal(decode(out["image"]), web_pipe.generate([1], noise_mode="const")[0])
    with pytest.raises(ApiError, match="at most 5 are allowed"):  # the server's frame limit reaches it
        api.api_walk_video({"seeds": [1, 2, 3], "frames": 3})
    photo = "data:image/png;base64," + base64.b64encode(png_bytes(np.zeros((8, 8, 3), np.uint8))).decode()
    job = api.api_project({"image": photo, "steps": 2})
    assert len(started) == 1 and callable(started[0])  # handed to the projection worker, not run here
    assert api.project_status(job["job"])["done"] is False


def test_the_worker_answers_busy_late_refused_and_broken_jobs():
    worker = GenerationWorker(1, timeout_s=0.2)
    release = threading.Event()
    try:
        assert worker.run(lambda: 7) == 7
        with pytest.raises(ApiError, match="within 0.2 s") as e:
            worker.run(lambda: release.wait(5))  # running: blocks the thread
        assert e.value.status == 504
        queued = worker.submit(lambda: "queued")  # waits behind the blocked job and fills the queue
        with pytest.raises(Busy):
            worker.submit(lambda: None)
        with pytest.raises(ApiError, match="1 generation request") as e:
            worker.run(lambda: None)
        assert e.value.status == 503
        release.set()
        assert queued.result(5) == "queued"

        def refuse():
            raise ValueError("class_idx 9 is out of range")

        def broken():
            raise NonFiniteImageError("the generated image(s) hold NaN")

        worker.timeout_s = 5
        for fn, status, words in ((refuse, 400, "class_idx 9"), (broken, 500, "NaN")):
            with pytest.raises(ApiError, match=words) as e:
                worker.run(fn)
            assert e.value.status == status
    finally:
        release.set()
        worker.stop()


def _headers(**h) -> Message:
    m = Message()
    for k, v in h.items():
        m[k.replace("_", "-")] = v
    return m


def test_bodies_are_read_within_their_limits():
    ok = b'{"seed": 1}'
    h = _headers(Content_Length=str(len(ok)), Content_Type="application/json; charset=utf-8")
    assert read_json(h, io.BytesIO(ok), 100, 8, 1.0) == {"seed": 1}
    cases = [
        (_headers(Content_Length="500", Content_Type="application/json"), b"", 413, "larger than the limit"),
        (_headers(Transfer_Encoding="chunked"), ok, 411, "chunked"),
        (_headers(Content_Type="application/json"), ok, 411, "Content-Length header is required"),
        (_headers(Content_Length="11", Content_Type="text/plain"), ok, 415, "Content-Type: application/json"),
        (_headers(Content_Length="20", Content_Type="application/json"), ok, 400, "shorter than its Content"),
        (_headers(Content_Length="3", Content_Type="application/json"), b"[1]", 400, "must be a JSON object"),
    ]
    for headers, raw, status, words in cases:
        with pytest.raises(ApiError, match=words) as e:
            read_json(headers, io.BytesIO(raw), 100, 8, 1.0)
        assert e.value.status == status


def test_shared_fields_say_what_and_where(web_pipe):
    lim = Limits(psi_min=0.0, psi_max=1.0)
    assert generation_options({"psi": 0.5, "cutoff": 2}, web_pipe, lim) == {
        "truncation_psi": 0.5, "noise_mode": "const", "truncation_cutoff": 2}
    with pytest.raises(ApiError, match=r"psi: must be a number in \[0, 1\], got 2"):
        generation_options({"psi": 2}, web_pipe, lim)
    with pytest.raises(ApiError, match="this model is unconditional"):
        generation_options({"class_idx": 0}, web_pipe, lim)
    assert walk_fields({"seeds": [1, 2], "frames": 3, "loop": True}, 4, 10) == ([1, 2], 3, True, 7)
    with pytest.raises(ApiError, match="makes 7 frames; at most 6 are allowed"):
        walk_fields({"seeds": [1, 2], "frames": 3, "loop": True}, 4, 6)
    with pytest.raises(ApiError, match=r'loop: must be true or false, got "xxxxxxxxxxxxxxxxxxx$'):
        walk_fields({"seeds": [1, 2], "loop": "x" * 50}, 4, 10)  # at most 20 characters of the value
