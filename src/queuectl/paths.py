"""Where things live on disk: the default store, and the per-store runtime folder
(job output captures, detached worker pid and log files, wake-up sockets)."""

from __future__ import annotations

import os
import sys
import zlib

APP = "queuectl"


def data_dir() -> str:
    """The user data dir, e.g. ~/.local/share/queuectl (QUEUECTL_HOME overrides)."""
    override = os.environ.get("QUEUECTL_HOME")
    if override:
        return os.path.abspath(os.path.expanduser(override))
    if sys.platform.startswith("linux"):
        # The XDG rule platformdirs applies on Linux, without its ~17 ms import.
        base = os.environ.get("XDG_DATA_HOME", "").strip() or os.path.expanduser(
            "~/.local/share")
        return os.path.join(base, APP)
    from platformdirs import user_data_dir

    return user_data_dir(APP, appauthor=False)


def default_store_url() -> str:
    return os.path.join(data_dir(), "queue.db")


def store_key(url: str) -> str:
    """A short stable name for a store, used to name its runtime folders."""
    return f"{zlib.crc32(url.encode('utf-8')):08x}"  # zlib: hashlib costs start-up time


def runtime_dir(url: str, sqlite_file: str | None) -> str:
    """Per-store folder for job logs and detached workers.

    Next to the database file for SQLite (`queue.db` -> `queue.db.d/`), in the data dir
    for PostgreSQL."""
    if sqlite_file:
        return sqlite_file + ".d"
    return os.path.join(data_dir(), "stores", store_key(url))


def wake_dir(url: str) -> str:
    """Folder of the wake-up sockets of a store's local workers.

    Kept short (Unix socket paths are limited to ~100 bytes) and private per user."""
    base = os.environ.get("XDG_RUNTIME_DIR") or os.environ.get("TMPDIR") or "/tmp"
    return os.path.join(base, f"{APP}-{os.getuid()}", store_key(url))
