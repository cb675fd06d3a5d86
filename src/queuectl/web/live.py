"""Server-Sent Events: the overview's figures and a job's output, live.

One `OverviewFeed` per dashboard reads the overview from the store at most once per
`poll_s` (spaced out when a read is slow), however many pages are open: every open
overview stream, the overview page and /api/overview take the feed's latest
snapshot, and whichever of them finds it due looks at the store for all (one look at a
time).  A look asks the store's change marker (SQLite's data_version, PostgreSQL's
job_counts, workers and queues rows) every `look_s`, and reads the
overview when the marker moved and the last read is `interval` old, at once if it is:
a change shows within a look and a read.  A stream sends an event when something a
reader sees changed, and at least every KEEP_S so that ages move on; a store nobody
committed to since the last read is read again only after IDLE_READ_S; with no page
open, nothing reads the store.  A job's stream sends the events of `logs -f`
(queuectl.jobevents.follow)."""

from __future__ import annotations

import json
import time
from typing import Any, AsyncIterator, Optional

import anyio
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from queuectl import jobevents
from queuectl.queue import Queue
from queuectl.web.figures import overview_figures
from queuectl.web.store import Store

KEEP_S = 5.0  # an unchanged overview is sent again after this long
# A store with no commit since the last read is read again only after this long (the
# ages, the last minute's runs move on); in between a look costs one tiny query.
IDLE_READ_S = 15.0
LATEST = 10  # newest jobs shown on the overview
# A read that costs more than poll_s / LOAD_FACTOR (counting a million jobs on
# PostgreSQL takes ~230 ms) spaces the next one out, so that open overviews keep the
# store busy at most 1/(1 + LOAD_FACTOR) of the time.
LOAD_FACTOR = 4.0
# The change marker is looked at this often at most (a look is one tiny query; 4 a
# second keep an idle dashboard under 1 % CPU), also while slow reads are spaced out:
# a change waits for a look, not for a whole spaced-out interval, once a read is due.
LOOK_S = 0.25


def overview_data(queue: Queue) -> dict[str, Any]:
    """Everything the overview shows, in the shapes of the CLI's --json."""
    status = queue.status()
    latest = queue.jobs_page(limit=LATEST).jobs
    return {
        "status": status.to_dict(),
        "figures": overview_figures(queue, status),
        "latest": [job.to_dict(with_output=False) for job in latest],
    }


def _fingerprint(data: dict[str, Any]) -> str:
    status = data["status"]
    seen = {
        "counts": status["counts"], "due": status["due_waiting"],
        "throughput": status["throughput_last_minute"],
        "workers": [(w["id"], w["busy"], w["jobs_done"], w["stop_requested"])
                    for w in status["workers"]],
        "latest": [(j["id"], j["state"], j["attempts"]) for j in data["latest"]],
    }
    return json.dumps(seen, sort_keys=True)


