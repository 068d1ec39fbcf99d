"""The local model explorer: a stdlib HTTP server with a JSON API over flowergan.inference and a static page."""

from flowergan.web.server import ExplorerServer, Limits, is_loopback, make_server

__all__ = ["ExplorerServer", "Limits", "is_loopback", "make_server"]
