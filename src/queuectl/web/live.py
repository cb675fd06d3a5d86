"""Server-Sent Events: the overview's figures and a job's output, live.

The overview stream looks at the store every `poll_s` and sends an event when
something a reader sees changed (and at least every KEEP_S, so ages move on); a
job's stream sends the events of `logs -f` (queuectl.jobevents.follow)."""

from __future__ import annotations

import json
import time
from typing import Any, AsyncIterator

import anyio
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from queuectl import jobevents
from queuectl.queue import Queue
from queuectl.web.figures import FigureHistory, overview_figures

KEEP_S = 5.0  # an unchanged overview is sent again after this long
LATEST = 10  # newest jobs shown on the overview
# A read that costs more than poll_s / LOAD_FACTOR (counting a million jobs on
# PostgreSQL takes ~230 ms) spaces the next one out, so that an open overview keeps the
# store busy at most 1/(1 + LOAD_FACTOR) of the time.
LOAD_FACTOR = 4.0


def overview_data(queue: Queue, history: FigureHistory) -> dict[str, Any]:
    """Everything the overview shows, in the shapes of the CLI's --json."""
    status = queue.status()
    latest = queue.jobs_page(limit=LATEST).jobs
    return {
        "status": status.to_dict(),
        "figures": overview_figures(queue, status, history),
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


def _event(name: str, data: Any) -> bytes:
    text = json.dumps(data, ensure_ascii=False)
    return f"event: {name}\ndata: {text}\n\n".encode("utf-8")


SSE_HEADERS = {"cache-control": "no-store", "x-accel-buffering": "no"}


async def overview_events(request: Request) -> StreamingResponse:
    w = request.app.state.web

    async def stream() -> AsyncIterator[bytes]:
        last, sent_at = "", 0.0
        yield b"retry: 1000\n\n"
        while True:
            started = time.monotonic()
            data = await w.store.call(overview_data, w.store.queue, w.history)
            spent = time.monotonic() - started
            mark = _fingerprint(data)
            if mark != last or time.monotonic() - sent_at >= KEEP_S:
                last, sent_at = mark, time.monotonic()
                yield _event("overview", data)
            await anyio.sleep(max(w.poll_s, spent * LOAD_FACTOR))

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
