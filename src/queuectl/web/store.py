"""The dashboard's one Queue, used by one thread at a time.

A store connection is not made for concurrent use, so every call runs in a worker
thread under one lock (the event loop never blocks on the store).  Reads are short;
a follower that polls releases the lock while it sleeps."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator, TypeVar

import anyio.to_thread

from queuectl import jobevents
from queuectl.queue import Queue

T = TypeVar("T")


class Store:
    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self._lock = threading.Lock()

    def _locked(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            return fn(*args)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a worker thread, holding the store."""
        return await anyio.to_thread.run_sync(self._locked, fn, *args)

    def follow(self, job_id: str) -> Iterator[jobevents.FollowEvent]:
        """`logs -f`'s events for one job; step it with `call(next, it, None)`."""
        def sleep(seconds: float) -> None:
            self._lock.release()
            try:
                time.sleep(seconds)
            finally:
                self._lock.acquire()

        return jobevents.follow(self.queue, job_id, sleep=sleep)