class OverviewFeed:
    """The overview's latest snapshot, shared by every reader (see the module)."""

    def __init__(self, store: Store, poll_s: float, clock: Any = time.monotonic,
                 look_s: Optional[float] = None) -> None:
        self.store = store
        self.poll_s = poll_s
        self.clock = clock
        self.data: Optional[dict[str, Any]] = None
        self.version = 0  # bumped when a reader would see a change, or after KEEP_S
        self.reads = 0  # store reads so far
        self._read_at = -1e18  # when the snapshot was read
        self._checked_at = -1e18  # when the store was last looked at
        self._marker: Any = None  # the store's change marker at the last read
        self._sent_at = -1e18  # when the version was last bumped
        self.interval = poll_s  # between reads (spaced out when a read is slow)
        # between looks at the change marker
        self.look_s = min(poll_s, LOOK_S) if look_s is None else look_s
        self._look_at = -1e18  # when the next look is due
        self._mark = ""
        self._lock: Optional[anyio.Lock] = None
        self._changed: Optional[anyio.Event] = None

    def _stale(self) -> bool:
        return self.data is None or self.clock() >= self._look_at

    async def _refresh(self) -> None:
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if not self._stale():
                return  # another reader read it while this one waited
            started = self.clock()
            # taken before the read: a commit during the read is read next time
            marker = await self.store.call(self.store.queue.backend.change_marker)
            if self.data is not None:
                if marker == self._marker and started - self._read_at < IDLE_READ_S:
                    self._checked_at = self.clock()
                    self._look_at = self._checked_at + self.look_s
                    return  # nothing committed since the last read
                if started - self._read_at < self.interval:
                    # moved, but the last read is recent: read when the spacing allows
                    # (the marker is kept, so that look reads)
                    self._look_at = self._read_at + self.interval
                    return
            data = await self.store.call(overview_data, self.store.queue)
            now = self.clock()
            self.reads += 1
            self.interval = max(self.poll_s, (now - started) * LOAD_FACTOR)
            self.data, self._read_at, self._checked_at, self._marker = data, now, now, marker
            self._look_at = now + self.look_s
            mark = _fingerprint(data)
            if mark != self._mark or now - self._sent_at >= KEEP_S:
                self._mark, self._sent_at = mark, now
                self.version += 1
                if self._changed is not None:
                    self._changed.set()
                self._changed = None

    async def latest(self) -> dict[str, Any]:
        """The snapshot, read again first if it is older than the poll interval."""
        if self._stale():
            await self._refresh()
        assert self.data is not None
        return self.data

    async def after(self, version: int) -> tuple[int, dict[str, Any]]:
        """The first snapshot newer than `version` (waits, reading the store when
        the snapshot is due and no other reader is at it)."""
        while True:
            if self._stale():
                await self._refresh()
            if self.version > version and self.data is not None:
                return self.version, self.data
            if self._changed is None:
                self._changed = anyio.Event()
            changed = self._changed
            wait = self._look_at - self.clock()
            with anyio.move_on_after(max(0.01, wait)):
                await changed.wait()


def _event(name: str, data: Any) -> bytes:
    text = json.dumps(data, ensure_ascii=False)
    return f"event: {name}\ndata: {text}\n\n".encode("utf-8")


SSE_HEADERS = {"cache-control": "no-store", "x-accel-buffering": "no"}


async def overview_events(request: Request) -> StreamingResponse:
    feed: OverviewFeed = request.app.state.web.feed

    async def stream() -> AsyncIterator[bytes]:
        seen = 0
        yield b"retry: 1000\n\n"
        while True:
            seen, data = await feed.after(seen)
            yield _event("overview", data)

    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)


async def job_events(request: Request) -> StreamingResponse:
    w = request.app.state.web
    job = await w.store.call(w.store.queue.get, request.path_params["ref"])
    events = w.store.follow(job.id)

    async def stream() -> AsyncIterator[bytes]:
        try:
            while True:
                event = await w.store.call(next, events, None)
                if event is None:
                    return
                if isinstance(event, jobevents.Ended):
                    defaults = await w.store.call(w.store.queue.job_defaults)
                    yield _event("end", event.job.to_dict(with_output=False,
                                                          defaults=defaults))
                    return
                yield _follow_event(event)
                if isinstance(event, jobevents.Ended):
                    return
        finally:
            events.close()  # type: ignore[attr-defined]

    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)


def _follow_event(event: jobevents.FollowEvent) -> bytes:
    if isinstance(event, jobevents.Output):
        return _event("output", {"text": event.text})
    if isinstance(event, jobevents.Skipped):
        return _event("skipped", {"bytes": event.nbytes})
    if isinstance(event, jobevents.RunSwitched):
        return _event("run", {"attempt": event.job.attempts, "worker": event.job.worker})
    if isinstance(event, jobevents.WorkerGone):
        return _event("worker_gone", {"worker": event.job.worker})
    return _event("end", event.job.to_dict(with_output=False))  # (Ended: see stream)


def routes() -> list[Route]:
    return [Route("/events/overview", overview_events),
            Route("/events/jobs/{ref}", job_events)]
