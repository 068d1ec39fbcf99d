"""Helpers for the web tests: a tiny random-weight Pipeline and a server running in a thread."""

from __future__ import annotations

import threading

from testkit import make_tiny

from flowergan.inference import Pipeline
from flowergan.web import Limits, make_server


def tiny_pipeline(c_dim: int = 0) -> Pipeline:
    """A Pipeline around the shared random-weight `tiny` generator (see tests/testkit.py)."""
    return Pipeline(make_tiny(c_dim)[1])


class Running:
    """A server running in a background thread; `stop()` shuts it down."""

    def __init__(self, pipe: Pipeline, limits: Limits = Limits()):
        self.server = make_server(pipe, "127.0.0.1", 0, limits)
        self.url = self.server.url
        self.host, self.port = self.server.server_address[:2]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
