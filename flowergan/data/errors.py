"""The one exception type the data area raises for bad input, with a message saying what, where and how to fix."""

from __future__ import annotations


class DataError(ValueError):
    """Bad input for a data operation (source, labels, dataset, download); the message is meant for the user."""
