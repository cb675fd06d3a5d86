"""One exception tree for the whole product.

Every error a user can meet is a subclass of :class:`QueuectlError` and knows its
exit code.  Only ``cli.main`` turns these into a message on stderr and an exit code;
core code raises, never exits.
"""

from __future__ import annotations

# Exit codes (documented in the README).
EXIT_OK = 0
EXIT_FAILED = 1  # the operation failed: job not found, a waited-on job failed
EXIT_USAGE = 2  # usage error or bad input
EXIT_STORE = 3  # the store is unavailable, locked, read-only or corrupt


class QueuectlError(Exception):
    """Base of every error queuectl reports to a user."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class InvalidInput(QueuectlError):
    """Bad input from the user: malformed JSON, unknown key, wrong type, bad value."""

    exit_code = EXIT_USAGE


class ConfigError(InvalidInput):
    """Unknown config key or a value that does not validate."""


class DuplicateJob(InvalidInput):
    """A job with this id already exists (never silently overwritten)."""


class NotFound(QueuectlError):
    """No job matches the given id or prefix."""

    exit_code = EXIT_FAILED


class AmbiguousId(InvalidInput):
    """A prefix matches more than one job."""


class InvalidTransition(QueuectlError):
    """The job is not in a state that allows the requested change."""

    exit_code = EXIT_FAILED


class StoreError(QueuectlError):
    """The store cannot be used: unreachable, locked, read-only, corrupt, wrong schema."""

    exit_code = EXIT_STORE


class StoreLocked(StoreError):
    """Another process holds the store's lock for longer than the busy timeout: a
    moment that a worker rides out by trying again."""


class StoreCorrupt(StoreError):
    """The store's file is damaged (SQLite reports a malformed page, or a stored value
    cannot be read back).  Once seen, nothing more is written to that store."""


class WorkerError(QueuectlError):
    """Starting or stopping workers failed."""

    exit_code = EXIT_FAILED
