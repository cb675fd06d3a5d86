"""Named SQL blocks, procrastinate-style: `-- name: claim` starts a block."""

from __future__ import annotations

import re
from importlib import resources

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
    text = resources.files("queuectl.backends").joinpath(
        "sql", dialect, "queries.sql").read_text(encoding="utf-8")
    return parse_blocks(text)


def load_migrations(dialect: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) of `sql/<dialect>/migrations/NNNN_name.sql`, in order."""
    folder = resources.files("queuectl.backends").joinpath("sql", dialect, "migrations")
    found = []
    for entry in folder.iterdir():
        match = re.match(r"^(\d{4})_([a-z0-9_]+)\.sql$", entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2),
                          entry.read_text(encoding="utf-8")))
    found.sort()
    return found
