"""Oxford 102 download path against a local 127.0.0.1 server: resume, servers ignoring Range, drops, checksums,
offline message, and `prepare oxford102` end to end. Never touches the internet."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from data_testkit import make_oxford_tgz

from flowergan.data.download import DownloadError, download_file, fetch_oxford102


class FileServer:
    """Serves `files` (name -> bytes) with HTTP Range support; records each request's Range and bytes sent."""

    def __init__(self, files: dict[str, bytes], ignore_range: bool = False, drop_first_after: int | None = None):
        self.files, self.ignore_range, self.drop_after = files, ignore_range, drop_first_after
        self.log: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                data = outer.files.get(name)
                rng = self.headers.get("Range")
                entry = {"name": name, "range": rng, "sent": 0}
                outer.log.append(entry)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                if rng and not outer.ignore_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if outer.drop_after is not None and len(outer.log) == 1:
                    body = body[: outer.drop_after]  # promise everything, send part, hang up
                self.wfile.write(body)
                entry["sent"] = len(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/files/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


PAYLOAD = np.random.default_rng(0).bytes(300_000)
MD5 = hashlib.md5(PAYLOAD).hexdigest()


def test_resume_requests_only_the_missing_bytes(tmp_path):
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD[:100_000])
    with FileServer({"f.bin": PAYLOAD}) as srv:
        download_file(srv.url + "f.bin", dest, md5=MD5, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert srv.log == [{"name": "f.bin", "range": "bytes=100000-", "sent": 200_000}]
    assert not (tmp_path / "f.bin.part").exists()


def test_server_ignoring_range_restarts_cleanly(tmp_path):
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(b"garbage" * 1000)
    with FileServer({"f.bin": PAYLOAD}, ignore_range=True) as srv:
        download_file(srv.url + "f.bin", dest, md5=MD5, progress=False)
    assert dest.read_bytes() == PAYLOAD and srv.log[0]["sent"] == len(PAYLOAD)


def test_dropped_connection_resumes_automatically(tmp_path):
    dest = tmp_path / "f.bin"
    with FileServer({"f.bin": PAYLOAD}, drop_first_after=70_000) as srv:
        download_file(srv.url + "f.bin", dest, md5=MD5, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert [e["range"] for e in srv.log] == [None, "bytes=70000-"]


def test_checksum_mismatch_deletes_the_download(tmp_path):
    dest = tmp_path / "f.bin"
    with FileServer({"f.bin": PAYLOAD}) as srv, pytest.raises(DownloadError, match="checksum mismatch.*deleted"):
        download_file(srv.url + "f.bin", dest, md5="0" * 32, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_offline_gives_the_manual_route(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(DownloadError) as e:
        fetch_oxford102(tmp_path, base_url=f"http://127.0.0.1:{port}/", progress=False)
    msg = str(e.value)
    assert "offline" in msg and "102flowers.tgz" in msg and "--labels imagelabels.mat" in msg


def test_404_names_the_url(tmp_path):
    with FileServer({}) as srv, pytest.raises(DownloadError, match="HTTP 404"):
        download_file(srv.url + "nope.tgz", tmp_path / "nope.tgz", progress=False)


def _oxford_files(tmp_path: Path, labels):
    tmp_path.mkdir(parents=True, exist_ok=True)
    tgz, mat = make_oxford_tgz(tmp_path, labels)
    return {"102flowers.tgz": tgz.read_bytes(), "imagelabels.mat": mat.read_bytes()}


def test_prepare_oxford102_end_to_end(tmp_path, monkeypatch):
    from flowergan.cli.main import cli

    labels = [10, 2, 102, 1, 55]
    files = _oxford_files(tmp_path / "fixture", labels)
    sums = ",".join(f"{k}={hashlib.md5(v).hexdigest()}" for k, v in files.items())
    monkeypatch.setenv("FLOWERGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FLOWERGAN_OXFORD102_MD5", sums)
    out = tmp_path / "ox.zip"
    with FileServer(files) as srv:
        monkeypatch.setenv("FLOWERGAN_OXFORD102_URL", srv.url)
        args = ["prepare", "oxford102", "--out", str(out), "--resolution", "32", "--workers", "1", "--no-progress"]
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 0, r.output
        assert sorted(e["name"] for e in srv.log) == ["102flowers.tgz", "imagelabels.mat"]
        got = json.loads(zipfile.ZipFile(out).read("dataset.json"))["labels"]
        assert [c for _, c in got] == [c - 1 for c in labels]
        assert (tmp_path / "cache" / "oxford102" / "102flowers.tgz").read_bytes() == files["102flowers.tgz"]
        r = CliRunner().invoke(cli, args + ["--overwrite"])  # second run: from the cache, no new requests
        assert r.exit_code == 0, r.output
        assert len(srv.log) == 2
        # without the test checksums, the real md5 of 102flowers.tgz is enforced and the fixture is refused
        monkeypatch.delenv("FLOWERGAN_OXFORD102_MD5")
        r = CliRunner().invoke(cli, args[:3] + [str(tmp_path / "other.zip")] + args[4:])
        assert r.exit_code != 0 and "checksum mismatch" in r.output
        assert not (tmp_path / "other.zip").exists()
