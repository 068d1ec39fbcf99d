"""Helpers for the web tests: a tiny random-weight Pipeline and a server running in a thread."""

from __future__ import annotations

import threading

import torch

from flowergan.config import preset
from flowergan.inference import Pipeline
from flowergan.networks import build_networks
from flowergan.web import Limits, make_server


def tiny_pipeline(c_dim: int = 0) -> Pipeline:
    """A `tiny` generator with random weights (toRGB scaled down so images are not all clipped)."""
    G, _ = build_networks(preset("tiny").replace(c_dim=c_dim), seed=0)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if "torgb.weight" in name:
                p.mul_(0.4)
            if "noise_strength" in name:
                p.fill_(0.05)
    return Pipeline(G.eval())


class Running:
    """A server running in a background thread; `stop()` shuts it down."""

    def __init__(self, pipe: Pipeline, limits: Limits = Limits()):
        self.server = make_server(pipe, "127.0.0.1", 0, limits)
        self.url = self.server.url
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
