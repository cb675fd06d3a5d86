"""The dashboard's starlette app: `create_app(queue, ...)`.

Pages are rendered on the server (jinja2, autoescaped); a little JavaScript from
static/ keeps the overview and a job's output live through Server-Sent Events.
Every state-changing action is a POST with the CSRF token (see security.py) that
redirects back (303); no GET changes anything."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from queuectl.errors import (
    InvalidInput,
    InvalidTransition,
    NotFound,
    QueuectlError,
    StoreError,
)
from queuectl.queue import Queue
from queuectl.states import FINISHED, ORDER, JobState
from queuectl.times import ago, iso_utc, local_text
from queuectl.web import api, live
from queuectl.web.security import Access, AccessMiddleware, read_form
from queuectl.web.store import Store

HERE = os.path.dirname(os.path.abspath(__file__))
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


@dataclass
class Web:
    """What every handler shares (kept in app.state.web)."""

    store: Store
    access: Access
    templates: Environment
    feed: live.OverviewFeed
    poll_s: float


def web(request: Request) -> Web:
    return request.app.state.web  # type: ignore[no-any-return]


def render(request: Request, name: str, status_code: int = 200, **context: Any
           ) -> HTMLResponse:
    w = web(request)
    page = w.templates.get_template(name).render(
        csrf=w.access.csrf, read_only=w.access.read_only, path=request.url.path,
        store_url=w.store.queue.display_url, now=w.store.queue.now(), states=ORDER,
        request_note=request.query_params.get("note"), **context)
    return HTMLResponse(page, status_code=status_code)


# -- parameters ------------------------------------------------------------------------
def param_state(value: Optional[str]) -> Optional[JobState]:
    if not value:
        return None
    try:
        return JobState(value)
    except ValueError:
        raise InvalidInput(f"unknown state {value!r}") from None


def param_int(value: Optional[str], what: str, default: Optional[int], low: int,
              high: int) -> Optional[int]:
    if value is None or value == "":
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise InvalidInput(f"{what} must be a whole number from {low} to {high}")
    return int(value)


def page_args(request: Request) -> dict[str, Any]:
    """The jobs filters of a request: state, queue, q (command text), id (prefix),
    before (a page's cursor), limit."""
    qp = request.query_params
    return {
        "state": param_state(qp.get("state")),
        "queue": qp.get("queue") or None,
        "text": qp.get("q", ""),
        "id_prefix": qp.get("id", "").strip(),
        "before": param_int(qp.get("before"), "before", None, 0, 2 ** 62),
        "limit": param_int(qp.get("limit"), "limit", PAGE_SIZE, 1, MAX_PAGE_SIZE),
    }


# -- pages -----------------------------------------------------------------------------
async def overview(request: Request) -> HTMLResponse:
    w = web(request)
    data = await w.feed.latest()
    return render(request, "overview.html", data=data, poll_ms=int(w.poll_s * 1000))


async def jobs(request: Request) -> HTMLResponse:
    args = page_args(request)
    page = await web(request).store.call(lambda: web(request).store.queue.jobs_page(**args))
    filters = {k: v for k, v in request.query_params.items() if k != "before"}
    return render(request, "jobs.html", page=page, args=args, filters=filters)


async def job_detail(request: Request) -> HTMLResponse:
    q = web(request).store.queue
    job = await web(request).store.call(q.get, request.path_params["ref"])
    is_live = job.state in (JobState.PROCESSING, JobState.PENDING, JobState.SCHEDULED)
    return render(request, "job.html", job=job, live=is_live,
                  can_cancel=job.state not in FINISHED,
                  can_retry=job.state in (JobState.FAILED, JobState.DEAD,
                                          JobState.CANCELLED, JobState.COMPLETED))


async def dlq(request: Request) -> HTMLResponse:
    limit = param_int(request.query_params.get("limit"), "limit", 200, 1, MAX_PAGE_SIZE)
    q = web(request).store.queue
    dead = await web(request).store.call(q.dlq_list, limit)
    count = (await web(request).store.call(q.status)).counts.get(JobState.DEAD, 0)
    return render(request, "dlq.html", jobs=dead, count=count)


async def dlq_purge_confirm(request: Request) -> HTMLResponse:
    q = web(request).store.queue
    count = (await web(request).store.call(q.status)).counts.get(JobState.DEAD, 0)
    return render(request, "dlq_purge.html", count=count)


async def workers(request: Request) -> HTMLResponse:
    q = web(request).store.queue
    rows = await web(request).store.call(q.workers)
    return render(request, "workers.html", workers=rows)


async def config(request: Request) -> HTMLResponse:
    from queuectl.config import KEYS

    q = web(request).store.queue
    items = await web(request).store.call(q.config_items)
    return render(request, "config.html", items=items, keys=KEYS)


# -- actions ---------------------------------------------------------------------------
async def _checked_form(request: Request) -> dict[str, str]:
    w = web(request)
    if w.access.read_only:
        raise HTTPException(403, "this dashboard is read-only")
    form = await read_form(request)
    if not w.access.csrf_ok(form.get("csrf") or request.headers.get("x-csrf-token")):
        raise HTTPException(403, "missing or wrong CSRF token")
    return form


def _back(location: str, note: str) -> RedirectResponse:
    from urllib.parse import quote

    sep = "&" if "?" in location else "?"
    return RedirectResponse(f"{location}{sep}note={quote(note)}", status_code=303)


async def job_action(request: Request) -> RedirectResponse:
    await _checked_form(request)
    q = web(request).store.queue
    ref, action = request.path_params["ref"], request.path_params["action"]
    verbs = {"cancel": q.cancel, "retry": q.retry}
    if action not in verbs:
        raise HTTPException(404, "no such action")
    job = await web(request).store.call(verbs[action], ref)
    return _back(f"/jobs/{_quote(job.id)}", f"{action}: job is now {job.state.value}")


async def dlq_retry(request: Request) -> RedirectResponse:
    await _checked_form(request)
    q = web(request).store.queue
    job = await web(request).store.call(q.dlq_retry, request.path_params["ref"])
    return _back("/dlq", f"job {job.id} moved to {job.state.value}")


async def dlq_retry_all(request: Request) -> RedirectResponse:
    await _checked_form(request)
    q = web(request).store.queue
    moved = await web(request).store.call(q.dlq_retry_all)
    return _back("/dlq", f"{len(moved)} job(s) moved to pending")


async def dlq_purge(request: Request) -> RedirectResponse:
    form = await _checked_form(request)
    if form.get("confirm") != "yes":
        raise InvalidInput("purging needs the confirmation (confirm=yes)")
    q = web(request).store.queue
    removed = await web(request).store.call(q.dlq_purge)
    return _back("/dlq", f"{removed} dead job(s) deleted")


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


# -- errors ----------------------------------------------------------------------------
ERROR_STATUS = [(NotFound, 404), (InvalidTransition, 409), (InvalidInput, 400),
                (StoreError, 503)]


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith(("/api/", "/events/"))


async def on_queuectl_error(request: Request, exc: Exception) -> Any:
    code = next((c for cls, c in ERROR_STATUS if isinstance(exc, cls)), 400)
    return _error(request, code, str(exc))


async def on_http_error(request: Request, exc: Exception) -> Any:
    assert isinstance(exc, HTTPException)
    return _error(request, exc.status_code, str(exc.detail))


async def on_internal_error(request: Request, exc: Exception) -> Any:
    import logging

    logging.getLogger(__name__).exception("internal error on %s", request.url.path)
    return PlainTextResponse("internal error (see the dashboard's log)\n", status_code=500)


def _error(request: Request, code: int, message: str) -> Any:
    if _wants_json(request):
        return JSONResponse({"error": message}, status_code=code)
    try:
        return render(request, "error.html", status_code=code, code=code, message=message)
    except Exception:  # the store itself may be what failed; still one clean line
        return PlainTextResponse(message + "\n", status_code=code)


# -- the app ---------------------------------------------------------------------------
def templates() -> Environment:
    env = Environment(loader=FileSystemLoader(os.path.join(HERE, "templates")),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["iso"] = iso_utc
    env.filters["local"] = local_text
    env.filters["ago"] = lambda seconds: ago(seconds) if seconds is not None else "-"
    env.filters["urlpart"] = _quote
    return env


def create_app(queue: Queue, *, token: Optional[str] = None, read_only: bool = False,
               loopback: bool = True, poll_s: float = 0.25) -> Any:
    """The dashboard over `queue`.  `token`: required on every request when set;
    `loopback`: serve only loopback Host names; `poll_s`: how often live pages look
    at the store (reads of a changed store are spaced to 4x their cost when slower)."""
    access = Access(token=token, read_only=read_only, loopback=loopback)
    routes = [
        Route("/", overview),
        Route("/jobs", jobs),
        Route("/jobs/{ref}", job_detail),
        Route("/jobs/{ref}/{action}", job_action, methods=["POST"]),
        Route("/dlq", dlq),
        Route("/dlq/purge", dlq_purge_confirm),
        Route("/dlq/purge", dlq_purge, methods=["POST"]),
        Route("/dlq/retry-all", dlq_retry_all, methods=["POST"]),
        Route("/dlq/{ref}/retry", dlq_retry, methods=["POST"]),
        Route("/workers", workers),
        Route("/config", config),
        *live.routes(),
        *api.routes(),
        Mount("/static", StaticFiles(directory=os.path.join(HERE, "static")), name="static"),
    ]
    handlers: dict[Any, Any] = {QueuectlError: on_queuectl_error,
                                HTTPException: on_http_error,
                                Exception: on_internal_error}
    app = Starlette(routes=routes, exception_handlers=handlers)
    store = Store(queue)
    app.state.web = Web(store=store, access=access, templates=templates(),
                        feed=live.OverviewFeed(store, poll_s), poll_s=poll_s)
    return AccessMiddleware(app, access)
