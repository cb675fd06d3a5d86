"""B8: B1, B2 and B7 on PostgreSQL, each in a fresh database on the given server."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from typing import Iterator, Optional

from benchmarks.cases import (
    Context,
    b1_throughput,
    b2_pickup,
    b7_contention,
    b11_graph,
    dashboard_rows,
)
from benchmarks.harness import Row, Workspace, median

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    import psycopg

    base = server_url.rsplit("/", 1)[0]
    name = "queuectl_bench_" + uuid.uuid4().hex[:10]
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(base + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def reachable(url: str) -> Optional[str]:
    """None when a server answers at `url`, else why not (one line)."""
    try:
        import psycopg

        psycopg.connect(url, connect_timeout=3).close()
    except Exception as exc:  # any failure means "not reachable"
        return f"PostgreSQL not reachable at {url}: {exc}".splitlines()[0]
    return None


def b8_postgres(ctx: Context) -> list[Row]:
    url = ctx.db_url or DEFAULT_PG
    why = reachable(url)
    if why is not None:  # no server: B8 is reported as not run
        return [Row("B8", why, 0, "", "", None, store="postgres")]
    rows: list[Row] = []
    with fresh_database(url) as db:
        rows += b1_throughput(ctx, db=db, store="postgres")
    with fresh_database(url) as db:
        rows += b2_pickup(ctx, db=db, store="postgres")
    with fresh_database(url) as db:
        rows += b7_contention(ctx, db=db, store="postgres")
    for row in rows:
        row.figure = "PostgreSQL " + row.figure
    return rows


def fill_runs_pg(url: str, total: int, per_hour: int) -> None:
    """B10's store on PostgreSQL: the same jobs as cases._fill_runs (10% pending, the
    others finished at `per_hour` back from now, 2% dead, every 100th retried after a
    timeout), written with plain SQL, then vacuumed as a settled store would be."""
    import time

    import psycopg

    from queuectl.backends import open_backend

    open_backend(url).close()  # the schema
    now = time.time()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO jobs (id, command, state, queue, priority, run_at, attempts,
                                 created_at, updated_at, started_at, finished_at,
                                 exit_code, error, history)
            SELECT 'fill-' || lpad(i::text, 8, '0'), 'true', state, 'q' || (i %% 4), 5,
                   CASE WHEN state = 'pending' THEN %(now)s - 60 + i * 0.0001 ELSE f - 1.5 END,
                   CASE WHEN state = 'pending' THEN 0 WHEN i %% 100 = 3 THEN 2 ELSE 1 END,
                   f - 2, f,
                   CASE WHEN state = 'pending' THEN NULL ELSE f - 1 END,
                   CASE WHEN state = 'pending' THEN NULL ELSE f END,
                   CASE WHEN state = 'pending' THEN NULL WHEN state = 'dead' THEN 1 ELSE 0 END,
                   CASE WHEN state = 'dead' THEN 'exit code 1' END,
                   CASE WHEN state = 'pending' THEN '[]'::jsonb
                        WHEN i %% 100 = 3 THEN jsonb_build_array(
                            jsonb_build_object('attempt', 1, 'started_at', f - 20,
                                'finished_at', f - 10, 'worker', 'bench:1/1',
                                'timed_out', true, 'error', 'timeout', 'result', 'failed'),
                            jsonb_build_object('attempt', 2, 'started_at', f - 1,
                                'finished_at', f, 'worker', 'bench:1/1', 'exit_code', 0,
                                'timed_out', false, 'result', state))
                        ELSE jsonb_build_array(jsonb_build_object(
                            'attempt', 1, 'started_at', f - 1, 'finished_at', f,
                            'worker', 'bench:1/1', 'timed_out', false, 'result', state))
                   END
            FROM (SELECT i, %(now)s - i * %(step)s AS f,
                         CASE WHEN i %% 10 = 0 THEN 'pending' WHEN i %% 50 = 1 THEN 'dead'
                              ELSE 'completed' END AS state
                  FROM generate_series(1, %(total)s) AS i) AS r""",
            {"now": now, "step": 3600.0 / per_hour, "total": total})
        conn.execute("VACUUM ANALYZE jobs")


def b10_postgres(ctx: Context) -> list[Row]:
    """B10 on PostgreSQL: `Queue.metrics` in process (the CLI's start-up with psycopg
    is B3b's), and the dashboard rows."""
    import time

    from queuectl.queue import Queue

    server_url = ctx.db_url or DEFAULT_PG
    why = reachable(server_url)
    if why is not None:
        return [Row("B10", why, 0, "", "", None, store="postgres")]

    total, per_hour = ctx.scale.b5_jobs, ctx.scale.b10_per_hour
    label = f"{total // 1000}k" if total < 1_000_000 else f"{total / 1e6:g}M"
    with fresh_database(server_url) as url:
        fill_runs_pg(url, total, per_hour)
        with Queue(url) as queue:
            queue.metrics()
            spent = []
            for _ in range(7):
                started = time.perf_counter()
                queue.metrics()
                spent.append(time.perf_counter() - started)
            status = []
            for _ in range(7):
                started = time.perf_counter()
                queue.status()
                status.append(time.perf_counter() - started)
        rows = [Row("B10", f"Queue.metrics at {label} jobs ({per_hour} runs in the hour), "
                    "in process, median of 7", round(median(spent) * 1000, 1), "ms",
                    "<= 100 ms", median(spent) <= 0.1,
                    f"Queue.status: {median(status) * 1000:.0f} ms", None, "postgres")]
        with Workspace("b10pg") as ws:
            rows += dashboard_rows(ws, url, label, "postgres", samples=ctx.scale.b10_samples,
                                   idle_s=ctx.scale.b6_seconds)
    return rows


def b11_postgres(ctx: Context) -> list[Row]:
    """B11's dependency graph on PostgreSQL."""
    url = ctx.db_url or DEFAULT_PG
    why = reachable(url)
    if why is not None:
        return [Row("B11b", why, 0, "", "", None, store="postgres")]
    with fresh_database(url) as db:
        return b11_graph(ctx, db=db, store="postgres")
