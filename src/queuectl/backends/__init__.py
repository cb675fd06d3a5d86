"""Stores.  `open_backend(url)` picks the implementation from the URL."""

from __future__ import annotations

import os

from queuectl.errors import InvalidInput

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Mapping

    from queuectl.backends.base import Backend


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def pg_where(url: str) -> str:
    """host:port/db of a PostgreSQL URL, without credentials (for error messages)."""
    rest = url.split("://", 1)[-1]
    return rest.rsplit("@", 1)[-1].split("?", 1)[0]


def display_url(url: str) -> str:
    """The store URL to print or log: a PostgreSQL password is masked."""
    if not is_postgres(url):
        return url
    scheme, rest = url.split("://", 1)
    netloc, slash, tail = rest.partition("/")
    userinfo, at, host = netloc.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
        return f"{scheme}://{userinfo}@{host}{slash}{tail}"
    return url


def sqlite_path(url: str) -> str:
    """`sqlite:///abs/path`, `sqlite:///rel`, or a plain path -> a filesystem path."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]  # sqlite:////abs/path or sqlite:///relative
        return os.path.abspath(os.path.expanduser(path))
    if url.startswith("sqlite://"):
        raise InvalidInput(f"invalid SQLite URL {url!r} (use sqlite:///path/to/queue.db)")
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise InvalidInput(f"unsupported store {scheme!r}: use a file path, sqlite:///PATH "
                           "or postgresql://...")
    return os.path.abspath(os.path.expanduser(url))


def store_url(flag: str | None, env: Mapping[str, str] | None = None) -> str:
    """The store to use: --db flag > QUEUECTL_DB > the default file in the user data
    dir.  A PostgreSQL URL as given; anything else as an absolute SQLite file path."""
    from queuectl.paths import default_store_url

    env = os.environ if env is None else env
    chosen = next((value for value in (flag, env.get("QUEUECTL_DB"))
                   if value and value.strip()), None) or default_store_url()
    if is_postgres(chosen):
        return chosen
    return sqlite_path(chosen)


def open_backend(url: str, *, durable: bool = True) -> "Backend":
    """Open (and migrate) the store at `url`.

    `durable=False` relaxes SQLite syncing for worker transitions (see sqlite.py)."""
    if is_postgres(url):
        from queuectl.backends.postgres import PostgresBackend

        return PostgresBackend(url, durable=durable)
    from queuectl.backends.sqlite import SqliteBackend

    return SqliteBackend(sqlite_path(url), durable=durable)
