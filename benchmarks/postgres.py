"""B8: B1, B2 and B7 on PostgreSQL, each in a fresh database on the given server."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from typing import Iterator, Optional

from benchmarks.cases import Context, b1_throughput, b2_pickup, b7_contention, b11_graph
from benchmarks.harness import Row

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


def b11_postgres(ctx: Context) -> list[Row]:
    """B11's dependency graph on PostgreSQL."""
    url = ctx.db_url or DEFAULT_PG
    why = reachable(url)
    if why is not None:
        return [Row("B11b", why, 0, "", "", None, store="postgres")]
    with fresh_database(url) as db:
        return b11_graph(ctx, db=db, store="postgres")
