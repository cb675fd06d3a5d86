"""Named SQL blocks, procrastinate-style: `-- name: claim` starts a block."""

from __future__ import annotations

import os
import re

SQL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sql")

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse_blocks(text: str) -> dict[str, str]:
    blocks: dict[str, str] = {}
    matches = list(_NAME.finditer(text))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        body = text[match.end():end].strip()
        name = match.group(1)
        if name in blocks:
            raise ValueError(f"duplicate SQL block {name!r}")
        blocks[name] = body
    return blocks


def load_queries(dialect: str) -> dict[str, str]:
    """The named blocks of `sql/<dialect>/queries.sql`."""
    # Plain file reads: importlib.resources cost CLI start-up several milliseconds.
    with open(os.path.join(SQL_DIR, dialect, "queries.sql"), encoding="utf-8") as handle:
        return parse_blocks(handle.read())


def load_migrations(dialect: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) of `sql/<dialect>/migrations/NNNN_name.sql`, in order."""
    folder = os.path.join(SQL_DIR, dialect, "migrations")
    found = []
    for name in os.listdir(folder):
        match = re.match(r"^(\d{4})_([a-z0-9_]+)\.sql$", name)
        if match:
            with open(os.path.join(folder, name), encoding="utf-8") as handle:
                found.append((int(match.group(1)), match.group(2), handle.read()))
    found.sort()
    return found
