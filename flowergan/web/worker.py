"""The explorer's job queues: one thread running submitted jobs in order behind a bounded queue, and a
request's wait for its job with a deadline, the outcome translated into the answer (503, 504, 400, 500)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from flowergan.infra import NonFiniteImageError
from flowergan.web.requests import ApiError

__all__ = ["Busy", "GenerationWorker"]


class Busy(Exception):
    """The generation queue is full."""


class GenerationWorker:
    """One thread running submitted jobs in order; `submit` raises Busy when `queue_size` jobs are waiting,
    `run` waits at most `timeout_s` for the job's result."""

    def __init__(self, queue_size: int, name: str = "flowergan-generate", timeout_s: float = 60.0):
        self.queue_size, self.timeout_s = queue_size, timeout_s
        self._q: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], Any]) -> Future:
        fut: Future = Future()
        try:
            self._q.put_nowait((fn, fut))
        except queue.Full:
            raise Busy from None
        return fut

    def run(self, fn: Callable[[], Any]) -> Any:
        """fn() on the worker thread, for a request: its result, or ApiError 503 (queue full), 504 (not done
        within `timeout_s`), 400 (the library refused a value) or 500 (the model gave non-finite pixels)."""
        try:
            fut = self.submit(fn)
        except Busy:
            raise ApiError(503, f"the server is busy: {self.queue_size} generation request(s) are already "
                                f"waiting; retry in a moment") from None
        try:
            return fut.result(timeout=self.timeout_s)
        except FutureTimeout:
            fut.cancel()
            raise ApiError(504, f"generation did not finish within {self.timeout_s:g} s; ask for fewer "
                                f"images or frames") from None
        except ValueError as e:  # the library's validation (e.g. class index, latents out of range)
            raise ApiError(400, str(e)) from None
        except NonFiniteImageError as e:  # a broken model: one line, no traceback, no PNG
            raise ApiError(500, str(e)) from None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                fn, fut = self._q.get(timeout=0.2)
            except queue.Empty:
                continue
            if not fut.set_running_or_notify_cancel():
                continue  # the request timed out (or went away) before its turn
            try:
                fut.set_result(fn())
            except BaseException as e:  # noqa: BLE001 - handed to the waiting request
                fut.set_exception(e)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
