"""Hostile requests to the explorer server on 127.0.0.1: 400 for every malformed request, 503 with
Retry-After when busy (never a reset), bounded memory, loopback by default."""

from __future__ import annotations

import json
import resource
import socket
import threading
import time

import pytest
from surface_kit import Running, post, raw_http
from testkit import make_tiny, one_thread

from flowergan.inference import Pipeline
from flowergan.web import Limits, make_server

_one_thread = pytest.fixture(autouse=True)(one_thread)


@pytest.fixture(scope="module")
def pipe() -> Pipeline:
    return Pipeline(make_tiny()[1])


@pytest.fixture(scope="module")
def server(pipe):
    running = Running(pipe, Limits(request_timeout_s=2.0))
    yield running
    running.stop()


def ask(server, path: str, body: bytes, headers: dict | None = None) -> tuple[int, dict, dict]:
    status, hdrs, data = raw_http(server.port, post(path, body, headers))
    return status, hdrs, json.loads(data)


@pytest.mark.parametrize("body, words", [
    (b'{"seed": ' + b"9" * 5000 + b"}", ["5000 digits", "at most 20"]),
    (b'{"seed": ' + b"[" * 5000 + b"]" * 5000 + b"}", ["nests", "8 deep"]),
    (b'{"seed": 1, "psi": NaN}', ["NaN", "finite"]),
    (b'{"seed": 1, "psi": 1e999}', ["too large"]),
    (b'{"seed": 1, "psi": -Infinity}', ["-Infinity", "finite"]),
    (b'{"seed": "5"}', ["seed", "integer in [0, 4294967295]"]),
    (b'{"seed": true}', ["seed", "integer"]),
    (b'{"seed": 1.5}', ["seed", "integer"]),
    (b'{"seeds": {"a": 1}}', ["seeds", "list"]),
    (b'{"seed": 1, "psi": "0.5"}', ["psi", "number in [-1, 2]"]),
    (b'{"seed": 1, "bogus": 2}', ["unknown field", "bogus"]),
    (b'{"seed": 1', ["not valid JSON"]),
    (b'\xff\xfe{"seed": 1}', ["not UTF-8"]),
    (b'[1, 2]', ["JSON object"]),
])
def test_malformed_body_gets_400(server, body, words):
    status, _, out = ask(server, "/api/generate", body)
    assert status == 400, out
    for w in words:
        assert w in out["error"], (w, out["error"])


@pytest.mark.parametrize("length, status, word", [
    ("abc", 400, "Content-Length"), ("-1", 400, "Content-Length"), ("+5", 400, "Content-Length"),
    ("9" * 30, 400, "Content-Length"), ("1e3", 400, "Content-Length"), (None, 411, "Content-Length"),
    ("20000", 413, "larger than the limit"),
])
def test_bad_content_length(server, length, status, word):
    got, _, out = ask(server, "/api/generate", b'{"seed": 1}', {"Content-Length": length})
    assert got == status and word in out["error"], out


def test_conflicting_or_short_content_length(server):
    req = post("/api/generate", b'{"seed": 1}').replace(b"Connection: close", b"Content-Length: 12")
    status, _, out = raw_http(server.port, req)
    assert status == 400 and "one whole number" in json.loads(out)["error"]
    req = post("/api/generate", b'{"seed": 1}', {"Content-Length": "200"})  # 11 bytes sent, then silence
    t0 = time.perf_counter()
    status, _, out = raw_http(server.port, req)
    assert status == 400 and "shorter than its Content-Length of 200" in json.loads(out)["error"]
    assert time.perf_counter() - t0 < 8  # the request timeout (2 s here), not forever


def test_huge_style_range_is_refused_before_work(server):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    body = {"row_seed": 1, "col_seed": 2, "styles": "0-20000000"}
    status, _, out = ask(server, "/api/mix", json.dumps(body).encode())
    assert status == 400 and "[0, 7]" in out["error"]
    assert time.perf_counter() - t0 < 2
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024  # ru_maxrss is in KiB
    # the old parser built a 20M-entry list (~800 MB)
    assert grown_mb < 50, f"peak memory grew by {grown_mb:.0f} MB"


def test_well_formed_request_still_works(server):
    status, _, out = ask(server, "/api/generate", b'{"seed": 3, "psi": 0.7}')
    assert status == 200 and len(out["images"]) == 1


def test_open_connection_cap_answers_503_with_retry_after(pipe):
    running = Running(pipe, Limits(max_connections=4, request_timeout_s=5.0))
    idle = []
    try:
        for _ in range(4):  # hold every slot with an idle connection
            idle.append(socket.create_connection(("127.0.0.1", running.port), timeout=10))
        deadline = time.time() + 5
        while running.server.open_connections < 4 and time.time() < deadline:
            time.sleep(0.01)
        status, hdrs, data = raw_http(running.port, b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert status == 503 and hdrs["retry-after"] and "busy" in json.loads(data)["error"]
        for s in idle:
            s.close()
        deadline = time.time() + 5
        while running.server.open_connections and time.time() < deadline:
            time.sleep(0.01)
        req = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        status, _, _ = raw_http(running.port, req)
        assert status == 200
    finally:
        for s in idle:
            s.close()
        running.stop()


def test_200_simultaneous_requests_are_all_answered(pipe):
    running = Running(pipe, Limits(max_connections=16, queue_size=2))
    n = 200
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def client(i: int) -> None:
        body = json.dumps({"seed": i}).encode()
        req = (post("/api/generate", body) if i % 2 else
               b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        barrier.wait(30)
        try:
            status, hdrs, _ = raw_http(running.port, req, timeout=60)
            results[i] = status if status != 503 or hdrs.get("retry-after") else "503 without Retry-After"
        except OSError as e:  # a reset, refusal or timeout: the failure this test is about
            results[i] = repr(e)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        running.stop()
    bad = [r for r in results if r not in (200, 503)]
    assert not bad, f"{len(bad)} of {n} not answered 200/503: {bad[:5]}"
    assert results.count(200) >= 2  # some got through; the rest were told to retry


def test_loopback_by_default(pipe):
    server = make_server(pipe, port=0)
    try:
        assert server.server_address[0] == "127.0.0.1" and server.loopback_only
        assert server.request_queue_size == Limits().backlog >= 200
    finally:
        server.server_close()
