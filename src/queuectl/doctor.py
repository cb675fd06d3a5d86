"""`queuectl doctor`: a full check of the store, for when something looks wrong.

SQLite: `PRAGMA integrity_check` reads every page (about 10 s at 1,000,000 jobs), so it
runs only here; every open does a cheap probe instead (sqlite_open.probe).  PostgreSQL
checks its own pages: here, whether the server answers and the schema is one this
queuectl understands."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Optional

from queuectl.backends import display_url, is_postgres, open_backend, sqlite_path, store_url
from queuectl.backends.sqlfile import latest_version
from queuectl.errors import StoreError


@dataclass
class StoreHealth:
    store: str  # as it may be printed (a password masked)
    kind: str  # "sqlite" or "postgresql"
    problems: list[str] = field(default_factory=list)  # empty: healthy
    schema_version: Optional[int] = None
    latest_version: int = 0
    notes: list[str] = field(default_factory=list)
    corrupt: bool = False  # the problems are damage (not, say, a newer schema)

    @property
    def ok(self) -> bool:
        return not self.problems

    def error(self) -> Optional[StoreError]:
        """The error that ends `doctor` with exit 3, or None when healthy."""
        if self.corrupt:
            from queuectl.backends.sqlite_open import corrupt_error

            return corrupt_error(self.store, f"{len(self.problems)} problem(s) found by "
                                             "PRAGMA integrity_check", checked=True)
        if self.problems:
            return StoreError(f"store {self.store}: {self.problems[0]}")
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"store": self.store, "kind": self.kind, "ok": self.ok,
                "corrupt": self.corrupt, "problems": self.problems,
                "schema_version": self.schema_version,
                "latest_schema_version": self.latest_version, "notes": self.notes}


def check_store(url: Optional[str]) -> StoreHealth:
    """Check the store at `url` (--db, else QUEUECTL_DB, else the default file)
    without changing it.  StoreError when it cannot be reached at all."""
    chosen = store_url(url)
    if is_postgres(chosen):
        return _check_postgres(chosen)
    return _check_sqlite(sqlite_path(chosen))


def _check_sqlite(path: str) -> StoreHealth:
    from queuectl.backends.sqlite_open import check_file

    health = StoreHealth(store=path, kind="sqlite", latest_version=latest_version("sqlite"))
    if not os.path.exists(path):
        health.notes.append("no store here yet: it is created on first use")
        return health
    health.problems, health.schema_version = check_file(path)
    health.corrupt = bool(health.problems)
    if not health.problems:
        _check_version(health)
    return health


def _check_postgres(url: str) -> StoreHealth:
    health = StoreHealth(store=display_url(url), kind="postgresql",
                         latest_version=latest_version("postgres"))
    backend = open_backend(url)  # reachable, and at a schema this queuectl knows
    try:
        health.schema_version = backend.schema_version()
    finally:
        backend.close()
    health.notes.append("the server answers; the integrity of tables and indexes is the "
                        "server's to check (e.g. pg_amcheck, or the server log)")
    _check_version(health)
    return health


def _check_version(health: StoreHealth) -> None:
    version = health.schema_version
    if version is None:
        health.problems.append("no schema_version table: not a queuectl store")
    elif version > health.latest_version:
        health.problems.append(f"schema version {version} is newer than this queuectl "
                               f"understands ({health.latest_version}): upgrade queuectl")
    elif version < health.latest_version:
        health.notes.append(f"schema version {version}: upgraded to "
                            f"{health.latest_version} on the next use (or `queuectl migrate`)")
