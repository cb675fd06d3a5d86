"""`/api/...`: JSON in the shapes of the CLI's --json; `/healthz`; `/metrics`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from queuectl.web import figures


def _web(request: Request) -> Any:
    return request.app.state.web


async def status(request: Request) -> JSONResponse:
    w = _web(request)
    report = await w.store.call(w.store.queue.status)
    return JSONResponse(report.to_dict())


async def overview(request: Request) -> JSONResponse:
    """The overview's snapshot, shared with the live pages (at most a poll old)."""
    w = _web(request)
    return JSONResponse(await w.feed.latest())


async def jobs(request: Request) -> JSONResponse:
    """`list --json`: an array of jobs; the next page's cursor is in the Link header
    (and X-Next-Before)."""
    from queuectl.web.app import page_args

    w = _web(request)
    args = page_args(request)
    page = await w.store.call(lambda: w.store.queue.jobs_page(**args))
    headers = {}
    if page.next_before is not None:
        params = dict(request.query_params)
        params["before"] = str(page.next_before)
        from urllib.parse import urlencode

        headers["link"] = f'</api/jobs?{urlencode(params)}>; rel="next"'
        headers["x-next-before"] = str(page.next_before)
    defaults = await w.store.call(w.store.queue.job_defaults)
    return JSONResponse([job.to_dict(with_output=False, defaults=defaults)
                         for job in page.jobs], headers=headers)


async def job(request: Request) -> JSONResponse:
    """`show --json` (environment variable names only)."""
    w = _web(request)
    from queuectl.dependencies import graph_fields

    found = await w.store.call(w.store.queue.get, request.path_params["ref"])
    defaults = await w.store.call(w.store.queue.job_defaults)
    deps, dependants = await w.store.call(w.store.queue.dependencies, found)
    return JSONResponse({**found.to_dict(defaults=defaults),
                         **graph_fields(deps, dependants)})


async def job_output(request: Request) -> PlainTextResponse:
    """`logs ID`: the live capture while it runs here, else the stored tail."""
    w = _web(request)
    _, text, _live = await w.store.call(w.store.queue.output, request.path_params["ref"])
    return PlainTextResponse(text)


async def dlq(request: Request) -> JSONResponse:
    from queuectl.web.app import MAX_PAGE_SIZE, param_int

    limit = param_int(request.query_params.get("limit"), "limit", 50, 1, MAX_PAGE_SIZE)
    w = _web(request)
    dead = await w.store.call(w.store.queue.dlq_list, limit)
    defaults = await w.store.call(w.store.queue.job_defaults)
    return JSONResponse([j.to_dict(with_output=False, defaults=defaults) for j in dead])


async def workers(request: Request) -> JSONResponse:
    w = _web(request)
    q = w.store.queue
    rows = await w.store.call(q.workers)
    now = q.now()
    return JSONResponse({"workers": [dict(info.to_dict(now), alive=alive)
                                     for info, alive in rows]})


async def config(request: Request) -> JSONResponse:
    w = _web(request)
    items = await w.store.call(w.store.queue.config_items)
    return JSONResponse({name: {"value": value, "source": source}
                         for name, value, source in items})


async def healthz(request: Request) -> JSONResponse:
    """200 with the store's schema version while the store answers, else 503."""
    from queuectl.errors import QueuectlError

    w = _web(request)
    try:
        version = await w.store.call(w.store.queue.schema_version)
    except QueuectlError as exc:
        return JSONResponse({"ok": False, "error": str(exc)}, status_code=503)
    return JSONResponse({"ok": True, "store": w.store.queue.display_url,
                         "schema_version": version})


async def metrics(request: Request) -> Response:
    w = _web(request)
    body, content_type = await w.store.call(figures.exposition, w.store.queue)
    return Response(body, media_type=content_type)


def routes() -> list[Route]:
    return [
        Route("/api/status", status),
        Route("/api/overview", overview),
        Route("/api/jobs", jobs),
        Route("/api/jobs/{ref}", job),
        Route("/api/jobs/{ref}/output", job_output),
        Route("/api/dlq", dlq),
        Route("/api/workers", workers),
        Route("/api/config", config),
        Route("/healthz", healthz),
        Route("/metrics", metrics),
    ]
