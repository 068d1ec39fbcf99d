"""The explorer's JSON API over real HTTP (urllib): results, validation errors, busy/timeout handling."""

from __future__ import annotations

import base64
import http.client
import io
import json
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import PIL.Image
import pytest
from web_testkit import Running, tiny_pipeline

from flowergan.web import Limits, is_loopback


def call(url: str, path: str, body=None, headers=None, raw: bytes | None = None):
    """-> (status, parsed JSON or bytes, headers)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    h = {"Content-Type": "application/json"} if data is not None else {}
    h.update(headers or {})
    method = "POST" if data is not None else "GET"
    req = urllib.request.Request(url.rstrip("/") + path, data=data, headers=h, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, payload, hdrs = r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        status, payload, hdrs = e.code, e.read(), e.headers
    if (hdrs.get("Content-Type") or "").startswith("application/json"):
        payload = json.loads(payload)
    return status, payload, hdrs


def decode(data_url: str) -> np.ndarray:
    assert data_url.startswith("data:image/png;base64,")
    with PIL.Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))) as im:
        return np.asarray(im.convert("RGB"))


def test_info_and_page(server):
    status, info, _ = call(server.url, "/api/info")
    assert status == 200
    assert info["resolution"] == 32 and info["num_ws"] == 8 and info["c_dim"] == 0
    assert info["style_ranges"]["coarse"] == [0, 1, 2] and info["limits"]["max_frames"] == 64
    status, page, hdrs = call(server.url, "/")
    assert status == 200 and b"flowergan explorer" in page
    assert "default-src 'self'" in hdrs["Content-Security-Policy"]
    for name in ("app.js", "style.css"):
        assert call(server.url, f"/static/{name}")[0] == 200


def test_generate_returns_the_pipeline_images(server, web_pipe):
    status, out, _ = call(server.url, "/api/generate", {"seed": 5, "psi": 0.7})
    assert status == 200 and out["seeds"] == [5]
    np.testing.assert_array_equal(decode(out["images"][0]), web_pipe.generate([5], truncation_psi=0.7)[0])
    status, out, _ = call(server.url, "/api/generate", {"seeds": [1, 2, 3], "noise_mode": "random"})
    assert status == 200 and len(out["images"]) == 3
    np.testing.assert_array_equal(decode(out["images"][2]), web_pipe.generate([3], noise_mode="random")[0])


def test_mix_and_interpolate(server, web_pipe):
    status, out, _ = call(server.url, "/api/mix", {"row_seed": 1, "col_seed": 2, "styles": "all"})
    assert status == 200 and out["styles"] == list(range(8))
    np.testing.assert_array_equal(decode(out["mix_image"]), decode(out["col_image"]))
    status, out, _ = call(server.url, "/api/mix", {"row_seed": 1, "col_seed": 2, "styles": "none"})
    np.testing.assert_array_equal(decode(out["mix_image"]), decode(out["row_image"]))
    status, out, _ = call(server.url, "/api/interpolate", {"seeds": [1, 2], "frames": 4, "space": "w"})
    assert status == 200 and len(out["frames"]) == 5
    np.testing.assert_array_equal(decode(out["frames"][-1]), web_pipe.generate([2])[0])


@pytest.mark.parametrize("path,body,field,allowed", [
    ("/api/generate", {"seed": -1}, "seed", "[0, 4294967295]"),
    ("/api/generate", {"seed": 2**32}, "seed", "[0, 4294967295]"),
    ("/api/generate", {"seed": "7"}, "seed", "integer"),
    ("/api/generate", {"seed": True}, "seed", "integer"),
    ("/api/generate", {"seed": 1, "psi": 2.5}, "psi", "[-1, 2]"),
    ("/api/generate", {"seed": 1, "psi": "nan"}, "psi", "[-1, 2]"),
    ("/api/generate", {"seed": 1, "noise_mode": "loud"}, "noise_mode", "one of const, random, none"),
    ("/api/generate", {"seeds": list(range(17))}, "seeds", "1 to 16"),
    ("/api/generate", {"seed": 1, "seeds": [2]}, "exactly one of seed", "seeds"),
    ("/api/generate", {"seed": 1, "path": "/etc/passwd"}, 'unknown field(s) "path"', "allowed fields"),
    ("/api/generate", {"seed": 1, "class_idx": 0}, "class_idx", "unconditional"),
    ("/api/mix", {"row_seed": 1, "col_seed": 2, "styles": "0-12"}, "styles", "[0, 7]"),
    ("/api/mix", {"row_seed": 1, "styles": "coarse"}, "col_seed", "required"),
    ("/api/interpolate", {"seeds": [1], "frames": 4}, "seeds", "2 to 8"),
    ("/api/interpolate", {"seeds": [1, 2], "frames": 65}, "frames", "[1, 64]"),
    ("/api/interpolate", {"seeds": [1, 2, 3], "frames": 40}, "frames", "at most 64"),
    ("/api/interpolate", {"seeds": [1, 2], "space": "x"}, "space", "one of z, w"),
])
def test_bad_inputs_get_400_naming_field_and_range(server, path, body, field, allowed):
    status, out, _ = call(server.url, path, body)
    assert status == 400, out
    assert field in out["error"] and allowed in out["error"], out["error"]


def test_malformed_requests(server):
    status, out, _ = call(server.url, "/api/generate", raw=b"{not json")
    assert status == 400 and "not valid JSON" in out["error"]
    status, out, _ = call(server.url, "/api/generate", raw=b"[1, 2]")
    assert status == 400 and "JSON object" in out["error"]
    status, out, _ = call(server.url, "/api/generate", raw=b"seed=1", headers={"Content-Type": "text/plain"})
    assert status == 415 and "application/json" in out["error"]
    status, out, _ = call(server.url, "/api/generate", raw=b"{" + b" " * 20000 + b"}")
    assert status == 413 and "larger than the limit" in out["error"]
    status, out, _ = call(server.url, "/api/nope", {"seed": 1})
    assert status == 404 and "/api/generate" in out["error"]
    assert call(server.url, "/static/..%2f..%2fserver.py")[0] == 404
    assert call(server.url, "/static/../server.py")[0] == 404


def test_foreign_host_header_is_refused(server):
    host, port = server.server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", "/api/info", headers={"Host": f"evil.example:{port}"})
    r = conn.getresponse()
    assert r.status == 403 and "localhost" in json.loads(r.read())["error"]
    conn.close()


def test_loopback_detection():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2") and not is_loopback("example.com")


class _Blocking:
    """Wraps a pipeline so that generate() waits until released (to fill the queue deterministically)."""

    def __init__(self, pipe):
        self._pipe, self.started, self.release = pipe, threading.Event(), threading.Event()

    def __getattr__(self, name):
        return getattr(self._pipe, name)

    def generate(self, *args, **kwargs):
        self.started.set()
        self.release.wait(20)
        return self._pipe.generate(*args, **kwargs)


def test_full_queue_answers_503_and_server_stays_responsive():
    pipe = _Blocking(tiny_pipeline())
    running = Running(pipe, Limits(queue_size=1, timeout_s=30))
    results = []
    try:
        def bg(seed):
            results.append(call(running.url, "/api/generate", {"seed": seed})[0])

        t1 = threading.Thread(target=bg, args=(1,))
        t1.start()
        assert pipe.started.wait(10)                      # request 1 is running (blocked)
        t2 = threading.Thread(target=bg, args=(2,))
        t2.start()
        deadline = time.time() + 10
        while running.server.worker._q.qsize() < 1 and time.time() < deadline:
            time.sleep(0.01)                              # request 2 is waiting in the queue
        status, out, hdrs = call(running.url, "/api/generate", {"seed": 3})
        assert status == 503 and "busy" in out["error"] and hdrs["Retry-After"]
        t0 = time.perf_counter()
        assert call(running.url, "/api/info")[0] == 200   # non-generation requests still answered at once
        assert time.perf_counter() - t0 < 2
        pipe.release.set()
        t1.join(20)
        t2.join(20)
        assert sorted(results) == [200, 200]
    finally:
        pipe.release.set()
        running.stop()


def test_slow_generation_times_out_with_504():
    pipe = _Blocking(tiny_pipeline())
    running = Running(pipe, Limits(timeout_s=0.3))
    try:
        status, out, _ = call(running.url, "/api/generate", {"seed": 1})
        assert status == 504 and "0.3 s" in out["error"]
    finally:
        pipe.release.set()
        running.stop()


def test_conditional_model_class_validation():
    running = Running(tiny_pipeline(c_dim=3))
    try:
        status, out, _ = call(running.url, "/api/generate", {"seed": 1})
        assert status == 400 and "class_idx" in out["error"] and "[0, 2]" in out["error"]
        status, out, _ = call(running.url, "/api/generate", {"seed": 1, "class_idx": 3})
        assert status == 400 and "[0, 2]" in out["error"]
        status, out, _ = call(running.url, "/api/generate", {"seed": 1, "class_idx": 2})
        assert status == 200 and len(out["images"]) == 1
    finally:
        running.stop()


def test_serve_cli_warns_off_loopback_and_passes_limits(monkeypatch, tmp_path):
    from click.testing import CliRunner

    import flowergan.web
    from flowergan.cli.main import cli
    from flowergan.networks import build_networks
    from flowergan.networks.store import write_model_dir

    cfg = flowergan.config.preset("tiny")
    G, D = build_networks(cfg, seed=0)
    write_model_dir(tmp_path / "m", cfg, {"G": G, "G_ema": G, "D": D})
    seen = {}

    class FakeServer:
        url = "http://0.0.0.0:8123/"

        def serve_forever(self):
            raise KeyboardInterrupt

        def server_close(self):
            seen["closed"] = True

    def fake_make_server(pipe, host, port, limits):
        seen.update(host=host, port=port, limits=limits, res=pipe.resolution)
        return FakeServer()

    monkeypatch.setattr(flowergan.web, "make_server", fake_make_server)
    res = CliRunner().invoke(cli, ["serve", "--network", str(tmp_path / "m"), "--host", "0.0.0.0",
                                   "--port", "8123", "--max-frames", "20", "--queue-size", "2",
                                   "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "WARNING: binding to 0.0.0.0" in res.output and "no authentication" in res.output
    assert seen["host"] == "0.0.0.0" and seen["port"] == 8123 and seen["res"] == 32 and seen["closed"]
    assert seen["limits"].max_frames == 20 and seen["limits"].queue_size == 2
    res = CliRunner().invoke(cli, ["serve", "--network", str(tmp_path / "m"), "--device", "cpu"])
    assert "WARNING" not in res.output
