"""Fixtures for the web tests: a tiny random-weight Pipeline and an explorer server on an ephemeral port."""

from __future__ import annotations

import pytest
from testkit import one_thread
from web_testkit import Running, tiny_pipeline

from flowergan.inference import Pipeline

_one_thread = pytest.fixture(autouse=True)(one_thread)


@pytest.fixture(scope="module")
def web_pipe() -> Pipeline:
    return tiny_pipeline()


@pytest.fixture(scope="module")
def server(web_pipe):
    running = Running(web_pipe)
    yield running
    running.stop()
