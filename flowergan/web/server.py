"""The local model explorer: a standard-library ThreadingHTTPServer serving a static page and a small
JSON API. All generation runs on one worker thread behind a bounded queue, so a burst of requests
is answered 503 instead of piling up, and every request waits at most `Limits.timeout_s`. A photo projection
(minutes) runs on a second worker of its own, so the other panels are served while it runs (the projector
works on its own copy of the generator and its own random generator). Open
connections are capped too (more get 503 with Retry-After, never a reset), request bodies are bounded in
bytes, nesting and number length, and every size a request asks for is checked (flowergan.bounds) before
any work, so no request can make the server allocate without bound.

Endpoints (JSON in and out; errors are 4xx/5xx with {"error": "..."} naming the field and its range):
  GET  /api/info          model facts, named style ranges and the limits below
  POST /api/generate      {"seed" | "seeds", "psi", "noise_mode", "class_idx"} -> {"images": [PNG data URLs]}
  POST /api/mix           {"row_seed", "col_seed", "styles", "psi", "noise_mode", "class_idx"} -> 3 images
  POST /api/interpolate   {"seeds", "frames", "space", "loop", "psi", "noise_mode", "class_idx"} -> frames
  (every generation request also takes "cutoff": truncate only the first N ws; generate takes "grid": true)
  editing, walk downloads and photo projection: see edit_api.py
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import logging
import queue
import re
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from flowergan.bounds import MAX_INT_DIGITS, PSI_RANGE
from flowergan.inference.api import NOISE_MODES, SPACES, Pipeline
from flowergan.inference.images import png_bytes
from flowergan.inference.latents import MAX_SEED, parse_styles
from flowergan.infra import NonFiniteImageError
from flowergan.web.edit_api import EditApi, EditLimits

log = logging.getLogger(__name__)

__all__ = ["Limits", "ExplorerServer", "make_server", "is_loopback"]

_STATIC_NAME = re.compile(r"^[a-z0-9_-]+\.(html|js|css|svg|png)$")
_CONTENT_TYPES = {"html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8",
                  "css": "text/css; charset=utf-8", "svg": "image/svg+xml", "png": "image/png"}
_CSP = ("default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


@dataclass(frozen=True)
class Limits:
    """What one request may ask for, and how long it may take."""

    max_batch: int = 16           # seeds per /api/generate request
    max_frames: int = 64          # total frames per /api/interpolate request
    max_walk_seeds: int = 8       # seeds per walk
    psi_min: float = PSI_RANGE[0]
    psi_max: float = PSI_RANGE[1]
    queue_size: int = 4           # generation requests waiting behind the running one
    timeout_s: float = 60.0       # a request gets 504 when its generation has not finished by then
    max_body: int = 16384         # bytes of JSON per request
    max_depth: int = 8            # nesting of JSON arrays/objects per request
    max_connections: int = 64     # open connections served at once; more are answered 503 and closed
    backlog: int = 256            # connections the OS queues before accept (the listen backlog)
    request_timeout_s: float = 10.0  # seconds a client may take to send a request (or stay idle)


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class Busy(Exception):
    """The generation queue is full."""


class GenerationWorker:
    """One thread running submitted jobs in order; `submit` raises Busy when `queue_size` jobs are waiting."""

    def __init__(self, queue_size: int, name: str = "flowergan-generate"):
        self._q: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], Any]) -> Future:
        fut: Future = Future()
        try:
            self._q.put_nowait((fn, fut))
        except queue.Full:
            raise Busy from None
        return fut

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                fn, fut = self._q.get(timeout=0.2)
            except queue.Empty:
                continue
            if not fut.set_running_or_notify_cancel():
                continue  # the request timed out (or went away) before its turn
            try:
                fut.set_result(fn())
            except BaseException as e:  # noqa: BLE001 - handed to the waiting request
                fut.set_exception(e)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _data_url(image) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


# ---- input validation --------------------------------------------------------------------------
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")
_LENGTH = re.compile(rf"\d{{1,{MAX_INT_DIGITS}}}", re.ASCII)


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ApiError(400, f"a number with {len(text)} digits: integers have at most {MAX_INT_DIGITS} digits here")
    return int(text)


def _json_float(text: str) -> float:
    v = float(text)
    if v in (float("inf"), float("-inf")):
        raise ApiError(400, f"the number {text[:30]} is too large (it is infinite as a float)")
    return v


def _json_constant(name: str):
    raise ApiError(400, f"{name} is not allowed: numbers must be finite")


def parse_body(raw: bytes, max_depth: int) -> Any:
    """A request body as JSON, refused (ApiError 400) when not UTF-8 JSON, nested deeper than `max_depth`,
    or holding over-long integers, NaN or infinities (all checked without recursion or big allocations)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ApiError(400, f"the request body is not UTF-8 text ({e.reason} at byte {e.start})") from None
    depth = 0
    for b in _BRACKETS.findall(_STRINGS.sub("", text)):
        depth += 1 if b in "[{" else -1
        if depth > max_depth:
            raise ApiError(400, f"the request body nests arrays/objects more than {max_depth} deep")
    try:
        return json.loads(text or "{}", parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant)
    except (ValueError, RecursionError) as e:
        raise ApiError(400, f"the request body is not valid JSON ({str(e)[:120]})") from None


