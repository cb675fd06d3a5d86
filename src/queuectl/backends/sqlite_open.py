"""Opening an SQLite store: the connection settings that the backend and the quick
enqueue lane share, and that lane's one transaction.

Only `os`, `sqlite3` and the SQL files: this module is on the start-up path of
`queuectl enqueue "CMD"`, where every imported module costs milliseconds."""

from __future__ import annotations

import os
import sqlite3

from queuectl.backends.sqlfile import latest_version, load_queries
from queuectl.errors import StoreCorrupt, StoreError, StoreLocked
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
    # every page read is checked for cells that point outside it, not only the cells a
    # statement uses (no measurable cost: 820 vs 859 claim+finish/s, off vs on)
    db.execute("PRAGMA cell_size_check = ON")
    # a dependant the dependency trigger cancels releases its own dependants in turn
    # (migration 0004's jobs_release_dependants fires for the rows it updates)
    db.execute("PRAGMA recursive_triggers = ON")


# SQLite's primary result codes for a damaged file (extended codes keep them in the low
# byte): SQLITE_CORRUPT and SQLITE_NOTADB.
_CORRUPT_CODES = {11: "corrupt", 26: "not a database"}


def corruption(exc: sqlite3.Error) -> str | None:
    """What is damaged, when `exc` says the file is: SQLite's own words, or None.

    The sqlite3 module's "Could not decode to UTF-8 column ... with text '...'" counts:
    queuectl stores only UTF-8, so such a value is a damaged page; its text (raw row
    bytes) is never repeated."""
    text = str(exc)
    lowered = text.lower()
    if lowered.startswith("could not decode to utf-8"):
        return "a stored value is not valid UTF-8"
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in _CORRUPT_CODES:
        return text.splitlines()[0] if text else _CORRUPT_CODES[code & 0xFF]
    if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
        return text.splitlines()[0]
    return None


def corrupt_error(path: str, reason: str, *, checked: bool = False) -> StoreCorrupt:
    """The one line a user sees for a damaged store, with what to do about it
    (`checked`: `queuectl doctor` has just listed the damage)."""
    if "not a database" in reason:
        return StoreCorrupt(
            f"store is corrupt or not an SQLite file ({reason}): {path}",
            hint="check --db / QUEUECTL_DB; if it is the store, restore it from a backup")
    details = "" if checked else f"run `queuectl --db {path} doctor` for the details, then "
    return StoreCorrupt(
        f"store is corrupt ({reason}): {path}; nothing more is written to it",
        hint=f"{details}restore it from a backup, or salvage the jobs with "
             f"`sqlite3 {path} .recover`")


def store_error(exc: sqlite3.Error, path: str) -> StoreError:
    damage = corruption(exc)
    if damage is not None:
        return corrupt_error(path, damage)
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        return StoreLocked(f"store is locked by another process ({text}): {path}")
    if "readonly" in lowered or "read-only" in lowered:
        return StoreError(f"store is read-only: {path}")
    if "unable to open" in lowered:
        return StoreError(f"cannot open store {path}: {text}")
    if "disk" in lowered and ("full" in lowered or "i/o" in lowered):
        return StoreError(f"store {path}: {text}")
    return StoreError(f"store error ({text[:200]}): {path}")


def probe(db: sqlite3.Connection, queries: dict[str, str]) -> None:
    """The cheap check at open: one descent to each end of the job table and its main
    indexes (where new rows go), and the small tables.  SQLite validates each page it
    reads, so a damaged page on those paths raises here, before anything is written;
    damage elsewhere is reported when a statement reaches it (and `queuectl doctor`
    reads every page).  sqlite3 errors propagate."""
    db.execute("PRAGMA cell_size_check = ON")
    db.execute(queries["probe_edges"]).fetchone()


def check_file(path: str) -> tuple[list[str], int | None]:
    """`PRAGMA integrity_check` over the whole file, without writing: (SQLite's
    findings, [] when healthy; the schema version, None if it cannot be read).  The
    findings name pages and offsets, never row contents.

    Read-write but query-only, rather than mode=ro: a read-only connection cannot
    remove the -wal and -shm files it creates."""
    uri = "file:" + _uri_path(path) + "?mode=rw"  # never creates the file
    try:
        db = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                             isolation_level=None)
    except sqlite3.Error as exc:
        raise store_error(exc, path) from exc
    try:
        db.execute("PRAGMA query_only = 1")
        rows = db.execute("PRAGMA integrity_check").fetchall()
        problems = [line.strip() for (text,) in rows for line in str(text).splitlines()
                    if line.strip() and not line.startswith("*** in database")]
        if problems == ["ok"]:
            problems = []
        try:
            version = db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
        except sqlite3.Error:
            version = None
        return problems, version
    except sqlite3.Error as exc:
        damage = corruption(exc)
        if damage is None:
            raise store_error(exc, path) from exc
        return [damage], None
    finally:
        db.close()


def _uri_path(path: str) -> str:
    """A path as the file: URI SQLite parses (only ?, # and % are special there)."""
    return path.replace("%", "%25").replace("?", "%3f").replace("#", "%23")


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
        probe(db, queries)
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
