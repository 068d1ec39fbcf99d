"""Fixtures for the web tests: a tiny random-weight Pipeline and an explorer server on an ephemeral port."""

from __future__ import annotations

import pytest
import torch
from web_testkit import Running, tiny_pipeline

from flowergan.inference import Pipeline


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def web_pipe() -> Pipeline:
    return tiny_pipeline()


@pytest.fixture(scope="module")
def server(web_pipe):
    running = Running(web_pipe)
    yield running
    running.stop()
