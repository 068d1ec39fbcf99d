"""The explorer's HTTP handler: one request on one connection. It checks the Host header, serves the
static page, reads a bounded JSON body, calls the route the server lists for the path and answers JSON with
safe headers (errors as {"error": "..."})."""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import time
from http.server import BaseHTTPRequestHandler
from importlib import resources
from typing import Any

from flowergan.web.requests import ApiError, read_json, words

log = logging.getLogger(__name__)

__all__ = ["ExplorerHandler", "is_loopback"]

_STATIC_NAME = re.compile(r"^[a-z0-9_-]+\.(html|js|css|svg|png)$")
_CONTENT_TYPES = {"html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8",
                  "css": "text/css; charset=utf-8", "svg": "image/svg+xml", "png": "image/png"}
_FOREIGN_HOST = "Host header not allowed: this server only answers requests for localhost"
_CSP = ("default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ExplorerHandler(BaseHTTPRequestHandler):
    """Serves one connection of `self.server` (flowergan.web.server.ExplorerServer), which provides `limits`,
    `loopback_only` and the routes: `get_routes` {path: fn() -> dict}, `get_prefix_routes` {path prefix:
    fn(rest of the path) -> dict}, `post_routes` {path: fn(body) -> dict} and `body_limits` {path: bytes} for
    POST bodies larger than `limits.max_body`. A route raises ApiError to refuse a request."""

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
            return self._error(403, _FOREIGN_HOST)
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            return self._static("index.html")
        if path.startswith("/static/"):
            return self._static(path[len("/static/"):])
        try:
            if path in self.server.get_routes:
                return self._json(200, self.server.get_routes[path]())
            for prefix, route in self.server.get_prefix_routes.items():
                if path.startswith(prefix):
                    return self._json(200, route(path[len(prefix):]))
        except ApiError as e:
            return self._error(e.status, e.message)
        return self._error(404, f"no such page: {path}")

    do_HEAD = do_GET

    def do_POST(self) -> None:  # noqa: N802
        if not self._host_ok():
            return self._error(403, _FOREIGN_HOST)
        routes = self.server.post_routes
        path = self.path.split("?", 1)[0]
        if path not in routes:
            return self._error(404, f"no such endpoint: POST {path}; use one of {words(sorted(routes))}")
        t0 = time.perf_counter()
        lim = self.server.limits
        try:
            limit = self.server.body_limits.get(path, lim.max_body)  # an upload has its own, larger limit
            body = read_json(self.headers, self.rfile, limit, lim.max_depth, lim.request_timeout_s)
            out = routes[path](body)
        except ApiError as e:
            return self._error(e.status, e.message)
        except Exception:  # noqa: BLE001 - report, keep serving
            log.exception("internal error in %s", path)
            return self._error(500, "internal error while generating; see the server log")
        out["ms"] = round((time.perf_counter() - t0) * 1000, 1)
        return self._json(200, out)

    def _static(self, name: str) -> None:
        if not _STATIC_NAME.match(name):
            return self._error(404, f"no such file: {name}")
        f = resources.files("flowergan.web").joinpath("static", name)
        if not f.is_file():
            return self._error(404, f"no such file: {name}")
        self._send(200, f.read_bytes(), _CONTENT_TYPES[name.rsplit(".", 1)[1]])
