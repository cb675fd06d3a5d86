"""The quick lane: `queuectl [--db STORE] enqueue|add "CMD"` without loading click, the
job model or the store layer.

The full CLI imports ~50 ms of modules before it does anything, and scripts that
enqueue jobs one by one pay that every time.  This lane takes only the plain form
(one command argument, no options) on an existing store at the current schema: SQLite
through sqlite_open.py, PostgreSQL through libpq.py (libpq with ctypes, no psycopg).
For anything else it returns None, having written nothing, and the full CLI handles
the command (and reports every error) as it always does."""

from __future__ import annotations

import os
import sys
import time

from queuectl.errors import QueuectlError, StoreCorrupt
from queuectl.jobcore import check_command, looks_like_json_object, new_job_id

COMMANDS = ("enqueue", "add")


def _plain_form(args: list[str]) -> tuple[str | None, str] | None:
    """(--db value, command) of `[--db STORE] enqueue|add CMD`, else None."""
    db = None
    rest = args
    if len(rest) > 1 and rest[0] == "--db":
        db, rest = rest[1], rest[2:]
    elif rest and rest[0].startswith("--db="):
        db, rest = rest[0][len("--db="):], rest[1:]
    if len(rest) != 2 or rest[0] not in COMMANDS:
        return None
    command = rest[1]
    if command.startswith("-") or looks_like_json_object(command):
        return None
    return db, command


def quick_enqueue(args: list[str]) -> int | None:
    """Enqueue a plain command and return the exit code, or None to decline."""
    form = _plain_form(args)
    if form is None:
        return None
    db, command = form
    try:
        check_command(command)
        command.encode("utf-8")  # argv bytes that are not UTF-8: the full path says so
        from queuectl.backends import is_postgres, store_url

        path = store_url(db)
    except (QueuectlError, UnicodeEncodeError):
        return None
    if is_postgres(path):
        return _quick_postgres(path, command)
    import sqlite3

    from queuectl.backends.sqlite_open import enqueue_command, store_error

    job_id = new_job_id()
    try:
        if not enqueue_command(path, job_id, command, time.time()):
            return None
    except sqlite3.Error as exc:
        error = store_error(exc, path)
        if "locked" not in error.message and not isinstance(error, StoreCorrupt):
            return None  # nothing was written; the full path says what is wrong
        hint = f" ({error.hint})" if error.hint else ""
        sys.stderr.write(f"queuectl: error: {error.message}{hint}\n")  # not twice
        return error.exit_code
    except OSError:
        return None
    from queuectl import wakeup

    wakeup.notify(path)
    _print_id(job_id)
    return 0


def _quick_postgres(url: str, command: str) -> int | None:
    """The lane on PostgreSQL: libpq through ctypes (backends/libpq.py), no psycopg."""
    from queuectl.backends import pg_where
    from queuectl.backends.libpq import enqueue_command
    from queuectl.backends.sqlfile import latest_version

    job_id = new_job_id()
    try:
        if not enqueue_command(url, pg_where(url), job_id, command, time.time(),
                               latest_version("postgres")):
            return None
    except QueuectlError as error:  # unreachable: not waited for twice
        hint = f" ({error.hint})" if error.hint else ""
        sys.stderr.write(f"queuectl: error: {error.message}{hint}\n")
        return error.exit_code
    except OSError:
        return None
    _print_id(job_id)
    return 0


def _print_id(job_id: str) -> None:
    try:
        sys.stdout.write(job_id + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        quiet_stdout()
    if sys.stderr.isatty():
        sys.stderr.write(f"Enqueued job {job_id} (pending)\n")


def quiet_stdout() -> None:
    """After a closed pipe (`queuectl list | head`), silence the final flush."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass
