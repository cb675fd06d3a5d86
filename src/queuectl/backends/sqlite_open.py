"""Opening an SQLite store: the connection settings that the backend and the quick
enqueue lane share, and that lane's one transaction.

Only `os`, `sqlite3` and the SQL files: this module is on the start-up path of
`queuectl enqueue "CMD"`, where every imported module costs milliseconds."""

from __future__ import annotations

import os
import sqlite3

from queuectl.backends.sqlfile import latest_version, load_queries
from queuectl.errors import StoreError, StoreLocked
from queuectl.paths import create_private_store

BUSY_TIMEOUT_MS = 10_000


def connect(path: str) -> sqlite3.Connection:
    """A connection in autocommit mode: transactions are explicit BEGIN/COMMIT.

    A new store file is created 0600 first (its data dir 0700): the store holds
    commands, their environment and their output."""
    if path != ":memory:" and not path.startswith("file:"):
        try:
            create_private_store(path)
        except OSError:
            pass  # SQLite reports what is wrong with the path in its own words
    return sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=False)


def configure(db: sqlite3.Connection, durable: bool) -> None:
    """WAL, a busy timeout, and FULL syncing where a commit acknowledges a job."""
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    mode = db.execute("PRAGMA journal_mode").fetchone()[0]
    if mode != "wal":
        try:
            db.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if "readonly" not in str(exc).lower():
                raise
    db.execute("PRAGMA synchronous = " + ("FULL" if durable else "NORMAL"))
    db.execute("PRAGMA foreign_keys = OFF")


def store_error(exc: sqlite3.Error, path: str) -> StoreError:
    text = str(exc)
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        return StoreLocked(f"store is locked by another process ({text}): {path}")
    if "readonly" in lowered or "read-only" in lowered:
        return StoreError(f"store is read-only: {path}")
    if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
        return StoreError(f"store is corrupt or not a queuectl database: {path}")
    if "unable to open" in lowered:
        return StoreError(f"cannot open store {path}: {text}")
    if "disk" in lowered and ("full" in lowered or "i/o" in lowered):
        return StoreError(f"store {path}: {text}")
    return StoreError(f"store error ({text}): {path}")


def enqueue_command(path: str, job_id: str, command: str, now: float) -> bool:
    """Store one plain-command job with every default, if the store is ready for it:
    an existing file at the current schema version.  Returns False, having written
    nothing, when it is not (the full path then creates or migrates the store);
    sqlite3 errors propagate, with the transaction rolled back."""
    if not os.path.isfile(path):
        return False
    queries = load_queries("sqlite")
    db = connect(path)
    try:
        # the version first: configuring switches a file to WAL, and a file that is
        # not a queuectl store must be left as it is
        version = db.execute(queries["schema_version_get"]).fetchone()[0]
        if version != latest_version("sqlite"):
            return False
        configure(db, durable=True)
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(queries["insert_command"], {"id": job_id, "command": command,
                                                    "now": now})
            db.execute(queries["count_inserted"], {"n": 1, "state": "pending"})
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return True
    finally:
        try:
            db.close()
        except sqlite3.Error:
            pass  # after a COMMIT the job is stored: never report it as not written
