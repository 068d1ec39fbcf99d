"""Round 3, the explorer: direction keys that str.isdigit accepts but int() does not, a photo whose PNG header
claims 10 gigapixels, and a model whose images are not finite get a 4xx/5xx with one line, and the server's
terminal shows no traceback."""

from __future__ import annotations

import base64
import json
import logging

import pytest
import torch
from hostile3_kit import png_claiming
from surface_kit import Running, post, raw_http
from testkit import make_tiny, one_thread

from flowergan.inference import Pipeline
from flowergan.inference.directions import find_directions

_one_thread = pytest.fixture(autouse=True)(one_thread)


@pytest.fixture(scope="module")
def server():
    from flowergan.web import make_server

    pipe = Pipeline(make_tiny()[1])
    srv = Running.__new__(Running)
    srv.server = make_server(pipe, "127.0.0.1", 0, directions=[("s", find_directions(pipe.G, "sefa", "all", 3,
                                                                                     samples=300))])
    srv.url, srv.port = srv.server.url, srv.server.server_address[1]
    import threading

    srv.thread = threading.Thread(target=srv.server.serve_forever, kwargs={"poll_interval": 0.05},
                                  daemon=True)
    srv.thread.start()
    yield srv
    srv.stop()


def _ask(port: int, path: str, body: dict) -> tuple[int, str]:
    status, _, out = raw_http(port, post(path, json.dumps(body).encode()))
    return status, json.loads(out)["error"] if status >= 400 else ""


def _quiet(caplog, capfd) -> None:
    """Nothing logged with a traceback, nothing printed to the terminal with one."""
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err, err


@pytest.mark.parametrize("key", ["²", "٣", "9" * 5000, "1" * 7, " 1", "-1", "01x"])
def test_edit_with_a_malformed_direction_key_is_400(server, key, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    status, error = _ask(server.port, "/api/edit", {"seed": 1, "set": "s", "values": {key: 1.0}})
    assert status == 400 and "must be a direction index in [0, 2]" in error and "\n" not in error
    _quiet(caplog, capfd)
    status, _ = _ask(server.port, "/api/edit", {"seed": 1, "set": "s", "values": {"2": 1.0}})  # still serving
    assert status == 200


@pytest.mark.parametrize("size,status", [((100_000, 100_000), 413), ((12_000, 12_000), 413), ((0, 5), 400)])
def test_project_photo_is_size_checked_from_its_header(server, size, status, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    url = "data:image/png;base64," + base64.b64encode(png_claiming(*size)).decode()
    got, error = _ask(server.port, "/api/project", {"image": url, "steps": 2})
    assert got == status and "image" in error and "\n" not in error, (got, error)
    if status == 413:
        assert f"{size[0]*size[1]:,} pixels" in error
    _quiet(caplog, capfd)


def test_non_finite_images_are_an_error_not_a_png(caplog, capfd):
    caplog.set_level(logging.DEBUG)
    G = make_tiny()[1]
    with torch.no_grad():  # finite weights whose image overflows to infinity
        G.synthesis.b32.torgb.weight.mul_(1e38)
        G.synthesis.b32.torgb.affine.bias.fill_(1e38)
    srv = Running(Pipeline(G))
    try:
        status, error = _ask(srv.port, "/api/generate", {"seed": 1})
    finally:
        srv.stop()
    assert status == 500 and "NaN or infinite" in error and "\n" not in error
    _quiet(caplog, capfd)
