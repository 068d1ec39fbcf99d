"""Helpers for the hostile-input tests of the commands and the web server: a tiny model on disk, a CLI
runner that checks the one-line failure contract, an address-space cap, and raw HTTP over a socket."""

from __future__ import annotations

import contextlib
import resource
import socket
import sys
from pathlib import Path

from click.testing import CliRunner
from testkit import make_tiny

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))
from web_testkit import Running  # noqa: E402,F401  (the one server-in-a-thread helper, re-exported)

from flowergan.cli.main import cli
from flowergan.networks.store import write_model_dir


def write_tiny(folder: Path, c_dim: int = 0) -> Path:
    cfg, G, D = make_tiny(c_dim)
    return write_model_dir(folder, cfg, {"G": G, "G_ema": G, "D": D})


def run(args: list[str], env: dict[str, str] | None = None):
    """Invoke `flowergan ARGS` in-process; exceptions that escape click are kept in `res.exception`."""
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=True)


def fails(res, code: int, *words: str) -> str:
    """Assert a classified failure: exit status `code`, one 'Error:' line holding `words`, no traceback."""
    out = res.output
    assert res.exit_code == code, (res.exit_code, out, repr(res.exception))
    assert isinstance(res.exception, SystemExit), f"escaped click: {res.exception!r}"  # handled, not a crash
    assert "Traceback" not in out, out
    errors = [line for line in out.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, out
    for w in words:
        assert w in errors[0], (w, errors[0])
    return errors[0]


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in Path(path).rglob("*") if p.is_file()) if Path(path).exists() else []


def _vm_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


@contextlib.contextmanager
def address_space_cap(extra_mb: int):
    """Let this process map at most `extra_mb` more MB while inside the block (RLIMIT_AS), so a test of an
    input that used to allocate gigabytes fails with MemoryError instead of swapping the machine."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _vm_bytes() + extra_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def raw_http(port: int, data: bytes, timeout: float = 20.0, half_close: bool = False) -> tuple[int, dict, bytes]:
    """Send raw bytes to 127.0.0.1:port, read the whole answer -> (status, headers, body).

    Raises ConnectionResetError (and friends) if the server resets the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed before an answer: {buf[:200]!r}")
            buf += chunk
        head, body = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
        n = int(headers.get("content-length", "0"))
        while len(body) < n:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
    return status, headers, body


def post(path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    """A raw POST request with Content-Type JSON and the right Content-Length unless `headers` says otherwise."""
    h = {"Host": "127.0.0.1", "Content-Type": "application/json", "Content-Length": str(len(body)),
         "Connection": "close"}
    h.update(headers or {})
    lines = [f"POST {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in h.items() if v is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
