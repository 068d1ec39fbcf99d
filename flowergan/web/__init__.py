"""The local model explorer: a stdlib HTTP server, a JSON API over flowergan.inference and a static page."""

from flowergan.web.handler import is_loopback
from flowergan.web.limits import EditLimits, Limits
from flowergan.web.server import ExplorerServer, make_server

__all__ = ["EditLimits", "ExplorerServer", "Limits", "is_loopback", "make_server"]
