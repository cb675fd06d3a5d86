"""The quick enqueue lane on PostgreSQL: one plain-command job through libpq called with
ctypes, without psycopg.

`import psycopg` alone costs ~0.45 s of CPU on this kind of machine (its error classes,
type adapters, asyncio, importlib.metadata for the version of psycopg_binary), ten
times a whole SQLite enqueue; ctypes and libpq cost ~8 ms (docs/DECISIONS.md, section
20).  This module does what the lane needs and no more: connect, check the schema
version, one INSERT that also notifies, close.  Whenever it cannot (no libpq found,
another schema version, an error the server reports), it returns False having
written nothing, and the full CLI, with psycopg, does the enqueue and reports errors.

Only `ctypes`, `os` and `sys` are imported: this is on the start-up path."""

from __future__ import annotations

import ctypes
import os
import sys

from queuectl.errors import StoreError

CONNECT_TIMEOUT_S = 5  # as the psycopg backend
CONNECTION_OK = 0
PGRES_COMMAND_OK = 1
PGRES_TUPLES_OK = 2

# A plain command with every default; the NOTIFY is sent when this statement commits,
# as the full path's `notify` block.  The same row as `insert_job` of that path.
SCHEMA_VERSION_SQL = b"SELECT COALESCE(MAX(version), 0) FROM schema_version"
INSERT_SQL = (b"WITH job AS (INSERT INTO jobs (id, command, state, run_at, created_at, "
              b"updated_at) VALUES ($1, $2, 'pending', $3::float8, $3::float8, $3::float8) "
              b"RETURNING id) SELECT pg_notify('queuectl_jobs', '') FROM job")


def _bundled_libpq() -> str | None:
    """The libpq that the psycopg-binary wheel ships (psycopg_binary.libs/)."""
    for entry in sys.path:
        folder = os.path.join(entry or ".", "psycopg_binary.libs")
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in sorted(names):
            if name.startswith("libpq") and ".so" in name:
                return os.path.join(folder, name)
    return None


def load() -> ctypes.CDLL | None:
    """libpq with the few functions used here typed, or None when none is found."""
    lib = None
    for candidate in ("libpq.so.5", _bundled_libpq()):
        if candidate is None:
            continue
        try:
            lib = ctypes.CDLL(candidate)
            break
        except OSError:
            continue
    if lib is None:
        return None
    ptr, text, num = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    signatures = {
        "PQconnectdbParams": (ptr, [ctypes.POINTER(text), ctypes.POINTER(text), num]),
        "PQstatus": (num, [ptr]),
        "PQerrorMessage": (text, [ptr]),
        "PQexecParams": (ptr, [ptr, text, num, ptr, ctypes.POINTER(text), ptr, ptr, num]),
        "PQresultStatus": (num, [ptr]),
        "PQntuples": (num, [ptr]),
        "PQgetvalue": (text, [ptr, num, num]),
        "PQclear": (None, [ptr]),
        "PQfinish": (None, [ptr]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    return lib


def _strings(values: list[bytes]) -> ctypes.Array[ctypes.c_char_p]:
    return (ctypes.c_char_p * (len(values) + 1))(*values, None)


def enqueue_command(url: str, where: str, job_id: str, command: str, now: float,
                    latest: int) -> bool:
    """Store one plain-command job in the PostgreSQL store at `url` (at schema version
    `latest`) and notify its workers.  False, having written nothing, when this lane
    cannot; StoreError when the server cannot be reached, or when the connection broke
    while the INSERT ran (it may have committed: never sent twice)."""
    lib = load()
    if lib is None:
        return False
    keys = _strings([b"dbname", b"connect_timeout", b"client_encoding"])
    values = _strings([url.encode("utf-8"), str(CONNECT_TIMEOUT_S).encode(), b"UTF8"])
    conn = lib.PQconnectdbParams(keys, values, 1)  # dbname holds the URL: expand it
    try:
        if not conn:
            return False  # out of memory: the full path says what is wrong
        if lib.PQstatus(conn) != CONNECTION_OK:
            message = (lib.PQerrorMessage(conn) or b"").decode("utf-8", "replace")
            first = message.strip().splitlines()[0] if message.strip() else "no answer"
            raise StoreError(f"cannot reach PostgreSQL at {where}: {first}")
        version = _query(lib, conn, SCHEMA_VERSION_SQL, [])
        if version is None or version != str(latest).encode():
            return False  # no schema yet, or another version: the full path migrates
        params = [job_id.encode("utf-8"), command.encode("utf-8"), repr(now).encode()]
        done = _query(lib, conn, INSERT_SQL, params)
        if done is not None:
            return True
        if lib.PQstatus(conn) != CONNECTION_OK:
            raise StoreError(f"lost the connection to PostgreSQL at {where} while storing "
                             f"job {job_id}: it may be stored (see `queuectl show "
                             f"{job_id}`); not sent again")
        return False  # the server refused it and rolled it back
    finally:
        if conn:
            lib.PQfinish(conn)


def _query(lib: ctypes.CDLL, conn: int, sql: bytes, params: list[bytes]) -> bytes | None:
    """The first value of the first row of one statement run on its own (autocommit);
    None when it failed (rolled back by the server)."""
    values = (ctypes.c_char_p * max(1, len(params)))(*params)
    result = lib.PQexecParams(conn, sql, len(params), None, values, None, None, 0)
    if not result:
        return None
    try:
        if lib.PQresultStatus(result) not in (PGRES_TUPLES_OK, PGRES_COMMAND_OK):
            return None
        if lib.PQntuples(result) < 1:
            return b""
        value: bytes = lib.PQgetvalue(result, 0, 0)
        return value
    finally:
        lib.PQclear(result)
