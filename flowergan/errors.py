"""The exception types user-facing code raises so that the CLI (and the web server) can classify failures:
bad input (exit status 2, HTTP 400) versus a failure of the run itself (exit status 1)."""

from __future__ import annotations

__all__ = ["BadInput", "BoundsError", "MissingDependency"]


class BadInput(ValueError):
    """Something the user gave (a flag, a request field, a file) is wrong; the message says what, where, how to fix."""


class BoundsError(BadInput):
    """A size asked for from outside (seeds, frames, steps, batch, image size...) is over its limit."""


class MissingDependency(ImportError):
    """An optional package is not installed; the message names the `pip install` that adds it."""