def _words(items) -> str:
    """['a', 'b'] -> "a, b" (messages are read by people: no Python list reprs)."""
    return ", ".join(str(i) for i in items)


def _check_keys(body: dict, allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(400, f"unknown field(s) {_words(json.dumps(k)[:40] for k in unknown)}; the allowed fields are "
                            f"{_words(sorted(allowed))}")


def _int(body: dict, key: str, lo: int, hi: int, default: Any = ...) -> int:
    if key not in body or body[key] is None:
        if default is ...:
            raise ApiError(400, f"{key}: required, an integer in [{lo}, {hi}]")
        return default
    v = body[key]
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ApiError(400, f"{key}: must be an integer in [{lo}, {hi}], got {json.dumps(v)}")
    return v


def _float(body: dict, key: str, lo: float, hi: float, default: float) -> float:
    v = body.get(key, default)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        raise ApiError(400, f"{key}: must be a number in [{lo:g}, {hi:g}], got {json.dumps(v)}")
    return float(v)


def _choice(body: dict, key: str, choices: tuple[str, ...], default: str) -> str:
    v = body.get(key, default)
    if v not in choices:
        raise ApiError(400, f"{key}: must be one of {_words(choices)}, got {json.dumps(v)[:40]}")
    return v


def _seed_list(body: dict, key: str, lo_count: int, hi_count: int) -> list[int]:
    v = body.get(key)
    if not isinstance(v, list) or not lo_count <= len(v) <= hi_count:
        raise ApiError(400, f"{key}: must be a list of {lo_count} to {hi_count} integers in [0, {MAX_SEED}], "
                            f"got {json.dumps(v)[:80]}")
    for s in v:
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED:
            raise ApiError(400, f"{key}: every seed must be an integer in [0, {MAX_SEED}], got {json.dumps(s)}")
    return v


class ExplorerServer(ThreadingHTTPServer):
    """The HTTP server; `pipe` is used from the generation worker thread, and read (copied) by the projection
    worker's projector."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], pipe: Pipeline, limits: Limits = Limits(),
                 edit_limits: EditLimits = EditLimits(), directions: list | tuple = ()):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.pipe, self.limits = pipe, limits
        self.request_queue_size = limits.backlog
        self.loopback_only = is_loopback(address[0])
        self._conn_lock = threading.Lock()
        self.open_connections = self._refusing = 0
        self.refused = 0  # connections answered 503 because max_connections were open
        self.edit = EditApi(self, edit_limits, directions)  # validates the direction files before binding
        self.worker = GenerationWorker(limits.queue_size)
        self.project_worker = GenerationWorker(1, name="flowergan-project")  # one projection at a time
        try:
            super().__init__(address, ExplorerHandler)
        except BaseException:
            self.worker.stop()
            self.project_worker.stop()
            raise

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/"

    def server_close(self) -> None:
        super().server_close()
        self.worker.stop()
        self.project_worker.stop()

    # ---- connections: a cap, 503 beyond it, and closes that never reset the client ---------------
    def process_request(self, request, client_address) -> None:
        with self._conn_lock:
            serve = self.open_connections < self.limits.max_connections
            spare = not serve and self._refusing < self.limits.max_connections
            if serve:
                self.open_connections += 1
            else:
                self.refused += 1
                self._refusing += spare
        if serve:
            return super().process_request(request, client_address)  # a handler thread
        if spare:  # answer 503 on a short-lived thread; with those also all busy, here (briefly)
            threading.Thread(target=self._refuse, args=(request, True), daemon=True).start()
        else:
            self._refuse(request, False)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._conn_lock:
                self.open_connections -= 1

    def _refuse(self, request, counted: bool) -> None:
        """503 + Retry-After on a connection over the cap, after reading what the client sent."""
        try:
            request.settimeout(0.25)
            with contextlib.suppress(OSError):
                request.recv(65536)
            body = json.dumps({"error": f"the server is busy: {self.limits.max_connections} connections are "
                                        f"open; retry in a moment"}).encode()
            head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\n"
                    f"Content-Length: {len(body)}\r\nRetry-After: 2\r\nConnection: close\r\n\r\n").encode()
            with contextlib.suppress(OSError):
                request.sendall(head + body)
            self.shutdown_request(request, linger_s=0.25)
        finally:
            if counted:
                with self._conn_lock:
                    self._refusing -= 1

    def shutdown_request(self, request, linger_s: float = 1.0) -> None:
        """Close after the client has read the answer: half-close, then drain (<= 1 MiB, `linger_s`) until the
        client closes; closing with unread input would make the kernel reset the connection instead."""
        with contextlib.suppress(OSError):
            request.shutdown(socket.SHUT_WR)
            request.settimeout(linger_s)
            drained = 0
            while drained < 2**20:
                chunk = request.recv(65536)
                if not chunk:
                    break
                drained += len(chunk)
        self.close_request(request)

    def handle_error(self, request, client_address) -> None:
        """A connection failed (client gone, timeout): log it quietly and keep serving."""
        log.debug("connection from %s failed", client_address, exc_info=True)

    # ---- the API (runs in handler threads; generation is handed to the worker) ------------------
    def run(self, fn: Callable[[], Any]) -> Any:
        try:
            fut = self.worker.submit(fn)
        except Busy:
            raise ApiError(503, f"the server is busy: {self.limits.queue_size} generation request(s) are already "
                                f"waiting; retry in a moment") from None
        try:
            return fut.result(timeout=self.limits.timeout_s)
        except FutureTimeout:
            fut.cancel()
            raise ApiError(504, f"generation did not finish within {self.limits.timeout_s:g} s; ask for fewer "
                                f"images or frames") from None
        except ValueError as e:  # the library's validation (e.g. class index, latents out of range)
            raise ApiError(400, str(e)) from None
        except NonFiniteImageError as e:  # a broken model: one line, no traceback, no PNG
            raise ApiError(500, str(e)) from None

    def info(self) -> dict:
        p = self.pipe
        return {"resolution": p.resolution, "img_channels": p.img_channels, "z_dim": p.z_dim, "w_dim": p.w_dim,
                "c_dim": p.c_dim, "num_ws": p.num_ws, "style_ranges": p.style_ranges(),
                "noise_modes": list(NOISE_MODES), "spaces": list(SPACES), "max_seed": MAX_SEED,
                "model": getattr(p.source, "name", None) or "model", "limits": asdict(self.limits),
                "class_names": p.class_names, **self.edit.info()}

    def _common(self, body: dict) -> dict:
        lim, p = self.limits, self.pipe
        out = {"truncation_psi": _float(body, "psi", lim.psi_min, lim.psi_max, 1.0),
               "noise_mode": _choice(body, "noise_mode", NOISE_MODES, "const"),
               "truncation_cutoff": _int(body, "cutoff", 0, p.num_ws, None)}
        if p.c_dim > 0:
            out["class_idx"] = _int(body, "class_idx", 0, p.c_dim - 1)
        elif body.get("class_idx") is not None:
            raise ApiError(400, "class_idx: this model is unconditional; leave class_idx out (or null)")
        return out

    def api_generate(self, body: dict) -> dict:
        _check_keys(body, {"seed", "seeds", "psi", "cutoff", "noise_mode", "class_idx", "grid"})
        if ("seed" in body) == ("seeds" in body):
            raise ApiError(400, f"give exactly one of seed (an integer in [0, {MAX_SEED}]) or seeds (a list)")
        seeds = ([_int(body, "seed", 0, MAX_SEED)] if "seed" in body
                 else _seed_list(body, "seeds", 1, self.limits.max_batch))
        kw = self._common(body)
        grid = body.get("grid", False)
        if not isinstance(grid, bool):
            raise ApiError(400, f"grid: must be true or false, got {json.dumps(grid)[:20]}")
        images = self.run(lambda: self.pipe.generate(seeds, **kw))
        out = {"seeds": seeds, "images": [_data_url(im) for im in images]}
        if grid:
            from flowergan.inference.images import make_grid

            out["grid"] = _data_url(make_grid(images))
        return out

    def api_mix(self, body: dict) -> dict:
        _check_keys(body, {"row_seed", "col_seed", "styles", "psi", "cutoff", "noise_mode", "class_idx"})
        row, col = _int(body, "row_seed", 0, MAX_SEED), _int(body, "col_seed", 0, MAX_SEED)
        styles = body.get("styles", "coarse")
        n = self.pipe.num_ws
        if isinstance(styles, list):
            ok = all(isinstance(i, int) and not isinstance(i, bool) for i in styles) and len(styles) <= n
            if not ok:
                raise ApiError(400, f"styles: a list must hold at most {n} layer indices in [0, {n - 1}]")
        elif not isinstance(styles, str) or len(styles) > 64:
            raise ApiError(400, "styles: give a layer range like '0-3', a name (coarse, middle, fine, all, none) "
                                "or a list of layer indices")
        try:
            layers = parse_styles(styles, n)
        except ValueError as e:
            raise ApiError(400, str(e)) from None
        kw = self._common(body)
        r = self.run(lambda: self.pipe.mix([row], [col], layers, **kw))
        return {"styles": layers, "row_image": _data_url(r.row_images[0]), "col_image": _data_url(r.col_images[0]),
                "mix_image": _data_url(r.cells[0, 0])}

    def api_interpolate(self, body: dict) -> dict:
        _check_keys(body, {"seeds", "frames", "space", "loop", "psi", "cutoff", "noise_mode", "class_idx"})
        lim = self.limits
        seeds = _seed_list(body, "seeds", 2, lim.max_walk_seeds)
        frames = _int(body, "frames", 1, lim.max_frames, 8)
        loop = body.get("loop", False)
        if not isinstance(loop, bool):
            raise ApiError(400, f"loop: must be true or false, got {json.dumps(loop)}")
        total = (len(seeds) if loop else len(seeds) - 1) * frames + 1
        if total > lim.max_frames:
            raise ApiError(400, f"frames: {frames} per transition over {len(seeds)} seeds makes {total} frames; "
                                f"at most {lim.max_frames} are allowed")
        space = _choice(body, "space", SPACES, "z")
        kw = self._common(body)
        images = self.run(lambda: self.pipe.interpolate(seeds, frames=frames, space=space, loop=loop, **kw))
        return {"seeds": seeds, "frames": [_data_url(im) for im in images]}


class ExplorerHandler(BaseHTTPRequestHandler):
    server: ExplorerServer
    server_version = "flowergan-explorer"
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        self.timeout = self.server.limits.request_timeout_s  # seconds a client may take to send its request
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        log.debug("%s - %s", self.address_string(), format % args)

    # ---- responses ---------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy", _CSP)
        self.send_header("Cache-Control", "no-store")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: Any, extra: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json; charset=utf-8", extra)

    def _error(self, status: int, message: str) -> None:
        self.close_connection = True  # a request body may be unread: never reuse this connection
        extra = {"Retry-After": "2"} if status == 503 else None
        self._json(status, {"error": message}, extra)

    def _host_ok(self) -> bool:
        """When bound to loopback, refuse other Host names (DNS-rebinding protection)."""
        if not self.server.loopback_only:
            return True
        host = (self.headers.get("Host") or "").strip()
        name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
        return name in ("localhost", "[::1]") or is_loopback(name)

    # ---- routes ------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        if not self._host_ok():
            return self._error(403, "Host header not allowed: this server only answers requests for localhost")
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            return self._static("index.html")
        if path.startswith("/static/"):
            return self._static(path[len("/static/"):])
        if path == "/api/info":
            return self._json(200, self.server.info())
        if path == "/api/health":
            return self._json(200, {"ok": True})
        if path.startswith("/api/project/"):
            try:
                return self._json(200, self.server.edit.project_status(path[len("/api/project/"):]))
            except ApiError as e:
                return self._error(e.status, e.message)
        return self._error(404, f"no such page: {path}")

    do_HEAD = do_GET

    def do_POST(self) -> None:  # noqa: N802
        if not self._host_ok():
            return self._error(403, "Host header not allowed: this server only answers requests for localhost")
        routes = {"/api/generate": self.server.api_generate, "/api/mix": self.server.api_mix,
                  "/api/interpolate": self.server.api_interpolate, "/api/directions": self.server.edit.api_directions,
                  "/api/edit": self.server.edit.api_edit, "/api/walk-video": self.server.edit.api_walk_video,
                  "/api/project": self.server.edit.api_project}
        path = self.path.split("?", 1)[0]
        if path not in routes:
            return self._error(404, f"no such endpoint: POST {path}; use one of {_words(sorted(routes))}")
        t0 = time.perf_counter()
        try:
            body = self._read_json(self.server.edit.limits.max_upload if path == "/api/project" else None)
            out = routes[path](body)
        except ApiError as e:
            return self._error(e.status, e.message)
        except Exception:  # noqa: BLE001 - report, keep serving
            log.exception("internal error in %s", path)
            return self._error(500, "internal error while generating; see the server log")
        out["ms"] = round((time.perf_counter() - t0) * 1000, 1)
        return self._json(200, out)

    def _read_json(self, max_body: int | None = None) -> dict:
        lim = self.server.limits
        limit = max_body or lim.max_body  # /api/project carries a photo: its own, larger limit
        if self.headers.get("Transfer-Encoding"):
            raise ApiError(411, "chunked request bodies are not accepted; send a Content-Length header")
        lengths = [v.strip() for v in self.headers.get_all("Content-Length") or []]
        if not lengths:
            raise ApiError(411, "a Content-Length header is required")
        if len(set(lengths)) != 1 or not _LENGTH.fullmatch(lengths[0]):
            raise ApiError(400, f"Content-Length {', '.join(lengths)[:60]!r}: must be one whole number of bytes "
                                f"(at most {limit})")
        n = int(lengths[0])
        if n > limit:
            raise ApiError(413, f"request body of {n} bytes is larger than the limit of {limit} bytes")
        try:
            raw = self.rfile.read(n)  # read before any other check, so that an answer never resets the client
        except OSError:  # the client stopped sending: timed out
            raw = None
        if raw is None or len(raw) != n:
            raise ApiError(400, f"the request body is shorter than its Content-Length of {n} bytes (nothing more "
                                f"arrived within {lim.request_timeout_s:g} s)")
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise ApiError(415, "send the request body as JSON with Content-Type: application/json")
        body = parse_body(raw, lim.max_depth)
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object")
        return body

    def _static(self, name: str) -> None:
        if not _STATIC_NAME.match(name):
            return self._error(404, f"no such file: {name}")
        f = resources.files("flowergan.web").joinpath("static", name)
        if not f.is_file():
            return self._error(404, f"no such file: {name}")
        self._send(200, f.read_bytes(), _CONTENT_TYPES[name.rsplit(".", 1)[1]])


def make_server(pipe: Pipeline, host: str = "127.0.0.1", port: int = 8000, limits: Limits = Limits(),
                edit_limits: EditLimits = EditLimits(), directions: list | tuple = ()) -> ExplorerServer:
    """Bind the explorer (port 0 = any free port; see `.url`). Call `serve_forever()`, then `shutdown()` and
    `server_close()`. Binding to a non-loopback address logs a warning: anyone who can reach it can use it."""
    if not is_loopback(host):
        log.warning("WARNING: serving on %s, which is not a loopback address: anyone who can reach this machine "
                    "can use the model explorer (there is no authentication)", host)
    server = ExplorerServer((host, port), pipe, limits, edit_limits, directions)
    log.debug("model explorer at %s", server.url)
    return server
