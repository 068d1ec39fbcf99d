"""The local model explorer's server: a standard-library ThreadingHTTPServer that binds, caps open
connections and wires the endpoints to their handlers. All generation runs on one worker thread behind a
bounded queue (flowergan.web.worker), so a burst of requests is answered 503 instead of piling up, and every
request waits at most `Limits.timeout_s`. A photo projection (minutes) runs on a second worker of its own,
so the other panels are served while it runs (the projector works on its own copy of the generator and its
own random generator). Open connections are capped too (more get 503 with Retry-After, never a reset),
request bodies are bounded in bytes, nesting and number length, and every size a request asks for is
checked (flowergan.bounds) before any work, so no request can make the server allocate without bound.

Endpoints (JSON in and out; errors are 4xx/5xx with {"error": "..."} naming the field and its range):
generation in generate_api.py, editing, walk downloads and photo projection in edit_api.py; the HTTP side
in handler.py, the request vocabulary in requests.py, the limits in limits.py.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from http.server import ThreadingHTTPServer

from flowergan.inference.api import Pipeline
from flowergan.web.edit_api import EditApi
from flowergan.web.generate_api import GenerateApi
from flowergan.web.handler import ExplorerHandler, is_loopback
from flowergan.web.limits import EditLimits, Limits
from flowergan.web.worker import GenerationWorker

log = logging.getLogger(__name__)

__all__ = ["Limits", "ExplorerServer", "make_server", "is_loopback"]


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
        self.worker = GenerationWorker(limits.queue_size, timeout_s=limits.timeout_s)
        self.project_worker = GenerationWorker(1, name="flowergan-project")  # one projection at a time
        try:
            self.generate = GenerateApi(pipe, limits, self.worker.run)
            self.edit = EditApi(pipe, self.worker.run, self.project_worker.submit, edit_limits, limits,
                                directions)  # validates the direction files before binding
            self.get_routes = {"/api/info": self.info, "/api/health": lambda: {"ok": True}}
            self.get_prefix_routes = {"/api/project/": self.edit.project_status}
            gen, edit = self.generate, self.edit
            self.post_routes = {
                "/api/generate": gen.api_generate, "/api/mix": gen.api_mix,
                "/api/interpolate": gen.api_interpolate, "/api/directions": edit.api_directions,
                "/api/edit": edit.api_edit, "/api/walk-video": edit.api_walk_video,
                "/api/project": edit.api_project}
            self.body_limits = {"/api/project": edit_limits.max_upload}  # a photo: over limits.max_body
            super().__init__(address, ExplorerHandler)
        except BaseException:
            self.worker.stop()
            self.project_worker.stop()
            raise

    def info(self) -> dict:
        """GET /api/info: model facts, limits and the direction sets."""
        return {**self.generate.info(), **self.edit.info()}

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


def make_server(pipe: Pipeline, host: str = "127.0.0.1", port: int = 8000, limits: Limits = Limits(),
                edit_limits: EditLimits = EditLimits(), directions: list | tuple = ()) -> ExplorerServer:
    """Bind the explorer (port 0 = any free port; see `.url`). Call `serve_forever()`, then `shutdown()` and
    `server_close()`. Binding to a non-loopback address logs a warning: anyone who can reach it can use it."""
    if not is_loopback(host):
        log.warning("WARNING: serving on %s, which is not a loopback address: anyone who can reach this "
                    "machine can use the model explorer (there is no authentication)", host)
    server = ExplorerServer((host, port), pipe, limits, edit_limits, directions)
    log.debug("model explorer at %s", server.url)
    return server
